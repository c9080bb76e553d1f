"""ClickHouse credentials on a real 18.16 server whose user ``analyst`` has a password:
the right one stores and reports, a wrong one is one clear line (no traceback, no
server stack trace, no password)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phasegate.stack import free_ports
from phasegate.stack.clickhouse import clickhouse_process, server_binary
from phasegate.testing.processes import SinkProcess, wait_for
from producers.emitter import Emitter
from schemas.settings import Settings
from sinks.store import StoreUnavailable
from sinks.store.server import ServerStore
from tests.sinks.conftest import make_result

PASSWORD = "ch-An4lyst-e81c"
WRONG = "ch-Wr0ng-77a2"

pytestmark = [pytest.mark.timeout(120), pytest.mark.service]


def users_xml(password: str) -> str:
    """``default`` without a password (the stack's probe), ``analyst`` with ``password``."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    user = "<networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>"
    return f"""<?xml version="1.0"?>
<yandex>
  <profiles><default/></profiles>
  <users>
    <default><password></password>{user}</default>
    <analyst><password_sha256_hex>{digest}</password_sha256_hex>{user}</analyst>
  </users>
  <quotas><default/></quotas>
</yandex>
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(host, native port) of a ClickHouse server with the password user."""
    if server_binary() is None:
        pytest.skip("clickhouse-server is not installed")
    folder = tmp_path_factory.mktemp("clickhouse-auth")
    users = folder / "users.xml"
    users.write_text(users_xml(PASSWORD))
    tcp, http = free_ports(2)
    proc = clickhouse_process(folder, "127.0.0.1", tcp, http, users)
    proc.start(timeout=30)
    yield "127.0.0.1", tcp
    proc.stop(timeout=5)


def url(server: tuple[str, int], user: str, password: str) -> str:
    return f"clickhouse://{user}:{password}@{server[0]}:{server[1]}"


def phasegate(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phasegate.cli", *args],
        env={
            **settings.to_env(),
            "PATH": "/usr/bin:/bin",
            "PHASEGATE_CONFIG": "/no.toml",
            "COLUMNS": "300",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_clear_line(output: str, user: str, reason: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"refused user {user}: {reason}" in lines[0], output
    for noise in ("Traceback", "Stack trace", PASSWORD, WRONG):
        assert noise not in output


@pytest.mark.parametrize(
    ("user", "password", "reason"),
    [("analyst", WRONG, "wrong password"), ("nobody", PASSWORD, "unknown user")],
)
def test_the_store_names_server_and_user_never_the_password(server, user, password, reason):
    store = ServerStore(url(server, user, password))
    with pytest.raises(StoreUnavailable) as refused:
        store.query("SELECT 1")
    store.close()
    message = str(refused.value)
    assert message.startswith(f"ClickHouse at {server[0]}:{server[1]} refused user {user}: ")
    assert reason in message and password not in message and "\n" not in message


def test_server_errors_come_without_the_servers_stack_trace(server):
    store = ServerStore(url(server, "analyst", PASSWORD))
    with pytest.raises(Exception, match="Unknown identifier") as bad:
        store.query("SELECT no_such_column")
    store.close()
    assert "Stack trace" not in str(bad.value)


def test_right_password_sinks_and_reports(server, kafka_settings: Settings, tmp_path: Path):
    settings = kafka_settings.model_copy(
        update={"clickhouse_url": url(server, "analyst", PASSWORD)}
    )
    results = [make_result(i, rollout="auth") for i in range(40)]
    sink = SinkProcess(settings, tmp_path / "sink.log").start()
    store = ServerStore(settings.clickhouse_url or "")
    try:
        with Emitter(settings) as emitter:
            assert all(emitter.emit(r) for r in results)
            assert emitter.flush(20)
        table = f"{settings.database}.results"
        wait_for(
            lambda: store.query(f"SELECT count() FROM {table}").scalar() == 40, "rows", 60, sink
        )
    finally:
        sink.stop()
    report = phasegate(settings, "report", "--rollout", "auth", "--format", "md")
    store.execute(f"DROP DATABASE IF EXISTS {settings.database}")
    store.close()
    assert report.returncode == 0, report.stdout + report.stderr
    assert "production" in report.stdout and "40" in report.stdout
    assert PASSWORD not in report.stdout + report.stderr + sink.tail(200)


@pytest.mark.parametrize("command", [["report", "--rollout", "auth"], ["sink"]])
def test_wrong_password_is_one_line_from_the_commands(server, kafka_settings: Settings, command):
    settings = kafka_settings.model_copy(update={"clickhouse_url": url(server, "analyst", WRONG)})
    done = phasegate(settings, *command)
    assert done.returncode != 0
    assert_one_clear_line(done.stdout + done.stderr, "analyst", "wrong password")
