"""The README's walkthrough, run command by command, so the guide cannot drift from the CLI.

``phasegate stack up`` is replaced by the session's services (tests/conftest.py: a Tansu
broker and a ClickHouse server, which the walkthrough's stack starts too); every other
command runs as the user runs it, ``python -m phasegate.cli ARGS`` with the settings in
its environment. A command ending in ``&`` runs in the background, as in the README;
where a user would wait for something (the worker taking its partitions, the figures
arriving), the test waits for it before the next command.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from phasegate.testing.processes import PhasegateProcess, wait_for
from schemas.settings import Settings
from sinks.report import system_report
from sinks.store import open_store
from tests.docs.markdown import ROOT, marked_block

pytestmark = pytest.mark.timeout(180)
REPLACED_BY_FIXTURES = [["phasegate", "stack", "up"]]
DEFAULT_DATABASE = Settings.model_fields["database"].default


def walkthrough() -> list[tuple[list[str], bool]]:
    """The README's walkthrough: each command's words, and whether it runs in the background."""
    commands = []
    for line in marked_block((ROOT / "README.md").read_text(), "walkthrough").splitlines():
        words = shlex.split(line, comments=True)
        background = words[-1:] == ["&"]
        commands.append((words[:-1] if background else words, background))
    return commands


def simulated_events(commands: list[tuple[list[str], bool]]) -> int:
    """How many generations the walkthrough's ``simulate`` sends."""
    (words,) = [w for w, _ in commands if w[1] == "simulate"]
    return int(words[words.index("--events") + 1])


def worker_status(settings: Settings) -> dict[str, Any]:
    """The background worker's ``GET /status``."""
    url = f"http://127.0.0.1:{settings.worker_port}/status"
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)


def test_the_walkthrough_runs_as_written(settings: Settings, tmp_path: Path) -> None:
    # the README's SQL names the default database: this test alone uses it on the server
    settings = settings.model_copy(update={"database": DEFAULT_DATABASE})
    commands = walkthrough()
    events = simulated_events(commands)
    env = {**os.environ, **settings.to_env()}
    store = open_store(settings)
    store.execute(f"DROP DATABASE IF EXISTS {DEFAULT_DATABASE}")
    background: list[PhasegateProcess] = []

    def worker_assigned() -> bool:
        return bool(worker_status(settings)["assignment"])

    def worker_counted() -> bool:
        return worker_status(settings)["counters"]["results"] >= events

    def sink_stored() -> bool:
        rows = system_report(store, settings.database, "kai-response")
        return sum(r.events for r in rows) >= events

    before = {"watch": worker_counted, "report": sink_stored, "evaluate": sink_stored}
    try:
        for words, in_background in commands:
            assert words[0] == "phasegate", words
            if words in REPLACED_BY_FIXTURES:
                continue
            if check := before.get(words[1]):
                wait_for(check, f"what `{shlex.join(words)}` shows", 60, *background)
            if in_background:
                proc = PhasegateProcess(settings, tmp_path / f"{words[1]}.log")
                proc.args = words[1:]
                background.append(proc.start())
                if words[1] == "worker":
                    wait_for(worker_assigned, "the worker's partitions", 60, proc)
                continue
            done = subprocess.run(
                [sys.executable, "-m", "phasegate.cli", *words[1:]],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"{shlex.join(words)}\n{done.stdout}\n{done.stderr}"
            if words[1] in {"watch", "report", "sql"}:
                assert "pipeline" in done.stdout and "production" in done.stdout, done.stdout
        for proc in background:
            assert proc.proc is not None and proc.proc.poll() is None, proc.tail()
    finally:
        for proc in background:
            proc.stop()
        store.close()
