"""Secrets never reach output or logs: a SASL password and a ClickHouse password given to
real commands (against the real broker and server) appear nowhere they print or write."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from phasegate.notify import Webhook, shown
from phasegate.stack import free_port
from schemas.settings import Settings

SASL_SECRET = "sasl-Pw-7f3a9c"
CH_SECRET = "ch-Pw-51d0e2"
HOOK_SECRET = "hook-T0ken-93be"  # a webhook URL's path is often its secret (Slack's is)

pytestmark = pytest.mark.timeout(120)


GRACE_S = 5
"""Seconds a command has to stop after SIGTERM before it is killed (``notify`` never stops
while its consumer cannot connect: it is killed, and what it printed before is checked)."""


FIRST_S = 60
"""Seconds a command has to print at all (its start alone takes seconds on a busy machine)."""


def run(env: dict[str, str], args: list[str], cwd: Path, seconds: float = 15) -> str:
    """Run ``phasegate ARGS``; stop it with SIGTERM ``seconds`` after it first printed; its
    whole output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "phasegate.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    first = b""
    if select.select([proc.stdout], [], [], FIRST_S)[0]:
        first = os.read(proc.stdout.fileno(), 1 << 16)
    try:
        out, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return (first + out).decode(errors="replace")


def files_under(folder: Path) -> str:
    return "".join(
        p.read_text(errors="replace")
        for p in folder.rglob("*")
        if p.is_file() and p.stat().st_size < 10**7
    )


@pytest.fixture
def secret_env(kafka_settings: Settings, clickhouse_url: str, tmp_path: Path) -> dict[str, str]:
    parts = urlsplit(clickhouse_url)
    return {
        **kafka_settings.to_env(),
        "PHASEGATE_STATE_DIR": str(tmp_path / "state"),
        "PHASEGATE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "PHASEGATE_KAFKA_SASL_USERNAME": "phasegate",
        "PHASEGATE_KAFKA_SASL_PASSWORD": SASL_SECRET,
        # the session's server, a wrong password: it answers with an authentication error
        "PHASEGATE_CLICKHOUSE_URL": f"clickhouse://default:{CH_SECRET}@{parts.hostname}:{parts.port}",
    }


def test_settings_never_show_their_secrets(secret_env):
    settings = Settings(
        kafka_sasl_password=SASL_SECRET, clickhouse_url=secret_env["PHASEGATE_CLICKHOUSE_URL"]
    )
    for text in (repr(settings), str(settings)):
        assert SASL_SECRET not in text and CH_SECRET not in text
    assert settings.to_env()["PHASEGATE_KAFKA_SASL_PASSWORD"] == SASL_SECRET  # for children only


COMMANDS = {
    "sink": (["sink"], 10),
    "report": (["report", "--rollout", "kai"], 10),
    "worker": (["worker", "--loglevel", "debug"], 10),
    "notify": (
        ["notify", "--webhook", f"http://127.0.0.1:{free_port()}/services/{HOOK_SECRET}"],
        6,
    ),
    "stack status": (["stack", "status"], 10),
    "replay": (["replay", "--yes"], 10),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_commands_never_print_or_log_a_secret(name, secret_env, tmp_path):
    args, seconds = COMMANDS[name]
    output = run(secret_env, args, tmp_path, seconds)
    assert output.strip(), "the command printed nothing: the test would prove nothing"
    written = files_under(tmp_path)
    for secret in (SASL_SECRET, CH_SECRET, HOOK_SECRET):
        assert secret not in output, output
        assert secret not in written


def test_a_webhook_is_logged_without_its_path(caplog):
    url = f"https://hooks.example.com:8443/services/{HOOK_SECRET}?token={HOOK_SECRET}"
    assert shown(url) == "https://hooks.example.com:8443/..."
    assert shown("http://127.0.0.1/") == "http://127.0.0.1"
    hook = Webhook(f"http://127.0.0.1:{free_port()}/x/{HOOK_SECRET}", attempts=1)
    assert not hook.deliver({"x": 1})
    assert "failed after 1 attempts" in caplog.text and HOOK_SECRET not in caplog.text
