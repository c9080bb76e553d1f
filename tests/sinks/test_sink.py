"""The sink against the real broker and ClickHouse server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas import DeadLetter, Feedback, RolloutEvent, decode, encode
from schemas.settings import Settings
from sinks import schema_lock
from sinks.consumer import Sink
from sinks.migrations import migrate
from sinks.store import Rows, Store, StoreUnavailable
from sinks.store.server import ServerStore
from tests.sinks.conftest import make_result
from tests.sinks.test_repair import VIEWS, rollups_agree, views_detached

BAD_JSON = b"{not json"


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerStore]:
    store = ServerStore(settings.clickhouse_url)
    migrate(store, settings.database)
    yield store
    store.execute(f"DROP DATABASE IF EXISTS {settings.database}")
    store.close()


def produce(settings: Settings, messages: list[tuple[str, bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for topic, key, value in messages:
        producer.send(topic, value, key=key)
    producer.flush(10)
    producer.close()


def sink_for(settings: Settings, store: Store, **options) -> Sink:
    defaults = {
        "batch_rows": 1000,
        "batch_seconds": 0.2,
        "group_id": settings.topic_prefix + "sink",
    }
    return Sink(settings, store, **defaults | options)


def drain(sink: Sink, done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"sink did not get there: {sink.counters}"
        sink.poll_once(timeout_ms=100)


def flushed(sink: Sink, messages: int) -> Callable[[], bool]:
    return lambda: sink.counters.messages >= messages and not sink.pending


def count(store: Store, table: str, final: bool = True) -> int:
    rows: Rows = store.query(f"SELECT count() FROM {table}{' FINAL' if final else ''}")
    return rows.scalar()


def dead_letters(settings: Settings, expected: int) -> list[DeadLetter]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    partition = TopicPartition(settings.topics.dlq, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + 15
    while len(letters) < expected and time.monotonic() < deadline:
        for messages in consumer.poll(timeout_ms=200).values():
            letters += [decode(m.value, expect=DeadLetter) for m in messages]
    consumer.close()
    return letters


def test_sink_stores_events_sends_bad_ones_to_the_dlq_and_resumes_without_double_counting(
    settings: Settings, server: ServerStore
) -> None:
    topics, db = settings.topics, settings.database
    results = [make_result(i) for i in range(40)]
    wrong_schema = encode(Feedback(rollout="r", query_id="q", system="s", verdict="correct"))
    missing_field = encode(results[0]).replace(b'"success":false,', b"")
    good = [(topics.results, r.unit_id.encode(), encode(r)) for r in results]
    good += [(topics.feedback, None, encode(Feedback(rollout="r", query_id=f"q{i}",
              system="production", verdict="correct"))) for i in range(5)]  # fmt: skip
    good += [(topics.rollout, None, encode(RolloutEvent(rollout="r", type="weight_set",
              weight=w))) for w in (50, 75, 100)]  # fmt: skip
    bad = [
        (topics.results, b"k1", BAD_JSON),
        (topics.results, b"k2", wrong_schema),
        (topics.feedback, None, missing_field),
    ]
    produce(settings, good + bad)

    sink = sink_for(settings, server)
    sink.start()
    try:
        drain(sink, flushed(sink, len(good) + len(bad)))
    finally:
        sink.close()

    assert sink.counters.dead_letters == 3
    assert count(server, f"{db}.results") == 40
    assert count(server, f"{db}.feedback") == 5
    assert count(server, f"{db}.rollout_events") == 3
    stored = server.query(
        f"SELECT sum(success), sum(error_type IS NOT NULL) FROM {db}.results FINAL"
    )
    assert stored.rows == [
        (sum(r.success for r in results), sum(r.error is not None for r in results))
    ]

    letters = {letter.original: letter for letter in dead_letters(settings, 3)}
    assert set(letters) == {BAD_JSON, wrong_schema, missing_field}
    assert letters[BAD_JSON].reason.startswith("json:")
    assert letters[BAD_JSON].key == b"k1" and letters[BAD_JSON].source_topic == topics.results
    assert "schema" in letters[wrong_schema].reason
    assert "verdict" in letters[missing_field].reason or "schema" in letters[missing_field].reason
    assert all(letter.component == "sink" and letter.offset >= 0 for letter in letters.values())

    # A restart reads only what came after the commit; a redelivered event counts once.
    later = [make_result(i) for i in range(100, 110)]
    produce(settings, [(topics.results, None, encode(r)) for r in [*later, results[0]]])
    again = sink_for(settings, server)
    again.start()
    try:
        drain(again, flushed(again, 11))
    finally:
        again.close()
    assert again.counters.messages == 11
    assert count(server, f"{db}.results", final=False) == 40 + 11
    assert count(server, f"{db}.results") == 50


class FlakyStore(Store):
    """The real store behind a switch: while ``down``, inserts fail as a dead server's do."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.down, self.refused = inner, True, 0
        self.inserts_at_once = inner.inserts_at_once

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        if self.down:
            self.refused += 1
            raise StoreUnavailable("ClickHouse server is not reachable (test)")
        return self.inner.insert(table, columns)

    def execute(self, sql: str, params=None) -> None:
        self.inner.execute(sql, params)

    def query(self, sql: str, params=None) -> Rows:
        return self.inner.query(sql, params)

    def close(self) -> None:
        self.inner.close()


