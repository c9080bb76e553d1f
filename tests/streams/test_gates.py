"""Gate verdicts: pass, fail and inconclusive with their evidence; two-sample comparisons."""

from __future__ import annotations

import math
import statistics
from datetime import timedelta

import pytest

from rollout.state import fold
from schemas.events import RolloutEvent
from schemas.metrics import metric
from schemas.plan import Criterion, Phase, Plan, load_plan
from schemas.verdict import judge
from streams.aggregate import WindowStats
from streams.gates import Looks, evaluate
from streams.windows import PartitionAccumulator, RolloutView
from tests.streams.conftest import T0, make_result

PHASE = Phase(name="p", weight=50, min_samples=200, min_feedback=20)


def stats(n: int, successes: int, latency: float = 100.0, system: str = "production"):
    s = WindowStats()
    for i in range(n):
        s.update(make_result(i, system=system, success=i < successes, latency_ms=latency + i % 7))
    return s


@pytest.mark.parametrize(
    ("n", "ok", "outcome"),
    [
        (1000, 990, "pass"),
        (1000, 900, "fail"),
        (1000, 955, "inconclusive"),
        (100, 100, "inconclusive"),
    ],
)
def test_a_bound_passes_only_when_the_whole_interval_clears_it(n, ok, outcome):
    v = judge(Criterion(metric="success_rate", min=0.95), PHASE, stats(n, ok))
    assert v.outcome == outcome
    assert v.samples == n and v.threshold == 0.95
    assert v.low <= v.observed == ok / n <= v.high


def test_below_the_minimum_sample_says_how_many_are_missing():
    v = judge(Criterion(metric="success_rate", min=0.5), PHASE, stats(50, 50))
    assert v.outcome == "inconclusive" and "50 of 200" in v.note


def test_a_critical_error_fails_at_once():
    s = stats(10, 10)
    s.update(make_result(99, success=False, critical=True))
    assert judge(Criterion(metric="critical_errors", max=0), PHASE, s).outcome == "fail"
    assert judge(Criterion(metric="critical_errors", max=0), PHASE, stats(300, 300)).outcome == (
        "pass"
    )


def test_latency_quantile_bound_uses_order_statistics():
    fast, slow = stats(1000, 1000, latency=100), stats(1000, 1000, latency=400)
    assert judge(Criterion(metric="p95_latency_ms", max=250), PHASE, fast).outcome == "pass"
    assert judge(Criterion(metric="p95_latency_ms", max=250), PHASE, slow).outcome == "fail"
    est = metric("p95_latency_ms").estimate(fast)
    assert est.low <= est.value <= est.high


def test_mean_latency_interval_is_exact_from_the_sums():
    s = stats(1000, 1000, latency=100)
    est = metric("mean_latency_ms").estimate(s)
    latencies = [100.0 + i % 7 for i in range(1000)]
    half = 1.959963984540054 * statistics.stdev(latencies) / math.sqrt(1000)
    assert est.value == pytest.approx(statistics.fmean(latencies), rel=1e-12)
    assert (est.low, est.high) == pytest.approx((est.value - half, est.value + half), rel=1e-9)


def test_not_worse_than_baseline_is_a_two_sample_test():
    crit = Criterion(metric="success_rate", compare="baseline", margin=0.01)
    # 5,000 a side passed a fixed 95% interval; the confidence sequence needs more
    same = judge(crit, PHASE, stats(20_000, 19_400), stats(20_000, 19_400, system="pipeline"))
    worse = judge(crit, PHASE, stats(5000, 4500), stats(5000, 4850, system="pipeline"))
    small = judge(crit, PHASE, stats(300, 291), stats(300, 291, system="pipeline"))
    assert same.outcome == "pass" and same.p_value > 0.05
    assert worse.outcome == "fail" and worse.p_value < 0.001
    assert worse.observed == pytest.approx(-0.07) and worse.high < -0.01
    # equal point values but too few events to exclude a 1-point loss
    assert small.outcome == "inconclusive" and small.reference_samples == 300


def feed(view: RolloutView, results) -> None:
    acc = PartitionAccumulator("results", 0, 60, 60, max_future=10**10)
    for i, r in enumerate(results):
        acc.add(i, r, now=T0.timestamp())
    for p in acc.drain():
        view.apply(p)


