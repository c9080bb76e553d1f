"""Each criterion of a plan's phase judged on the stored history (rules: ``schemas.verdict``).

The criteria come from the shared rollout plan (``schemas.plan``); the numbers from
``sinks.history`` (ClickHouse, ``FINAL``), so a report shows what the worker's gates
(``streams.gates``, on live windows) would say over the same events.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.plan import FEEDBACK_METRICS, LOWER_IS_BETTER, Criterion, Phase
from schemas.stats import Comparison, Estimate, mean_interval, two_means, two_proportions, wilson
from schemas.verdict import Outcome, bound_outcome, comparison_outcome, count_outcome
from sinks.history import Side


@dataclass(frozen=True)
class Verdict:
    """One criterion's verdict with its evidence (``low``/``high``: the 95% interval)."""

    criterion: str
    metric: str
    outcome: Outcome
    observed: float | None
    low: float | None
    high: float | None
    threshold: float
    samples: int
    p_value: float | None = None
    note: str = ""


def _rate(side: Side, metric: str) -> tuple[float, float]:
    r = side.results
    if metric == "success_rate":
        return (r.successes, r.events) if r else (0, 0)
    if metric == "fallback_rate":
        return (r.fallbacks, r.events) if r else (0, 0)
    verdict = "correct" if metric == "feedback_positive_rate" else "incorrect"
    return side.feedback.get(verdict, 0), side.feedback_total


def _moments(side: Side, metric: str) -> tuple[float, float, float]:
    r = side.results
    if r is None:
        return 0.0, 0.0, 0
    if metric == "mean_latency_ms":
        return r.latency_sum, r.latency_sq_sum, r.events
    return r.confidence_sum, r.confidence_sq_sum, r.events


def samples(side: Side, metric: str) -> int:
    return side.feedback_total if metric in FEEDBACK_METRICS else side.events


def measure(side: Side, metric: str) -> Estimate | None:
    """The metric's value and 95% interval (quantiles and counts: the value alone)."""
    r = side.results
    if metric == "critical_errors":
        n = r.critical_errors if r else 0
        return Estimate(n, n, n)
    if metric in ("mean_latency_ms", "mean_confidence"):
        return mean_interval(*_moments(side, metric))
    if metric == "p95_latency_ms":
        return Estimate(r.p95_latency_ms, r.p95_latency_ms, r.p95_latency_ms) if r else None
    return wilson(*_rate(side, metric))


def compare(a: Side, b: Side, metric: str) -> Comparison | None:
    """``a`` minus ``b``: two-proportion z-test for rates, Welch z-test for means."""
    if metric in ("mean_latency_ms", "mean_confidence"):
        return two_means(_moments(a, metric), _moments(b, metric))
    return two_proportions(*_rate(a, metric), *_rate(b, metric))


def judge(
    criterion: Criterion,
    gate: Phase,
    candidate: Side,
    baseline: Side | None = None,
    previous: Side | None = None,
) -> Verdict:
    metric = criterion.metric
    n = samples(candidate, metric)
    needed = gate.min_feedback if metric in FEEDBACK_METRICS else gate.min_samples
    note = f"{n} of {needed} samples" if n < needed else ""
    if criterion.compare is not None:
        reference = baseline if criterion.compare == "baseline" else previous
        if reference is None or not samples(reference, metric):
            what = "baseline" if criterion.compare == "baseline" else "previous phase"
            return Verdict(criterion.label, metric, "inconclusive", None, None, None,
                           criterion.margin, n, note=f"no {what} data")  # fmt: skip
        lower_better = metric in LOWER_IS_BETTER
        test = compare(candidate, reference, metric)
        fewest = min(n, samples(reference, metric))
        outcome = comparison_outcome(test, criterion.margin, lower_better, fewest, needed)
        note = f"{fewest} of {needed} samples on a side" if fewest < needed else ""
        return Verdict(
            criterion.label,
            metric,
            outcome,
            test.difference if test else None,
            test.low if test else None,
            test.high if test else None,
            criterion.margin if lower_better else -criterion.margin,
            n,
            test.p_worse(criterion.margin, lower_is_worse=not lower_better) if test else None,
            note,
        )
    est = measure(candidate, metric)
    threshold = criterion.max if criterion.max is not None else criterion.min
    assert threshold is not None
    if metric == "critical_errors":
        outcome = count_outcome(est.value if est else 0, threshold, n, needed)
    else:
        outcome = bound_outcome(est, criterion.min, criterion.max, n, needed)
    return Verdict(
        criterion.label,
        metric,
        outcome,
        est.value if est else None,
        est.low if est else None,
        est.high if est else None,
        threshold,
        n,
        note=note,
    )


def judge_gate(
    gate: Phase, candidate: Side, baseline: Side | None, previous: Side | None
) -> list[Verdict]:
    return [judge(c, gate, candidate, baseline, previous) for c in gate.advance]
