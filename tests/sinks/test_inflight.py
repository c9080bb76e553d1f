"""Two batches in flight: the order of commits and the ledger, as pure logic (a fake
store and consumer; the real broker and servers are in test_sink.py)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from schemas import Result
from schemas.settings import Settings
from sinks.client_thread import ClientThread
from sinks.consumer import Partition, Sink
from sinks.store import Rows, Store, StoreUnavailable
from tests.sinks.conftest import make_result

_RANGE = re.compile(r"kafka_partition = (\d+) AND kafka_offset BETWEEN (\d+) AND (\d+)")


class FakeStore(Store):
    """Rows by table as (partition, offset, id); the ledger's and repair's lookups."""

    shared = False

    def __init__(self, at_once: int) -> None:
        self.inserts_at_once = at_once
        self.rows: dict[str, list[tuple[int, int, str]]] = {}
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.second = threading.Event()  # a second insert began
        self.hold_first = False  # the insert of offset 0 waits for a second one to begin
        self.fail_first = False  # ... and then raises, once

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        offsets = list(columns["kafka_offset"])
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            if self.running > 1:
                self.second.set()
        try:
            if 0 in offsets and self.hold_first:
                self.second.wait(2.0)
                if self.fail_first:
                    self.fail_first = False
                    raise StoreUnavailable("down")
            ids = list(map(str, columns["event_id"]))
            stored = zip(columns["kafka_partition"], offsets, ids, strict=True)
            with self.lock:
                self.rows.setdefault(table, []).extend(stored)
        finally:
            with self.lock:
                self.running -= 1
        return len(offsets)

    def query(self, sql: str, params=None) -> Rows:
        rows = self.rows.get(re.search(r"FROM (\S+)", sql).group(1), [])
        if "max(kafka_offset)" in sql:
            highest: dict[int, int] = {}
            for p, o, _ in rows:
                highest[p] = max(highest.get(p, -1), o)
            return Rows(["p", "o"], list(highest.items()))
        ranges = [tuple(map(int, m)) for m in _RANGE.findall(sql)]
        held = {(p, o) for p, o, _ in rows if any(p == q and a <= o <= b for q, a, b in ranges)}
        return Rows(["p", "o"], sorted(held))

    def execute(self, sql: str, params=None) -> None:
        raise AssertionError(sql)

    def close(self) -> None:
        pass


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[dict[int, int]] = []

    def commit(self, offsets, asynchronous: bool) -> list:
        self.commits.append({tp.partition: tp.offset for tp in offsets})
        return []

    def assignment(self) -> list:
        return []

    def pause(self, partitions: list) -> None:
        pass

    def resume(self, partitions: list) -> None:
        pass


@pytest.fixture
def settings() -> Settings:
    return Settings(database="db")


def _sink(settings: Settings, store: FakeStore) -> Iterator[Sink]:
    sink = Sink(settings, store, retry_first=0.01, retry_most=0.01)
    sink._loop = asyncio.new_event_loop()
    sink._pool = ThreadPoolExecutor(store.inserts_at_once)
    sink._fetcher = ClientThread("test-fetch")
    sink._consumer = FakeConsumer()  # type: ignore[assignment]
    partition = Partition(settings.topics.results, 0)
    sink.assigned.add(partition)
    sink.ledger.load([partition], {})
    try:
        yield sink
    finally:
        sink._pool.shutdown()
        sink._fetcher.shutdown()
        sink._loop.close()


@pytest.fixture
def server_like(settings: Settings) -> Iterator[Sink]:
    yield from _sink(settings, FakeStore(2))


def _in_flight(sink: Sink, *batches: list[tuple[int, Result]]) -> None:
    """Each batch (offset, event) handed off in turn, on the loop, without waiting."""
    partition = Partition(sink.settings.topics.results, 0)

    async def hand_off() -> None:
        for batch in batches:
            offsets, events = [o for o, _ in batch], [e for _, e in batch]
            sink.batch.add_many(partition, offsets, events, Result)
            sink._hand_off()

    sink._call(hand_off())


def _stored(sink: Sink) -> list[tuple[int, int, str]]:
    return sorted(sink.store.rows["db.results"])  # type: ignore[attr-defined]


def test_a_failed_batch_with_the_next_stored_is_tried_again_then_both_commit_in_order(
    server_like: Sink,
) -> None:
    sink, store = server_like, server_like.store
    store.hold_first = store.fail_first = True  # type: ignore[attr-defined]
    events = [make_result(i) for i in range(10)]
    _in_flight(sink, list(enumerate(events[:5])), [(o, events[o]) for o in range(5, 10)])

    assert not sink._call(sink.land_all())  # the first failed after the second was stored
    assert store.most == 2  # type: ignore[attr-defined]
    assert [o for _, o, _ in _stored(sink)] == list(range(5, 10))
    assert sink._consumer.commits == []  # type: ignore[union-attr]
    assert sink.paused and sink.held == 5  # the second's rows are stored, its offsets not

    assert sink._call(sink.land_all())
    assert sink._consumer.commits == [{0: 5}, {0: 10}]  # type: ignore[union-attr]
    assert _stored(sink) == [(0, o, str(e.event_id)) for o, e in enumerate(events)]
    assert not sink.pending and not sink.paused


def test_an_event_read_again_across_the_boundary_of_two_batches_in_flight_is_stored_once(
    server_like: Sink,
) -> None:
    sink, store = server_like, server_like.store
    store.hold_first = True  # type: ignore[attr-defined]
    events = [make_result(i) for i in range(9)]
    first = list(enumerate(events[:5]))
    second = [(5, events[4]), *((o + 1, events[o]) for o in range(5, 9))]
    _in_flight(sink, first, second)

    assert sink._call(sink.land_all())
    assert store.most == 2  # type: ignore[attr-defined]
    assert sorted(i for _, _, i in _stored(sink)) == sorted(str(e.event_id) for e in events)
    assert sink._consumer.commits == [{0: 5}, {0: 10}]  # type: ignore[union-attr]
    assert sink.counters.duplicates == 1
