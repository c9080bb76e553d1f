"""Live gates and stored verdicts agree on every metric of the registry (property test).

Random results and feedback of a two-phase rollout go through the live path (stage 1's
partition accumulators, the rollout view's window aggregates, ``streams.gates``) and
through the store (the sink's batch and insert, the rollups, ``sinks.phase_report``) on
both backends; every metric is judged in every criterion form (``min``, ``max``,
``compare = "baseline"`` and ``"previous_phase"``). Both must give the same samples,
observed value, interval and verdict: exactly (to float rounding of sums) for counts,
rates and means; within the sketches' stated accuracy for latency quantiles, where a
threshold inside that band may be judged either way.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import Phase as Stage
from hypothesis import strategies as st

from rollout.state import fold
from schemas import ErrorInfo, Feedback, Result, RolloutEvent
from schemas.confseq import cs_z
from schemas.metrics import METRICS, QUANTILE_RANK_ERROR, Mean, Metric, Quantile
from schemas.plan import Criterion, Phase, Plan
from schemas.verdict import DEFAULT_ALPHA, Verdict
from sinks.batch import Batch, entry_columns
from sinks.migrations import migrate
from sinks.phase_report import phase_report
from sinks.store import Store
from streams.gates import evaluate
from streams.windows import PartitionAccumulator, RolloutView
from tests.sinks.conftest import T0

WINDOW = 60
PHASE_2 = T0 + timedelta(minutes=10)
CANDIDATE, BASELINE = "production", "pipeline"


@dataclass(frozen=True)
class Group:
    """How one system's events in one phase are drawn."""

    results: int
    success: float
    fallback: float
    critical: float
    mu: float  # log-normal latency
    sigma: float
    verdicts: tuple[int, int, int]  # correct, incorrect, unsure


groups = st.builds(
    Group,
    results=st.integers(0, 160),
    success=st.floats(0, 1),
    fallback=st.floats(0, 0.3),
    critical=st.floats(0, 0.05),
    mu=st.floats(2, 7),
    sigma=st.sampled_from([0.0, 0.05, 0.5, 1.2]),
    verdicts=st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 5)),
)

RANGES = {"share": (0.0, 1.0), "ms": (0.0, 1500.0), "score": (0.0, 1.0)}


def bounds(m: Metric) -> st.SearchStrategy[list[Criterion]]:
    if m.unit == "count":  # a count takes a maximum only
        return st.integers(0, 4).map(lambda n: [Criterion(metric=m.name, max=n)])
    low, high = RANGES[m.unit]
    value = st.floats(low, high)
    return st.tuples(value, value).map(
        lambda t: [Criterion(metric=m.name, min=t[0]), Criterion(metric=m.name, max=t[1])]
    )


def comparisons(m: Metric) -> st.SearchStrategy[list[Criterion]]:
    margin = st.floats(0, 50.0 if m.unit == "ms" else 0.1)
    return st.tuples(margin, margin).map(
        lambda t: [
            Criterion(metric=m.name, compare="baseline", margin=t[0]),
            Criterion(metric=m.name, compare="previous_phase", margin=t[1]),
        ]
    )


criteria = st.tuples(
    *(bounds(m) for m in METRICS.values()),
    *(comparisons(m) for m in METRICS.values() if m.comparable),
).map(lambda parts: [c for part in parts for c in part])


def draw(rng: random.Random, rollout: str, system: str, start, g: Group):
    """``g``'s results and feedback over the 10 minutes from ``start``, in time order."""
    results, feedback = [], []
    for i in range(g.results):
        ok = rng.random() < g.success
        results.append(
            Result(
                rollout=rollout,
                system=system,
                ts=start + timedelta(seconds=int(i * 600 / max(g.results, 1))),
                query_id=f"{system}-{start:%M}-{i}",
                unit_id=f"u{i % 17}",
                success=ok,
                confidence=round(rng.random(), 3),
                latency_ms=round(rng.lognormvariate(g.mu, g.sigma), 3),
                error=None if ok else ErrorInfo(type="x", critical=rng.random() < g.critical),
                fallback=rng.random() < g.fallback,
                weight=50,
            )
        )
    kinds = ["correct"] * g.verdicts[0] + ["incorrect"] * g.verdicts[1] + ["unsure"] * g.verdicts[2]
    rng.shuffle(kinds)
    for i, verdict in enumerate(kinds):
        at = start + timedelta(seconds=int(i * 600 / len(kinds)))
        feedback.append(
            Feedback(rollout=rollout, system=system, query_id=f"f{i}", verdict=verdict, ts=at)
        )
    return results, feedback


def live(rollout: str, plan: Plan, log, results, feedback):
    """The worker's gate report: two partitions per topic through stage 1, one view."""
    view = RolloutView(rollout, WINDOW)
    for topic, events in (("results", results), ("feedback", feedback)):
        parts = [
            PartitionAccumulator(topic, p, WINDOW, lateness=10**6, max_future=10**10)
            for p in (0, 1)
        ]
        for offset, event in enumerate(sorted(events, key=lambda e: e.ts)):
            parts[offset % 2].add(offset, event, now=T0.timestamp())
        for part in parts:
            for partial in part.drain():
                view.apply(partial)
    return evaluate(plan, view, fold(log, rollout))[0]


