"""The sink's pure bookkeeping, on a fake clock."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

from kafka import TopicPartition

from schemas import DeadLetter, DecodeError, Feedback
from sinks.batch import (
    SINK_COLLECTOR,
    Batch,
    Throttle,
    entry_columns,
    refuse_times,
    seldom_collected,
)
from tests.fakes import FakeClock
from tests.sinks.conftest import make_result


def test_batch_groups_by_table_and_tracks_first_and_next_offsets() -> None:
    clock = FakeClock()
    batch = Batch(clock=clock)
    p0, p1 = TopicPartition("r", 0), TopicPartition("f", 1)
    batch.add(p0, 5, make_result(1))
    batch.add(p0, 3, make_result(2))
    batch.add(p1, 0, Feedback(rollout="r", query_id="q", system="s", verdict="correct"))
    batch.add_dead(p1, 1, DeadLetter(component="t", source_topic="x", reason="r", original=b""))
    assert len(batch) == 4
    assert batch.offsets == {p0: 6, p1: 2}
    assert batch.first == {p0: 3, p1: 0}  # where a rebalance reads again from
    tables = {table.name: entry_columns(table, entries) for table, entries in batch.tables()}
    assert len(tables["results"]["event_id"]) == 2
    assert tables["results"]["kafka_offset"] == [5, 3]
    assert tables["results"]["kafka_partition"] == [0, 0]
    assert len(tables["feedback"]["event_id"]) == 1
    results = next(t for t, _ in batch.tables() if t.name == "results")
    batch.stored(results)
    assert [t.name for t, _ in batch.tables()] == ["feedback"]
    batch.clear()
    assert len(batch) == 0 and not batch.offsets and not batch.first


def test_batch_is_due_when_full_or_old() -> None:
    clock = FakeClock()
    batch = Batch(clock=clock)
    assert not batch.due(max_rows=2, max_seconds=1.0)
    batch.add("p", 0, make_result(1))
    assert not batch.due(max_rows=2, max_seconds=1.0)
    clock.now += 1.0
    assert batch.due(max_rows=2, max_seconds=1.0)
    clock.now -= 1.0
    batch.add("p", 1, make_result(2))
    assert batch.due(max_rows=2, max_seconds=1.0)


def test_throttle_says_yes_once_per_interval_and_counts_the_rest() -> None:
    clock = FakeClock()
    throttle = Throttle(interval=10.0, clock=clock)
    assert throttle.due()
    assert not throttle.due() and not throttle.due()
    clock.now += 10.0
    assert throttle.due()
    assert throttle.take_suppressed() == 2
    assert throttle.take_suppressed() == 0


def test_refuse_times_turns_unstorable_times_into_decode_errors() -> None:
    now = 2_000_000_000.0
    fine = [make_result(i) for i in range(3)]
    assert refuse_times(fine, now, 60) is fine  # min and max checked, nothing rebuilt
    future = make_result(5, ts=datetime.fromtimestamp(now + 3600, UTC))
    ancient = make_result(6, ts=datetime(1969, 12, 31, tzinfo=UTC))
    bad = DecodeError("json: broken")
    got = refuse_times([fine[0], future, bad, ancient, fine[1]], now, 60)
    assert got[0] is fine[0] and got[2] is bad and got[4] is fine[1]
    assert isinstance(got[1], DecodeError) and "future" in got[1].reason
    assert isinstance(got[3], DecodeError) and "1970" in got[3].reason
    assert refuse_times([bad], now, 60) == [bad]


def test_the_sink_collects_seldom_and_gives_the_thresholds_back() -> None:
    before = gc.get_threshold()
    with seldom_collected():
        assert gc.get_threshold() == SINK_COLLECTOR
        assert gc.get_threshold()[0] > 20 * before[0]
    assert gc.get_threshold() == before
