"""The local default read while it is written: a real ``phasegate sink`` holds the chdb
folder, and ``report``, ``evaluate`` and ``sql`` run as processes of their own meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phasegate.testing.processes import SinkProcess, wait_for
from schemas.settings import Settings
from sinks.store import StoreError, StoreUnavailable, endpoint
from sinks.store.local import open_local
from tests.sinks.test_exactly_once import results, send

pytest.importorskip("chdb")


def phasegate(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run(
        [sys.executable, "-m", "phasegate.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def stored(settings: Settings) -> int:
    """Events in the results table, asked with ``phasegate sql`` (-1 if it failed)."""
    done = phasegate(
        settings,
        "sql",
        "--format",
        "json",
        f"SELECT count() AS n FROM {settings.database}.results FINAL",
    )
    return json.loads(done.stdout)[0]["n"] if done.returncode == 0 else -1


def holder(path: Path) -> int | None:
    """The pid of the process serving the chdb folder at ``path``."""
    reader = endpoint.connect(path)
    if reader is None:
        return None
    reader.close()
    return reader.pid


@pytest.fixture
def sink(kafka_settings: Settings, tmp_path: Path) -> Iterator[SinkProcess]:
    """``phasegate sink`` on the chdb store, holding its folder."""
    running = SinkProcess(kafka_settings, tmp_path / "sink.log").start()
    assert running.proc is not None
    wait_for(lambda: holder(kafka_settings.store_path) == running.proc.pid, "the sink", 60, running)
    yield running
    assert running.stop() == 0, running.tail()


def test_report_evaluate_and_sql_while_the_sink_writes(
    kafka_settings: Settings, sink: SinkProcess
) -> None:
    settings = kafka_settings
    send(settings, results(0, 600))
    wait_for(lambda: stored(settings) == 600, "600 events stored", 90, sink)

    report = phasegate(settings, "report", "--rollout", "kai")
    assert report.returncode == 0, report.stderr
    assert "production" in report.stdout and "pipeline" in report.stdout
    assert f"read through pid {sink.proc.pid}" in report.stderr  # type: ignore[union-attr]

    evaluation = phasegate(settings, "evaluate", "--rollout", "kai", "--last", "100")
    assert evaluation.returncode == 0, evaluation.stderr

    csv = phasegate(
        settings,
        "sql",
        "--format",
        "csv",
        f"SELECT system, count() AS n FROM {settings.database}.results FINAL "
        "GROUP BY system ORDER BY system",
    )
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == ["system,n", "pipeline,200", "production,400"]

    send(settings, results(600, 300))  # the sink keeps writing after serving the readers
    wait_for(lambda: stored(settings) == 900, "900 events stored", 90, sink)


def test_a_writer_is_told_who_holds_the_folder(kafka_settings: Settings, sink: SinkProcess) -> None:
    with pytest.raises(StoreUnavailable, match=rf"held by another process \(pid {sink.proc.pid}"):  # type: ignore[union-attr]
        open_local(kafka_settings.store_path, wait=0.3)
    with (
        open_local(kafka_settings.store_path, reading=True) as reader,
        pytest.raises(StoreError, match="serves reads: stop it to write here"),
    ):
        reader.insert(f"{kafka_settings.database}.results", {"rollout": ["kai"]})


def test_a_reader_whose_holder_stops_says_what_to_do(
    kafka_settings: Settings, sink: SinkProcess
) -> None:
    reader = open_local(kafka_settings.store_path, reading=True)
    assert reader.query("SELECT 41 + 1").scalar() == 42
    sink.stop()
    with pytest.raises(StoreUnavailable, match="stopped answering: run the command again"):
        reader.query("SELECT 1")
    reader.close()


def test_sql_on_a_bad_statement_exits_1_with_the_store_s_message(kafka_settings: Settings) -> None:
    done = phasegate(kafka_settings, "sql", "SELEC 1")
    assert done.returncode == 1 and "SYNTAX_ERROR" in done.stderr, done.stderr
