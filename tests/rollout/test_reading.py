"""The pure core of every follower: positions, the end seen at start, the caught-up rule."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from rollout.reading import Reading
from schemas.codec import encode
from schemas.events import RolloutEvent


@dataclass(frozen=True)
class TP:
    partition: int


@dataclass(frozen=True)
class Rec:
    offset: int
    value: bytes | None


def event(weight: int) -> bytes:
    return encode(RolloutEvent(rollout="r", type="weight_set", weight=weight))


@pytest.fixture
def got() -> list[RolloutEvent]:
    return []


@pytest.fixture
def reading(got) -> Reading:
    return Reading("log", RolloutEvent, got.append)


def test_an_empty_topic_is_caught_up_at_once(reading):
    assert reading.start({TP(0): 0, TP(1): 0}, {TP(0): 0, TP(1): 0}) == {TP(0): 0, TP(1): 0}
    assert reading.caught_up


def test_caught_up_only_when_every_partition_reached_its_end(reading, got):
    reading.start({TP(0): 0, TP(1): 0}, {TP(0): 2, TP(1): 1})
    assert not reading.read({})  # nothing fetched yet: not the end
    assert not reading.read({TP(0): [Rec(0, event(10)), Rec(1, event(20))]})
    assert reading.read({TP(1): [Rec(0, event(30))]})
    assert [e.weight for e in got] == [10, 20, 30]


def test_a_read_that_may_have_left_records_buffered_is_not_the_end(got):
    reading = Reading("log", RolloutEvent, got.append, limit=2)
    reading.start({TP(0): 0}, {TP(0): 1})  # Tansu: the last batch (offsets 0..2) starts at 0
    assert not reading.read({TP(0): [Rec(0, event(1)), Rec(1, event(2))]})  # the limit
    assert reading.read({TP(0): [Rec(2, event(3))]})


def test_events_written_after_start_are_not_awaited(reading):
    reading.start({TP(0): 0}, {TP(0): 1})
    assert reading.read({TP(0): [Rec(0, event(1))]})
    assert reading.caught_up and reading.end == {0: 1}
    reading.start({TP(0): 0}, {TP(0): 9})  # a reconnect once caught up keeps the first end
    assert reading.end == {0: 1} and reading.caught_up


def test_a_reconnect_resumes_where_it_was_and_skips_what_retention_removed(reading):
    reading.start({TP(0): 0}, {TP(0): 5})
    reading.read({TP(0): [Rec(0, event(1)), Rec(1, event(2))]})
    assert reading.start({TP(0): 0}, {TP(0): 5}) == {TP(0): 2}
    assert reading.start({TP(0): 4}, {TP(0): 5}) == {TP(0): 4}
    assert not reading.caught_up


def test_unreadable_messages_are_skipped_with_a_warning(reading, got, caplog):
    reading.start({TP(0): 0}, {TP(0): 3})
    batch = [Rec(0, b"not json"), Rec(1, None), Rec(2, event(7))]
    with caplog.at_level(logging.WARNING):
        assert reading.read({TP(0): batch})
    assert [e.weight for e in got] == [7]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "skipping unreadable message log@0",
        "skipping unreadable message log@1",
    ]


def test_an_outage_is_kept_and_warned_once(reading, caplog):
    with caplog.at_level(logging.INFO):
        reading.failed(OSError("refused"), "h:1")
        reading.failed(OSError("refused again"), "h:1")
        assert reading.error == "cannot read log at h:1: refused again"
        reading.start({TP(0): 0}, {TP(0): 0})
    assert reading.error is None
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


def test_a_missing_topic_is_an_error(reading):
    with pytest.raises(RuntimeError, match="topic log does not exist"):
        reading.partitions(set())
    assert reading.partitions({1, 0}) == [0, 1]
