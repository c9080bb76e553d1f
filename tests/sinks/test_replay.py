"""Replay: the tables are a projection of the topics (rebuilt, the same report)."""

from __future__ import annotations

import time
from dataclasses import astuple
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from phasegate.cli import app
from schemas import encode
from schemas.plan import load_plan
from schemas.settings import Settings
from sinks import render
from sinks.consumer import SinkCounters
from sinks.migrations import migrate
from sinks.phase_report import blocks, phase_report
from sinks.replay import drop_tables, replay
from sinks.report import system_report
from sinks.store import Store, open_store
from tests.sinks.conftest import make_result, point_cli_at
from tests.sinks.phase_data import Rollout, build
from tests.sinks.test_sink import drain, flushed, produce, sink_for


def publish(settings: Settings, data: Rollout) -> int:
    topics = settings.topics
    messages = [(topics.results, r.unit_id.encode(), encode(r)) for r in data.phase1 + data.phase2]
    messages += [(topics.results, None, encode(r)) for r in data.phase2[:100]]  # producer retry
    messages += [(topics.feedback, None, encode(f)) for f in data.feedback1 + data.feedback2]
    messages += [(topics.rollout, None, encode(e)) for e in data.log]
    messages += [(topics.results, b"bad", b"{not json")]
    produce(settings, messages)
    return len(messages)


def consume(settings: Settings, store: Store, messages: int) -> SinkCounters:
    sink = sink_for(settings, store, batch_rows=5000)
    sink.start()
    try:
        drain(sink, flushed(sink, messages), timeout=60)
    finally:
        sink.close()
    return sink.counters


def snapshot(store: Store, database: str) -> tuple:
    """The numbers of the reports (floats to 9 digits: sums in another order differ in the
    last bits), the phase report's text, and the counts in the table and its rollup."""
    report = phase_report(store, database, "kai", 2, load_plan().phase(2))
    raw = store.query(f"SELECT count() FROM {database}.results").scalar()
    rolled = store.query(f"SELECT sum(events) FROM {database}.results_1h").scalar()
    systems = [
        tuple(round(v, 9) if isinstance(v, float) else v for v in astuple(r))
        for r in system_report(store, database, "kai")
    ]
    return systems, render.markdown(blocks(report)), raw, rolled


@pytest.fixture
def chdb_settings(kafka_settings: Settings) -> Settings:
    pytest.importorskip("chdb")
    return kafka_settings


@pytest.mark.service
@pytest.mark.parametrize("backend", ["server", "chdb"])
def test_wipe_replay_gives_the_same_report(backend: str, request, tmp_path, monkeypatch) -> None:
    settings: Settings = request.getfixturevalue(
        "settings" if backend == "server" else "chdb_settings"
    )
    store = open_store(settings)
    migrate(store, settings.database)
    data = build()
    sent = publish(settings, data)
    consume(settings, store, sent)
    before = snapshot(store, settings.database)
    assert before[2] == before[3] == len(data.phase1) + len(data.phase2)  # each event once

    drop_tables(store, settings.database)  # wipe
    point_cli_at(store, settings.database, monkeypatch, tmp_path)
    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", settings.bootstrap_servers)
    monkeypatch.setenv("PHASEGATE_TOPIC_PREFIX", settings.topic_prefix)
    result = CliRunner().invoke(app, ["replay", "--yes"])
    assert result.exit_code == 0, result.output
    assert "1 unreadable" in result.output and "100 already stored (skipped)" in result.output
    assert snapshot(store, settings.database) == before

    # events the sink has not read yet are replayed; the sink then skips them (ledger)
    later = [make_result(i, rollout="other") for i in range(200)]
    produce(settings, [(settings.topics.results, None, encode(r)) for r in later])
    replay(settings, store, idle_seconds=1.0)
    counters = consume(settings, store, len(later))
    assert counters.messages == counters.duplicates == len(later)
    assert snapshot(store, settings.database)[:2] == before[:2]  # rollout kai unchanged
    stored = store.query(f"SELECT count() FROM {settings.database}.results").scalar()
    assert stored == before[2] + len(later)  # no row twice
    store.close()


def _append(seen: list[tuple[int, int]]):
    return lambda done, total: seen.append((done, total))


def test_replay_from_a_time_keeps_only_later_events(kafka_settings: Settings) -> None:
    pytest.importorskip("chdb")
    settings = kafka_settings
    data = build()
    topics = settings.topics
    early, late = data.phase1[:500], data.phase2[:300]
    produce(settings, [(topics.results, None, encode(r)) for r in early])
    time.sleep(1.1)
    cut = datetime.now(UTC)
    time.sleep(0.1)
    produce(settings, [(topics.results, None, encode(r)) for r in late])
    store = open_store(settings)
    seen: list[tuple[int, int]] = []
    counters = replay(settings, store, since=cut, idle_seconds=1.0, on_progress=_append(seen))
    assert counters.messages == 300 and seen[-1] == (300, 300)  # read of to read
    got = store.query(f"SELECT count(), min(ts) FROM {settings.database}.results FINAL").rows[0]
    assert got == (300, min(r.ts for r in late))
    store.close()
