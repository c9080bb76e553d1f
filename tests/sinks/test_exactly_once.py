"""A real sink process killed between insert and commit, and a ClickHouse server stopped
while events flow: every event counted once by the report and the rollups."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from phasegate.stack import free_ports
from phasegate.stack.clickhouse import clickhouse_process, server_binary, server_url
from phasegate.testing.processes import SinkProcess, wait_for
from schemas import Result, encode
from schemas.settings import Settings
from sinks.migrations import migrate
from sinks.report import system_report
from sinks.store import Store, open_store
from tests.sinks.conftest import make_result
from tests.sinks.test_sink import produce


def results(start: int, count: int) -> list[Result]:
    return [
        make_result(i, "production" if i % 3 else "pipeline") for i in range(start, start + count)
    ]


def send(settings: Settings, events: list[Result]) -> None:
    produce(settings, [(settings.topics.results, r.unit_id.encode(), encode(r)) for r in events])


def raw_and_final(store: Store, database: str) -> tuple[int, int, int]:
    """Rows as stored, events under FINAL, events counted by the minute rollup."""
    rows = store.query(f"SELECT count() FROM {database}.results").scalar()
    final = store.query(f"SELECT count() FROM {database}.results FINAL").scalar()
    rolled = store.query(f"SELECT sum(events) FROM {database}.results_1m").scalar()
    return rows, final, int(rolled or 0)


def committed(settings: Settings) -> int:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.topic_prefix + "sink",
        enable_auto_commit=False,
    )
    try:
        parts = [TopicPartition(settings.topics.results, p) for p in range(4)]
        return sum(consumer.committed(tp) or 0 for tp in parts)
    finally:
        consumer.close()


def assert_report_counts(store: Store, database: str, events: list[Result]) -> None:
    got = {r.system: r.events for r in system_report(store, database, "kai")}
    want = {s: sum(r.system == s for r in events) for s in ("pipeline", "production")}
    assert got == want


def test_sink_killed_between_insert_and_commit_counts_every_event_once(
    settings: Settings, tmp_path: Path
) -> None:
    events = results(0, 3000)
    send(settings, events)
    store = open_store(settings)
    migrate(store, settings.database)
    log = tmp_path / "sink.log"

    first = SinkProcess(settings, log, PHASEGATE_SINK_FAULT="kill-after-insert").start()
    assert first.proc is not None
    first.proc.wait(60)
    assert first.proc.returncode == -signal.SIGKILL, first.tail()
    inserted, _, _ = raw_and_final(store, settings.database)
    assert inserted > 0 and committed(settings) == 0  # stored, not committed: the bad case

    second = SinkProcess(settings, log).start()
    try:
        wait_for(
            lambda: raw_and_final(store, settings.database)[1] == 3000, "3000 events", 90, second
        )
        wait_for(lambda: committed(settings) == 3000, "the commit", 30, second)
    finally:
        assert second.stop() == 0, second.tail()
    assert raw_and_final(store, settings.database) == (3000, 3000, 3000)  # not one row twice
    skipped = int(re.findall(r"([\d,]+) already stored", second.tail())[-1].replace(",", ""))
    assert skipped == inserted  # the rows the killed sink stored were read again, not stored
    assert_report_counts(store, settings.database, events)
    store.close()


@pytest.fixture
def private_clickhouse(tmp_path: Path) -> Iterator:
    """A ClickHouse server of this test's own, to stop and start again."""
    if server_binary() is None:
        pytest.skip("clickhouse-server is not installed")
    tcp, http = free_ports(2)
    proc = clickhouse_process(tmp_path / "clickhouse", "127.0.0.1", tcp, http)
    (tmp_path / "clickhouse").mkdir()
    proc.start(timeout=30)
    yield proc
    proc.stop(timeout=10)


def test_clickhouse_stopped_while_events_flow_loses_and_doubles_nothing(
    kafka_settings: Settings, private_clickhouse, tmp_path: Path
) -> None:
    url = server_url("127.0.0.1", private_clickhouse.ports[0])
    settings = kafka_settings.model_copy(update={"clickhouse_url": url})
    store = open_store(settings)
    migrate(store, settings.database)
    sink = SinkProcess(settings, tmp_path / "sink.log").start()
    try:
        first = results(0, 1000)
        send(settings, first)
        wait_for(lambda: raw_and_final(store, settings.database)[1] == 1000, "1000", 60, sink)

        private_clickhouse.stop(timeout=10)
        during = results(1000, 2000)
        send(settings, during[:1000])
        wait_for(lambda: "cannot store a batch" in sink.tail(), "the outage log", 30, sink)
        send(settings, during[1000:])
        private_clickhouse.start(timeout=30)

        wait_for(lambda: raw_and_final(store, settings.database)[1] == 3000, "3000", 90, sink)
        # the table's part is visible before the views have their rows (18.16 pushes them
        # after it): the commit says the insert returned
        wait_for(lambda: committed(settings) == 3000, "the commit", 30, sink)
        assert raw_and_final(store, settings.database) == (3000, 3000, 3000)
        assert_report_counts(store, settings.database, first + during)
        assert "storing again" in sink.tail()
    finally:
        assert sink.stop() == 0, sink.tail()
        store.close()