def test_store_down_pauses_holds_a_bounded_batch_and_loses_nothing(
    settings: Settings, server: ServerStore, caplog: pytest.LogCaptureFixture
) -> None:
    results = [make_result(i) for i in range(30)]
    produce(settings, [(settings.topics.results, None, encode(r)) for r in results])
    flaky = FlakyStore(server)
    table = f"{settings.database}.results"

    first = sink_for(settings, flaky, batch_rows=10, retry_first=0.05, retry_most=0.2)
    first.start()
    try:
        drain(first, lambda: flaky.refused >= 4)
        assert first.paused
        # the batches that failed and the next one, read while they were in flight
        most = 10 * (flaky.inserts_at_once + 1)
        assert first.held <= most and first.counters.messages <= most
        assert count(server, table) == 0
    finally:
        first.close()  # stops while the store is down: nothing was committed
    failures = [r for r in caplog.records if "cannot store a batch" in r.getMessage()]
    assert len(failures) == 1  # logged once per interval, not per try

    second = sink_for(settings, flaky, batch_rows=10, retry_first=0.05, retry_most=0.2)
    second.start()
    try:
        drain(second, lambda: second.paused)
        flaky.down = False
        drain(second, lambda: count(server, table) == 30 and not second.pending)
        assert not second.paused
    finally:
        second.close()
    assert count(server, table, final=False) == 30


def test_sink_holds_its_rows_while_another_process_migrates(
    settings: Settings, server: ServerStore, caplog: pytest.LogCaptureFixture
) -> None:
    results = [make_result(i) for i in range(30)]
    produce(settings, [(settings.topics.results, None, encode(r)) for r in results])
    table = f"{settings.database}.results"
    lock = schema_lock.held(server, settings.database)
    lock.__enter__()  # as a migration in another process would
    sink = sink_for(settings, server, batch_rows=10, retry_first=0.05, retry_most=0.2)
    sink.start()
    try:
        drain(sink, lambda: sink.paused)
        assert count(server, table) == 0
        assert any("is being migrated by" in r.getMessage() for r in caplog.records)
        lock.__exit__(None, None, None)
        drain(sink, lambda: count(server, table) == 30 and not sink.pending)
    finally:
        sink.close()
    assert count(server, table, final=False) == 30


class LandingStore(FlakyStore):
    """The real server whose first insert into ``results`` stores its rows with the views
    ``missed`` detached, then raises: a server stopped mid-insert, after the table's part
    and some of its views (or all of them: the answer lost)."""

    def __init__(self, inner: Store, database: str, missed: Sequence[str]) -> None:
        super().__init__(inner)
        self.down, self.database, self.missed = False, database, missed
        self.inserts_at_once = 1  # the views are detached for every insert meanwhile

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        if self.refused or not table.endswith(".results"):
            return super().insert(table, columns)
        self.refused += 1  # once
        with views_detached(self.inner, self.database, self.missed):
            self.inner.insert(table, columns)
        raise StoreUnavailable("ClickHouse server is not reachable (test: after the part)")


