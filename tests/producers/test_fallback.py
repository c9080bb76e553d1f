"""Fallback: the caller gets the baseline's answer, never the candidate's exception."""

from __future__ import annotations

import asyncio
import time

import pytest

from phasegate.testing.topics import read_values
from producers.emitter import Emitter
from producers.fallback import Outcome, Request, critical_when, serve, serve_async
from schemas.codec import decode
from schemas.events import Result

REQ = Request(rollout="r", query_id="q1", unit_id="u1", weight=100)


class ListSink:
    def __init__(self) -> None:
        self.events: list[Result] = []

    def emit(self, event: Result) -> bool:
        self.events.append(event)
        return True


def boom() -> str:
    raise MemoryError("model server out of memory")


def slow() -> str:
    time.sleep(1.0)
    return "late"


def test_fallback_on_raise_and_timeout_reaches_the_broker(kafka_settings):
    with Emitter(kafka_settings) as emitter:
        classify = critical_when(MemoryError)
        assert (
            serve(boom, lambda: "old", 1.0, emitter=emitter, request=REQ, classify=classify)
            == "old"
        )
        req2 = Request(rollout="r", query_id="q2", unit_id="u2", weight=100, segment="de")
        t0 = time.perf_counter()
        assert serve(slow, lambda: "old", 0.1, emitter=emitter, request=req2) == "old"
        assert time.perf_counter() - t0 < 0.5
        assert emitter.flush(10)
    values = read_values(kafka_settings.bootstrap_servers, kafka_settings.topics.results, 4)
    got = {(r.query_id, r.system): r for r in (decode(v, Result) for v in values)}
    assert len(got) == 4
    crashed, served = got["q1", "production"], got["q1", "pipeline"]
    assert not crashed.success and not crashed.fallback
    assert crashed.error.type == "MemoryError" and crashed.error.critical
    assert "out of memory" in crashed.error.message
    assert served.success and served.fallback and served.weight == 100
    timed_out = got["q2", "production"]
    assert timed_out.error.type == "CandidateTimeout" and not timed_out.error.critical
    assert 100 <= timed_out.latency_ms < 500
    assert got["q2", "pipeline"].fallback
    assert (crashed.segment, timed_out.segment, got["q2", "pipeline"].segment) == (None, "de", "de")


def test_candidate_success_is_one_event_with_its_assessment():
    sink = ListSink()
    answer = serve(
        lambda: "new",
        lambda: pytest.fail("baseline must not run"),
        1.0,
        emitter=sink,
        request=REQ,
        assess=lambda a: Outcome(success=True, confidence=0.7, rules=("r1",)),
    )
    assert answer == "new"
    [event] = sink.events
    assert (event.system, event.confidence, event.rules, event.fallback) == (
        "production",
        0.7,
        ["r1"],
        False,
    )


def test_baseline_failure_propagates_after_both_events():
    sink = ListSink()
    with pytest.raises(ZeroDivisionError):
        serve(boom, lambda: 1 // 0, None, emitter=sink, request=REQ)
    assert [(e.system, e.success, e.fallback) for e in sink.events] == [
        ("production", False, False),
        ("pipeline", False, True),
    ]


def test_a_broken_assess_never_breaks_serving():
    sink = ListSink()
    assert (
        serve(
            lambda: "new",
            lambda: "old",
            None,
            emitter=sink,
            request=REQ,
            assess=lambda a: Outcome(confidence=2.0),
        )
        == "new"
    )  # invalid: not emitted
    assert sink.events == []


def test_async_timeout_cancels_and_falls_back():
    sink = ListSink()
    cancelled = []

    async def hang() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "late"

    async def old() -> str:
        return "old"

    assert asyncio.run(serve_async(hang, old, 0.05, emitter=sink, request=REQ)) == "old"
    assert cancelled == [True]
    assert [e.error.type if e.error else None for e in sink.events] == ["CandidateTimeout", None]


def test_observe_emits_the_baseline_path_and_propagates_its_failure():
    from producers.fallback import observe

    sink = ListSink()
    assert observe(lambda: "old", system="pipeline", emitter=sink, request=REQ) == "old"
    with pytest.raises(KeyError):
        observe(lambda: {}["x"], system="pipeline", emitter=sink, request=REQ)
    assert [(e.system, e.success, e.fallback) for e in sink.events] == [
        ("pipeline", True, False),
        ("pipeline", False, False),
    ]
    assert sink.events[1].error.type == "KeyError"
