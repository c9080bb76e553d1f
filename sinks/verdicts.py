"""Each criterion of a plan's phase judged on the stored history (rules: ``schemas.verdict``).

The criteria come from the shared rollout plan (``schemas.plan``); the numbers from
``sinks.history`` (ClickHouse, ``FINAL``), so a report shows what the worker's gates
(``streams.gates``, on live windows) would say over the same events.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.plan import FEEDBACK_METRICS, Phase
from schemas.stats import Comparison, Estimate, mean_interval, two_means, two_proportions, wilson
from schemas.verdict import Verdict, judge
from sinks.history import Side


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


@dataclass(frozen=True)
class HistoryEvidence:
    """Stored history as :class:`schemas.verdict.Evidence`."""

    side: Side

    def samples(self, metric: str) -> int:
        return samples(self.side, metric)

    def measure(self, metric: str) -> Estimate | None:
        return measure(self.side, metric)

    def compare(self, other: HistoryEvidence, metric: str) -> Comparison | None:
        return compare(self.side, other.side, metric)


def judge_gate(
    gate: Phase, candidate: Side, baseline: Side | None, previous: Side | None
) -> list[Verdict]:
    """Every criterion of ``gate`` judged on the stored history."""
    cand, base, prev = (
        None if s is None else HistoryEvidence(s) for s in (candidate, baseline, previous)
    )
    assert cand is not None
    return [judge(c, gate, cand, base, prev) for c in gate.advance]
