"""Gate verdicts: each criterion of a phase judged as pass, fail or inconclusive.

A bound criterion (``min``/``max``) passes when the whole 95% interval of the metric is on
the right side of the threshold, fails when it is wholly on the wrong side, and is
inconclusive otherwise or below the phase's minimum sample. A comparison (``compare``)
is a two-sample test on the same span: the 95% interval of candidate minus reference
(two-proportion or Welch z) against the allowed margin, with the one-sided p-value of
"worse by more than the margin". Critical errors are facts, not estimates: one is a fail.

Gates are what a human reads at a go/no-go (and what auto-advance waits for); the
continuous rollback decisions use the sequential rule in ``streams.triggers``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rollout.state import RolloutState, phase_periods
from schemas import verdict
from schemas.plan import (
    FEEDBACK_METRICS,
    MEAN_METRICS,
    Criterion,
    Phase,
    Plan,
    quantile_of,
)
from schemas.stats import (
    Z95,
    Comparison,
    Estimate,
    mean_interval,
    two_means,
    two_proportions,
    wilson,
)
from schemas.verdict import Outcome, Verdict, overall
from streams.aggregate import WindowStats
from streams.windows import RolloutView


def _feedback(stats: WindowStats) -> int:
    return sum(stats.feedback.values())


def _rate_counts(stats: WindowStats, metric: str) -> tuple[float, float]:
    """(hits, n) of a rate metric."""
    if metric == "success_rate":
        return stats.successes, stats.count
    if metric == "fallback_rate":
        return stats.fallbacks, stats.count
    verdict = "correct" if metric == "feedback_positive_rate" else "incorrect"
    return stats.feedback[verdict], _feedback(stats)


def _moments(stats: WindowStats, metric: str) -> tuple[float, float, float]:
    """(sum, sum of squares, n) of a mean metric."""
    if metric == "mean_latency_ms":
        return stats.latency_sum, stats.latency.sum_of_squares(), stats.count
    return stats.confidence_sum, stats.confidence_sq_sum, stats.count


def samples(stats: WindowStats, metric: str) -> int:
    return _feedback(stats) if metric in FEEDBACK_METRICS else stats.count


def measure(stats: WindowStats, metric: str, z: float = Z95) -> Estimate | None:
    """The metric's value with its 95% interval (None without data)."""
    if metric == "critical_errors":
        return Estimate(stats.critical, stats.critical, stats.critical)
    if metric in MEAN_METRICS:
        return mean_interval(*_moments(stats, metric), z=z)
    if metric.endswith("_latency_ms"):
        n, q = stats.count, quantile_of(metric)
        if not n:
            return None
        half = z * math.sqrt(q * (1 - q) / n)  # distribution-free: ranks of order statistics
        value, low, high = (
            stats.latency_quantile(x) for x in (q, max(0, q - half), min(1, q + half))
        )
        return Estimate(value, low, high)  # type: ignore[arg-type]
    return wilson(*_rate_counts(stats, metric), z=z)


def compare(a: WindowStats, b: WindowStats, metric: str) -> Comparison | None:
    """Two-sample test of ``a`` minus ``b`` on ``metric``."""
    if metric in MEAN_METRICS:
        return two_means(_moments(a, metric), _moments(b, metric))
    return two_proportions(*_rate_counts(a, metric), *_rate_counts(b, metric))


@dataclass(frozen=True)
class WindowEvidence:
    """Live windows as :class:`schemas.verdict.Evidence`."""

    stats: WindowStats

    def samples(self, metric: str) -> int:
        return samples(self.stats, metric)

    def measure(self, metric: str) -> Estimate | None:
        return measure(self.stats, metric)

    def compare(self, other: WindowEvidence, metric: str) -> Comparison | None:
        return compare(self.stats, other.stats, metric)


def judge(
    criterion: Criterion,
    phase: Phase,
    candidate: WindowStats,
    baseline: WindowStats | None = None,
    previous: WindowStats | None = None,
) -> Verdict:
    """:func:`schemas.verdict.judge` on live windows."""

    def wrap(stats: WindowStats | None) -> WindowEvidence | None:
        return None if stats is None else WindowEvidence(stats)

    return verdict.judge(
        criterion, phase, WindowEvidence(candidate), wrap(baseline), wrap(previous)
    )


@dataclass(frozen=True)
class GateReport:
    """The verdicts of the current phase's criteria over the span they are judged on."""

    rollout: str
    phase: int
    phase_name: str
    weight: int
    verdicts: tuple[Verdict, ...]
    start: int | None = None
    end: int | None = None

    @property
    def outcome(self) -> Outcome:
        return overall([v.outcome for v in self.verdicts])

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "phase_name": self.phase_name,
            "weight": self.weight,
            "outcome": self.outcome,
            "span": {"start": self.start, "end": self.end},
            "verdicts": [v.to_json() for v in self.verdicts],
        }


def _floor(t: float, size: int) -> int:
    return int(t) - int(t) % size


def evaluate(plan: Plan, view: RolloutView, state: RolloutState) -> GateReport | None:
    """Judge the current phase's criteria on the view's windows; None if not running."""
    phase = plan.phase(state.phase)
    periods = phase_periods(state)
    end = view.end
    if phase is None or not periods or end is None:
        return None
    size = view.window_seconds
    start = _floor(periods[-1][1].timestamp(), size)  # with the window the phase began in
    if phase.window_seconds:
        start = max(start, end - phase.window_seconds)
    span = max(end - start, size)
    cand = view.rolling(plan.roles.candidate, span, end)
    base = view.rolling(plan.roles.baseline, span, end)
    previous = None
    if len(periods) > 1:
        prev_start = _floor(periods[-2][1].timestamp(), size)
        prev_end = _floor(periods[-1][1].timestamp(), size)
        if prev_end > prev_start:
            previous = view.rolling(plan.roles.candidate, prev_end - prev_start, prev_end)
    verdicts = tuple(judge(c, phase, cand, base, previous) for c in phase.advance)
    return GateReport(view.rollout, state.phase, phase.name, state.weight, verdicts, start, end)