@pytest.mark.parametrize(
    "missed", [[], VIEWS, VIEWS[1::3]], ids=["answer-lost", "no-view", "some-views"]
)
def test_an_insert_that_raised_after_storing_rows_is_not_stored_again_and_rollups_count_once(
    settings: Settings, server: ServerStore, missed: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Rows stored by an insert that raised are not inserted again when it is retried,
    and each rollup that missed them (the server stopped before its view) gets them."""
    results = [make_result(i, "production" if i % 3 else "pipeline") for i in range(60)]
    produce(settings, [(settings.topics.results, None, encode(r)) for r in results])
    landing = LandingStore(server, settings.database, missed)
    sink = sink_for(settings, landing, batch_rows=30, retry_first=0.05, retry_most=0.2)
    sink.start()
    try:
        drain(sink, flushed(sink, 60))
    finally:
        sink.close()
    assert landing.refused == 1
    db = settings.database
    assert count(server, f"{db}.results", final=False) == 60
    assert all(rolled == events for rolled, events in rollups_agree(server, db).values()), (
        rollups_agree(server, db)
    )
    added = [
        r.getMessage()
        for r in caplog.records
        if "of an insert that failed: added" in r.getMessage()
    ]
    assert len(added) == len(missed), added


class OverlappingStore(FlakyStore):
    """The real server whose first insert waits until a second one stored its rows (two
    batches in flight), then stores its own, or (``fail``) raises once."""

    def __init__(self, inner: Store, fail: bool) -> None:
        super().__init__(inner)
        self.down, self.fail, self.calls = False, fail, 0
        self.lock, self.second_stored = threading.Lock(), threading.Event()
        self.overlapped = False

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if not first:
            stored = super().insert(table, columns)
            self.second_stored.set()
            return stored
        self.overlapped = self.second_stored.wait(10)
        if self.fail:
            self.refused += 1
            raise StoreUnavailable("ClickHouse server is not reachable (test: first batch)")
        return super().insert(table, columns)


def _overlapping(settings: Settings, server: ServerStore, results: list, fail: bool) -> Sink:
    """``results`` (one partition) through a sink of batches of 10, two in flight."""
    produce(settings, [(settings.topics.results, b"k", encode(r)) for r in results])
    store = OverlappingStore(server, fail)
    sink = sink_for(
        settings, store, batch_rows=10, batch_seconds=30, retry_first=0.05, retry_most=0.2
    )
    sink.start()
    try:
        drain(sink, flushed(sink, len(results)))
    finally:
        sink.close()
    assert store.overlapped and store.refused == int(fail)
    return sink


def test_a_failed_batch_with_the_next_stored_is_stored_again_once_and_rollups_count_once(
    settings: Settings, server: ServerStore
) -> None:
    """Batch N fails after N+1 (in flight with it) was stored: N is tried again, finds
    what N+1 stored, and both commit; every row stored once, every rollup agrees."""
    results = [make_result(i, "production" if i % 3 else "pipeline") for i in range(20)]
    sink = _overlapping(settings, server, results, fail=True)
    db = settings.database
    assert count(server, f"{db}.results", final=False) == 20
    assert all(rolled == events for rolled, events in rollups_agree(server, db).values())
    assert sink.counters.duplicates == 0 and sink.counters.store_failures == 1


def test_an_event_read_again_across_two_batches_in_flight_is_stored_once(
    settings: Settings, server: ServerStore
) -> None:
    """A producer's retry puts an event at the end of batch N and again at the start of
    N+1; N+1 is chosen while N is not stored yet: the event is stored once."""
    results = [make_result(i) for i in range(19)]
    sink = _overlapping(settings, server, [*results[:10], results[9], *results[10:]], False)
    db = settings.database
    assert count(server, f"{db}.results", final=False) == 19
    assert all(rolled == events for rolled, events in rollups_agree(server, db).values())
    assert sink.counters.duplicates == 1


class Polling:
    """Sinks polling on threads of their own until the block ends; then stopped, joined
    and closed. ``errors``: what they raised."""

    def __init__(self) -> None:
        self.sinks: list[Sink] = []
        self.threads: list[threading.Thread] = []
        self.errors: list[Exception] = []
        self.stop = threading.Event()

    def add(self, sink: Sink) -> Sink:
        sink.start()
        self.sinks.append(sink)
        self.threads.append(threading.Thread(target=self._run, args=(sink,)))
        self.threads[-1].start()
        return sink

    def _run(self, sink: Sink) -> None:
        try:
            while not self.stop.is_set():
                sink.poll_once(timeout_ms=100)
        except Exception as exc:  # the test reports it
            self.errors.append(exc)

    def until(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, [s.counters for s in self.sinks]
            time.sleep(0.05)

    def __enter__(self) -> Polling:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        for sink in self.sinks:
            sink.close()


def test_a_sink_holding_a_batch_through_a_rebalance_loses_and_doubles_nothing(
    settings: Settings, server: ServerStore
) -> None:
    """A second sink joins while the first holds an unstored batch (a previous sink died
    in its rebalance listener, called on another thread): the batch is read again from
    the commit, stored once."""
    results = [make_result(i) for i in range(40)]
    table = f"{settings.database}.results"
    produce(settings, [(settings.topics.results, None, encode(r)) for r in results[:20]])
    with Polling() as sinks:
        first = sinks.add(sink_for(settings, server, batch_seconds=3600))  # holds what it reads
        sinks.until(lambda: first.held >= 20)
        second = sinks.add(sink_for(settings, server))
        produce(settings, [(settings.topics.results, None, encode(r)) for r in results[20:]])
        sinks.until(lambda: second.counters.messages > 0)  # the group has rebalanced
        first.batch_seconds = 0.2
        sinks.until(lambda: count(server, table) == 40 and not first.pending and not second.pending)
    assert not sinks.errors, sinks.errors
    assert count(server, table, final=False) == 40


class SlowStore(FlakyStore):
    """The real store whose inserts wait until ``release`` is set."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.down, self.release = False, threading.Event()

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        assert self.release.wait(30)
        return super().insert(table, columns)


def test_a_rebalance_waits_for_the_insert_in_flight_and_commits_it_before_the_partitions_go(
    settings: Settings, server: ServerStore
) -> None:
    """A second sink joins while the first's insert is in flight: the first commits that
    batch before its partitions go, so no member reads a stored message again."""
    results = [make_result(i) for i in range(40)]
    table = f"{settings.database}.results"
    send = [(settings.topics.results, r.unit_id.encode(), encode(r)) for r in results]
    produce(settings, send[:20])
    slow = SlowStore(server)
    with Polling() as sinks:
        try:
            first = sinks.add(sink_for(settings, slow, batch_rows=20, batch_seconds=0.2))
            sinks.until(lambda: first.counters.messages == 20 and first.pending)
            second = sinks.add(sink_for(settings, server, batch_seconds=0.2))
            time.sleep(3)  # the group rebalances; the first holds its revocation for the insert
        finally:
            slow.release.set()  # (before the sinks close, whatever happened)
        sinks.until(lambda: count(server, table) == 20)
        produce(settings, send[20:])
        sinks.until(lambda: count(server, table) == 40 and not first.pending and not second.pending)
    assert not sinks.errors, sinks.errors
    assert [first.counters.duplicates, second.counters.duplicates] == [0, 0]
    total = first.counters.messages + second.counters.messages
    assert total == 40  # none read twice
    assert count(server, table, final=False) == 40


def test_the_sink_batch_rows_setting_sizes_every_insert(
    settings: Settings, server: ServerStore
) -> None:
    """``sink_batch_rows`` (``PHASEGATE_SINK_BATCH_ROWS``) is the insert's size: 100
    results in batches of 30 are three full inserts, and 10 held until the batch is old."""
    produce(settings, [(settings.topics.results, b"k", encode(make_result(i))) for i in range(100)])
    sized = settings.model_copy(update={"sink_batch_rows": 30})
    sink = Sink(sized, server, group_id=settings.topic_prefix + "sink", batch_seconds=30)
    sink.start()
    try:
        drain(sink, lambda: sink.counters.messages == 100 and sink.counters.batches == 3)
        assert sink.held == 10
        assert count(server, f"{settings.database}.results", final=False) == 90
    finally:
        sink.close()
    assert count(server, f"{settings.database}.results", final=False) == 100


def test_sink_command_without_a_broker_says_what_to_do(kafka_settings, monkeypatch) -> None:
    from typer.testing import CliRunner

    from phasegate.cli import app

    pytest.importorskip("chdb")
    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("PHASEGATE_STORE_PATH", str(kafka_settings.store_path))
    monkeypatch.setenv("PHASEGATE_CONFIG", str(kafka_settings.store_path / "none.toml"))
    monkeypatch.delenv("PHASEGATE_CLICKHOUSE_URL", raising=False)
    result = CliRunner().invoke(app, ["sink"])
    assert result.exit_code == 1
    assert "no Kafka broker at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def test_fetched_messages_go_by_partition_in_order_and_errors_apart() -> None:
    from confluent_kafka import KafkaError, Message

    from sinks.consumer import Partition, by_partition

    where = [("r", 0, 1), ("r", 0, 2), ("r", 1, 5), ("r", 0, 3), ("f", 0, 9)]
    messages = [Message(topic=t, partition=p, offset=o, value=b"{}") for t, p, o in where]
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
    messages.insert(2, Message(topic="f", partition=0, offset=10, error=timed_out))
    groups, failed = by_partition(messages)
    assert {p: [m.offset() for m in run] for p, run in groups.items()} == {
        Partition("r", 0): [1, 2, 3],
        Partition("r", 1): [5],
        Partition("f", 0): [9],
    }
    assert [m.offset() for m in failed] == [10]
    assert by_partition([]) == ({}, [])