def store_all(store: Store, database: str, events) -> None:
    """As the sink stores a batch (``sinks.consumer``): by table, with ledger columns."""
    batch = Batch()
    for model in (Result, Feedback, RolloutEvent):
        mine = [e for e in events if isinstance(e, model)]
        batch.add_many(0, list(range(len(mine))), mine, model)
    for table, entries in batch.tables():
        store.insert(f"{database}.{table.name}", entry_columns(table, entries))


def exact_band(latencies: list[float], level: float) -> tuple[float, float]:
    """Where a sketch may put the ``level`` quantile: the values of the ranks within its
    stated rank error (plus one for interpolation), widened by 1% (DDSketch)."""
    xs, n = sorted(latencies), len(latencies)
    slack = QUANTILE_RANK_ERROR * n + 1
    lo = max(0, math.floor(level * (n - 1) - slack))
    hi = min(n - 1, math.ceil(level * (n - 1) + slack))
    return xs[lo] * (1 - QUANTILE_RANK_ERROR), xs[hi] * (1 + QUANTILE_RANK_ERROR)


def close(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=tol)


def rounding(m: Metric, *values: float | None) -> float:
    """How far live and stored may differ by float rounding: none for counts and rates
    (whole numbers); for means, the sums' rounding, amplified by the variance's
    ``sum of squares - n * mean**2`` to about sqrt(epsilon) of the values' size."""
    if not isinstance(m.estimator, Mean):
        return 1e-9
    return 1e-6 * (1 + max(abs(v) for v in values if v is not None))


def agree(m: Metric, got: Verdict, want: Verdict, latencies: list[float], needed: int) -> None:
    """``got`` (stored) says what ``want`` (live) says, within the metric's accuracy."""
    assert (got.samples, got.reference_samples) == (want.samples, want.reference_samples)
    assert close(got.threshold, want.threshold)
    stored, live = (got.observed, got.low, got.high), (want.observed, want.low, want.high)
    figures = list(zip(stored, live, strict=True))
    if isinstance(m.estimator, Quantile) and want.observed is not None:
        z = cs_z(len(latencies), needed, DEFAULT_ALPHA)  # the confidence sequence's width
        levels = m.estimator.levels(len(latencies), z)
        bands = [exact_band(latencies, x) for x in levels]
        for (mine, theirs), (lo, hi) in zip(figures, bands, strict=True):
            assert lo <= mine <= hi and lo <= theirs <= hi, (m.name, mine, theirs, lo, hi)
        undecided = any(lo <= got.threshold <= hi for lo, hi in bands[1:])
    else:
        tol = rounding(m, got.threshold, *(v for pair in figures for v in pair))
        for mine, theirs in figures:
            assert close(mine, theirs, tol), (got, want)
        # a threshold within rounding of an interval's end may be judged either way
        ends = (*stored[1:], *live[1:])
        undecided = any(e is not None and abs(e - got.threshold) <= tol for e in ends)
        if not undecided:
            assert close(got.p_value, want.p_value), (got, want)
    if not undecided:
        assert got.outcome == want.outcome, (got, want)


@pytest.mark.timeout(240)
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same examples every run
    phases=[Stage.explicit, Stage.generate],  # a failure shows its example without shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    groups=st.tuples(groups, groups, groups, groups),  # candidate, baseline, then before
    gates=criteria,
    needed=st.tuples(st.integers(1, 60), st.integers(1, 20)),
    seed=st.integers(0, 2**32),
)
def test_live_gates_and_stored_verdicts_agree_on_every_metric(
    store: Store, migrated: str, groups, gates, needed, seed
) -> None:
    rollout, rng = f"r{uuid.uuid4().hex[:10]}", random.Random(seed)
    now_c, now_b, before_c, before_b = (
        draw(rng, rollout, system, start, g)
        for (system, start), g in zip(
            [(CANDIDATE, PHASE_2), (BASELINE, PHASE_2), (CANDIDATE, T0), (BASELINE, T0)],
            groups,
            strict=True,
        )
    )
    phase = Phase(
        name="p2", weight=75, advance=gates, min_samples=needed[0], min_feedback=needed[1]
    )
    plan = Plan(phases=[Phase(name="p1", weight=50), phase])
    log = [
        RolloutEvent(rollout=rollout, type="phase_started", phase=1, weight=50, ts=T0),
        RolloutEvent(rollout=rollout, type="phase_started", phase=2, weight=75, ts=PHASE_2),
    ]
    results = [r for part in (now_c, now_b, before_c, before_b) for r in part[0]]
    feedback = [f for part in (now_c, now_b, before_c, before_b) for f in part[1]]
    store_all(store, migrated, [*results, *feedback, *log])

    worker = live(rollout, plan, log, results, feedback)
    report = phase_report(store, migrated, rollout, 2, phase)
    if worker is None:  # no event in phase 2 at all: the worker has no window to judge
        assert not now_c[0] and not now_b[0] and not now_c[1] and not now_b[1]
        return
    assert len(report.verdicts) == len(worker.verdicts) == len(gates)
    latencies = [r.latency_ms for r in now_c[0]]
    for got, want in zip(report.verdicts, worker.verdicts, strict=True):
        agree(METRICS[got.metric], got, want, latencies, phase.min_samples)


@pytest.fixture
def migrated(store: Store, database: str) -> str:
    """``database`` migrated once for every example (each example has its own rollout)."""
    migrate(store, database)
    return database