def test_previous_phase_is_the_candidate_before_the_current_phase_began():
    plan = load_plan()
    log = [
        RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1, ts=T0),
        RolloutEvent(
            rollout="kai", type="phase_started", weight=75, phase=2, ts=T0 + timedelta(minutes=10)
        ),
    ]
    view = RolloutView("kai", 60)
    before = [make_result(i, seconds=i * 0.2, latency_ms=100) for i in range(2000)]
    after = [
        make_result(i, seconds=600 + i * 0.2, success=i % 10 != 0, latency_ms=100)
        for i in range(2000)
    ]
    feed(view, before + after)
    report, _ = evaluate(plan, view, fold(log, "kai"))
    assert report.phase == 2 and report.weight == 75
    verdicts = {v.criterion: v for v in report.verdicts}
    regression = verdicts["success_rate not worse than the previous phase (margin 0.01)"]
    assert regression.outcome == "fail"
    assert regression.samples == 2000 and regression.reference_samples == 2000
    assert regression.observed == pytest.approx(-0.10)
    assert verdicts["success_rate >= 0.96"].outcome == "fail"
    assert report.outcome == "fail"


def test_a_phase_without_events_yet_is_not_judged_on_the_phase_before():
    log = [
        RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1, ts=T0),
        RolloutEvent(
            rollout="kai", type="phase_started", weight=75, phase=2, ts=T0 + timedelta(minutes=10)
        ),
    ]
    view = RolloutView("kai", 60)
    feed(view, [make_result(i, seconds=i * 0.2) for i in range(3000)])  # phase 1 only
    report, _ = evaluate(load_plan(), view, fold(log, "kai"))
    assert report.phase == 2
    assert {v.samples for v in report.verdicts} == {0}
    assert {v.outcome for v in report.verdicts} == {"inconclusive"}


def test_live_gates_hold_a_pass_wait_for_min_duration_and_leave_dry_runs_out():
    """Looks at each window's end: a pass stays through a noisy minute; min_duration and
    a dry-run criterion show in the verdicts; the outcome ignores the dry run."""
    plan = Plan(
        phases=[
            Phase(
                name="a",
                weight=50,
                min_samples=200,
                min_duration="11m",
                advance=[
                    Criterion(metric="success_rate", min=0.9),
                    Criterion(metric="success_rate", min=0.999, dry_run=True),
                ],
            )
        ]
    )
    state = fold(
        [RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1, ts=T0)], "kai"
    )
    view, looks, offset = RolloutView("kai", 60), Looks(), 0
    acc = PartitionAccumulator("results", 0, 60, 60, max_future=10**10)

    def minute(start: int, n: int, failures: int):  # one partition, offsets go on
        nonlocal offset
        for k in range(n):
            at = start * 60 + k * 60 / n
            acc.add(offset, make_result(offset, seconds=at, success=k >= failures), T0.timestamp())
            offset += 1
        for p in acc.drain():
            view.apply(p)

    for m in range(10):  # 300 events, 96.7% successful
        minute(m, 30, 1)
    report, looks = evaluate(plan, view, state, looks)
    bound, dry = report.verdicts
    assert bound.outcome == "inconclusive" and bound.note == "1m left of min_duration"
    assert (dry.outcome, dry.dry_run, dry.note) == ("fail", True, "dry-run")
    assert report.outcome == "inconclusive"
    minute(10, 30, 1)
    report, looks = evaluate(plan, view, state, looks)
    assert report.outcome == "pass" and report.verdicts[0].note == ""
    minute(11, 60, 15)  # a bad minute: alone, this span would not clear 0.9
    report, looks = evaluate(plan, view, state, looks)
    assert report.outcome == "pass"
    span = view.rolling("production", report.end - report.start, report.end)
    assert judge(plan.phases[0].advance[0], plan.phases[0], span).outcome == "inconclusive"
    restarted, _ = evaluate(plan, view, state)  # a new worker replays the same looks
    assert restarted.verdicts == report.verdicts
    minute(12, 10, 3)  # ... and after its end, the memory still holds it
    report, looks = evaluate(plan, view, state, looks)
    assert report.outcome == "pass" and report.verdicts[0].low >= 0.9
