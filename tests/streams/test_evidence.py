"""The triggers' evidence: only new events, their latency bins compact and exact."""

from __future__ import annotations

import gc
import random

import pytest

from schemas.plan import load_plan
from streams.aggregate import WindowStats
from streams.evidence import Evidence, Recent, RunSketch, WindowMarks
from streams.sketch import (
    BIN,
    NO_BINS,
    Bins,
    LatencySketch,
    bins_dict,
    bins_highest,
    bins_of,
    bins_over,
    bins_sum,
)

TRIGGERS = [t for t in load_plan().rollback if not t.guardrail]


def window(latencies: list[float]) -> WindowStats:
    stats = WindowStats()
    stats.count = stats.successes = len(latencies)
    stats.latency.update_many(latencies)
    return stats


def dict_bins(rng: random.Random, n: int) -> dict[int, float]:
    return {k: float(rng.randrange(1, 50)) for k in rng.sample(range(-40, 40), n)}


def bins(d: dict[int, float]) -> Bins:
    return bins_of(sorted(d), [d[k] for k in sorted(d)])


@pytest.mark.parametrize("seed", range(20))
def test_bins_add_increase_and_high_water_as_dicts_do(seed):
    rng = random.Random(seed)
    a, b = dict_bins(rng, rng.randrange(0, 30)), dict_bins(rng, rng.randrange(0, 30))
    keys = a.keys() | b.keys()
    assert bins_dict(bins_sum(bins(a), bins(b))) == {k: a.get(k, 0.0) + b.get(k, 0.0) for k in keys}
    increase = {k: v - b.get(k, 0.0) for k, v in a.items() if v > b.get(k, 0.0)}
    assert bins_dict(bins_over(bins(a), bins(b))) == increase
    assert bins_dict(bins_highest(bins(a), bins(b))) == {
        k: max(a.get(k, 0.0), b.get(k, 0.0)) for k in keys
    }
    assert bins(a).dtype == BIN and not gc.is_tracked(bins(a))  # nothing for the GC to walk


@pytest.mark.parametrize("seed", range(5))
def test_the_evidence_of_a_growing_window_is_its_new_events_bins(seed):
    rng, marks = random.Random(seed), WindowMarks(TRIGGERS)
    seen: list[float] = []
    run = RunSketch()
    for _ in range(30):
        before = window(seen).latency.to_state().bins
        seen += [rng.lognormvariate(4.6, 0.6) for _ in range(rng.randrange(0, 8))]
        now = window(seen)
        evidence = marks.take(60, now, None)
        increase = {
            k: v - before.get(k, 0.0)
            for k, v in now.latency.to_state().bins.items()
            if v > before.get(k, 0.0)
        }
        assert (bins_dict(evidence.bins) if evidence else {}) == increase
        run.add(evidence.bins if evidence else NO_BINS)
    whole = window(seen).latency
    assert [run.quantile(q) for q in (0.5, 0.95, 1.0)] == whole.quantiles([0.5, 0.95, 1.0])


def test_a_bucket_a_replay_dropped_and_brings_back_is_not_evidence_twice():
    """A replayed run may leave a window with fewer events for a while; when they are
    back, neither their count nor their latency bins are new."""
    marks = WindowMarks(TRIGGERS)
    first = marks.take(60, window([100.0, 300.0]), None)
    assert first.n == 2 and first.bins["count"].sum() == 2
    assert marks.take(60, window([100.0]), None) is None  # the replay, part way
    again = marks.take(60, window([100.0, 300.0, 500.0]), None)
    assert again.n == 1 and again.bins["count"].sum() == 1
    assert LatencySketch.of_bins(again.bins).quantile(0.5) == pytest.approx(500.0, rel=0.01)


def test_a_run_sketch_reads_the_quantile_of_its_bins():
    run = RunSketch()
    assert run.quantile(0.5) is None
    run.add(window([100.0, 200.0]).latency.bins())
    run.add(window([300.0]).latency.bins())
    assert run.quantile(1.0) == pytest.approx(300.0, rel=0.01)
    run.clear()
    assert len(run.bins) == 0


def test_the_recent_increments_read_back_equal_and_are_nothing_for_the_gc():
    taken = [
        Evidence(60 * i, float(i), i, {"errors": i % 3, "slow": 1}, bins_of([i], [1.0]), None)
        for i in range(300)
    ]
    gc.collect()
    objects = len(gc.get_objects())
    recent = Recent(200)
    for evidence in taken:
        recent.append(evidence)
    gc.collect()  # a pass untracks the tuples of atoms it meets
    assert len(gc.get_objects()) - objects <= 2  # the Recent and its deque: no row
    assert list(recent) == taken[-200:]
