import gc
import math

import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import encode
from schemas.events import Feedback, Result
from schemas.fastcodec import fast_decode_structs
from schemas.internal import SegmentState, WindowStatsState
from schemas.metrics import METRICS, metric
from streams import slow
from streams.aggregate import WindowStats
from streams.sketch import RELATIVE_ACCURACY, LatencySketch
from tests.streams.conftest import make_result

events = st.lists(
    st.tuples(
        st.booleans(),
        st.floats(0, 1),
        st.floats(0.0, 60_000.0),
        st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3),
        st.sampled_from([None, "de", "en"]),
    ),
    max_size=200,
)


def _results(rows):
    return [
        make_result(
            i, success=ok, confidence=c, latency_ms=lat, rules=tuple(rules), segment=segment
        )
        for i, (ok, c, lat, rules, segment) in enumerate(rows)
    ]


def _aggregate(results) -> WindowStats:
    stats = WindowStats()
    for r in results:
        stats.update(r)
    return stats


@settings(max_examples=60, deadline=None)
@given(events, st.integers(0, 200))
def test_merging_two_halves_equals_the_whole(rows, cut):
    results = _results(rows)
    whole = _aggregate(results)
    merged = _aggregate(results[:cut]).merge(_aggregate(results[cut:]))
    a, b = whole.to_state(), merged.to_state()
    assert a.count == b.count and a.successes == b.successes
    assert a.errors == b.errors and a.critical == b.critical
    assert a.error_latency == b.error_latency
    for part in ("rules", "segments"):  # confidence sums: equal up to the order of adding
        counts = [
            {k: v.model_copy(update={"confidence": 0.0}) for k, v in getattr(s, part).items()}
            for s in (a, b)
        ]
        assert counts[0] == counts[1]
        sums = [{k: v.confidence for k, v in getattr(s, part).items()} for s in (a, b)]
        assert sums[0] == pytest.approx(sums[1], abs=1e-9)
    assert math.isclose(a.confidence_sum, b.confidence_sum, abs_tol=1e-9)
    assert math.isclose(a.latency_sum, b.latency_sum, rel_tol=1e-12, abs_tol=1e-6)
    for q in (0.5, 0.95, 0.99):
        assert whole.latency_quantile(q) == merged.latency_quantile(q)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.5, 100_000.0), min_size=20, max_size=2000))
def test_p95_within_one_percent_of_exact(latencies):
    stats = _aggregate(_results([(True, 0.5, x, [], None) for x in latencies]))
    exact = sorted(latencies)[math.floor(0.95 * (len(latencies) - 1))]
    assert abs(stats.latency_quantile(0.95) - exact) <= 0.01 * exact + 1e-9


def test_state_round_trip_keeps_every_metric():
    results = _results(
        [
            (i % 5 != 0, i / 100, 10.0 + i, ["a"] * (i % 2), ("de", "en", None)[i % 3])
            for i in range(100)
        ]
    )
    stats = _aggregate(results)
    back = WindowStats.from_state(stats.to_state())
    assert back.to_state() == stats.to_state()
    assert back.latency_quantile(0.95) == stats.latency_quantile(0.95)
    assert all(m.estimate(back) == m.estimate(stats) for m in METRICS.values())


def test_rates_and_intervals():
    stats = _aggregate(_results([(i < 90, 0.8, 50.0, ["r"], None) for i in range(100)]))
    rate = metric("success_rate").estimate(stats)
    assert rate.value == 0.9 and rate.low < 0.9 < rate.high
    assert 0.82 < rate.low < 0.85 and 0.94 < rate.high < 0.96  # Wilson, n=100
    assert stats.errors == {"Timeout": 10}
    assert stats.top_rules() == [("r", 100, 0.9)]
    assert metric("success_rate").estimate(WindowStats()) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e5, allow_nan=False), max_size=300),
    st.lists(st.floats(0, 1), min_size=1, max_size=5),
)
def test_quantiles_in_one_pass_are_ddsketchs_own(latencies, levels):
    sketch, reference = LatencySketch(), DDSketch(RELATIVE_ACCURACY)
    for value in latencies:
        sketch.update(value)
        reference.add(value)
    want = [reference.get_quantile_value(q) if latencies else None for q in levels]
    assert sketch.quantiles(levels) == want


def test_segments_count_events_bad_ones_and_their_confidence():
    rows = [(i % 4 != 0, 0.9, 50.0, [], "de" if i % 2 else "en") for i in range(8)] + [
        (False, 0.9, 50.0, [], None)
    ]
    stats = _aggregate(_results(rows))
    latency = {slow.bin_of(50.0): 4}
    assert stats.to_state().segments == {
        "de": SegmentState(events=4, bad=0, confidence=0.9 * 4, latency=latency),
        "en": SegmentState(events=4, bad=2, confidence=0.9 * 4, latency=latency),
    }


def test_a_partial_without_segments_still_reads():
    old = WindowStatsState.model_validate({"count": 3, "successes": 2})
    assert WindowStats.from_state(old).segment_events == {}


@settings(max_examples=60, deadline=None)
@given(events, st.integers(1, 50))
def test_batches_add_up_as_their_events_one_by_one(rows, size):
    results = _results(rows)
    batched = WindowStats()
    for start in range(0, len(results), size):
        batched.add_results(results[start : start + size])
    assert batched.to_state() == _aggregate(results).to_state()


@settings(max_examples=30, deadline=None)
@given(events)
def test_the_typed_structs_aggregate_as_the_models(rows):
    results = _results(rows)
    structs = fast_decode_structs([encode(r) for r in results], Result)
    assert not any(isinstance(s, Result) for s in structs)  # the fast path, no model
    from_structs = WindowStats()
    from_structs.add_results(structs)
    assert from_structs.to_state() == _aggregate(results).to_state()


def _tracked(stats: WindowStats) -> list[str]:
    """The slots of ``stats`` whose value, or a value within it, the GC tracks."""
    found = []
    for name in WindowStats.__slots__:
        value = getattr(stats, name)
        inner = value.values() if isinstance(value, dict) else ()
        if gc.is_tracked(value) or any(gc.is_tracked(v) for v in inner):
            found.append(name)
    return found


def test_a_merged_windows_counts_are_nothing_for_the_garbage_collector():
    rows = [
        (i % 3 != 0, 0.9, 10.0 * i, ["a", "b"][: i % 3], ["de", None][i % 2]) for i in range(30)
    ]
    feedback = [
        Feedback(
            rollout="kai",
            system="production",
            query_id=f"q{i}",
            verdict=verdict,
            rules=["a"],
            segment="de",
        )
        for i, verdict in enumerate(["correct", "incorrect", "unsure"])
    ]
    parts = [_aggregate(_results(rows)) for _ in range(2)]
    for part in parts:
        part.add_feedback(feedback)
    merged = WindowStats.merged(parts)
    gc.collect()  # a pass leaves out the tuples of strings ((rule, verdict) keys) it meets
    assert gc.is_tracked(merged) and gc.is_tracked(merged.latency)
    assert merged.rule_feedback and merged.errors and merged.segment_bad
    # latency bins by value: a dict of dicts (only the outer one tracked)
    assert _tracked(merged) == ["error_latency", "latency", "rule_latency", "segment_latency"]
    for by_bin in (merged.error_latency, merged.rule_latency, merged.segment_latency):
        assert not any(gc.is_tracked(tally) for tally in by_bin.values())
