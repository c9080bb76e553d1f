"""An alert's contributors: where the candidate's bad events concentrate, by the baseline.

"Bad" is what counts against the alert's metric (``schemas.metrics``, :func:`breakdown`):

- the success rate (and critical errors): failures, by error type, rule and segment;
- the mean confidence: the confidence deficit (1 minus each event's confidence), by
  rule and segment;
- a latency: the events slower than the alert's threshold (the trigger's limit; for a
  guardrail the baseline's quantile over the alert's windows worsened by the margin), by
  error type, rule and segment, from the coarse latency bins of ``streams.slow``;
- a feedback metric: complaints (verdicts other than "correct" for the positive rate),
  by rule and segment of the feedback that names them (``Feedback.rules``,
  ``Feedback.segment``); the samples are verdicts.

For each value of a dimension the candidate's bad amount with that value is compared
with what the baseline's rate for that value predicts over the same windows:

- error type ``v`` of failures: ``expected = candidate events * baseline errors of v /
  baseline events`` (an error type the baseline never had: expected 0);
- any other value ``v``: ``expected = candidate samples with v * baseline bad per
  sample with v``, the baseline's overall bad per sample where it has no sample with
  ``v`` (the samples of an error type for a latency: the events that failed with it).

A value contributes when the candidate has at least ``min_bad`` bad with it and more than
expected; the ``top`` largest excesses (bad minus expected) are the alert's contributors.
An event counts once per dimension, so the dimensions are views of one excess, not parts
of a sum.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from schemas.events import Contributor
from schemas.metrics import QUANTILES, Metric, feedback_total, metric
from schemas.plan import Roles
from streams import slow
from streams.aggregate import WindowStats, nested
from streams.windows import RolloutView

TOP = 5
MIN_BAD = 5
SUCCESS = metric("success_rate")
Dimension = Literal["error_type", "rule", "segment"]
Tallies = tuple[Mapping[str, float], Mapping[str, float]]  # bad, samples by value (0: none)


@dataclass(frozen=True)
class Breakdown:
    """What is bad for an alert's metric: overall and by value of each dimension."""

    counts: str  # what the figures count (``Contributor.counts``)
    dimensions: tuple[Dimension, ...]
    overall: Callable[[WindowStats], tuple[float, float]]  # (bad, samples)
    by_value: Callable[[WindowStats, Dimension], Tallies]


def _failures(stats: WindowStats, dimension: Dimension) -> Tallies:
    if dimension == "error_type":  # any event could have failed with any type
        return Counter(stats.errors), defaultdict(lambda: stats.count)
    if dimension == "rule":
        uses = Counter(stats.rule_uses)
        return uses - Counter(stats.rule_successes), uses
    return Counter(stats.segment_bad), Counter(stats.segment_events)


def _deficit(stats: WindowStats, dimension: Dimension) -> Tallies:
    rule = dimension == "rule"
    events = stats.rule_uses if rule else stats.segment_events
    confidence = stats.rule_confidence if rule else stats.segment_confidence
    deficit = {v: n - confidence.get(v, 0.0) for v, n in events.items()}
    return Counter(deficit), Counter(events)


FAILURES = Breakdown(
    "failures",
    ("error_type", "rule", "segment"),
    lambda s: (s.count - s.successes, s.count),
    _failures,
)
DEFICIT = Breakdown(
    "confidence deficit",
    ("rule", "segment"),
    lambda s: (s.count - s.confidence_sum, s.count),
    _deficit,
)


def _slow(threshold: float) -> Breakdown:
    """Events slower than ``threshold`` ms."""

    def by_value(stats: WindowStats, dimension: Dimension) -> Tallies:
        bins, events = {
            "error_type": (stats.error_latency, stats.errors),
            "rule": (stats.rule_latency, stats.rule_uses),
            "segment": (stats.segment_latency, stats.segment_events),
        }[dimension]
        return slow.above(bins, threshold, stats.latency), Counter(events)

    return Breakdown(
        f"slow events (> {threshold:.4g} ms)",
        ("error_type", "rule", "segment"),
        lambda s: (s.latency.count_above(threshold), s.count),
        by_value,
    )


def _verdicts(meaning: Metric) -> Breakdown:
    """``meaning``'s bad verdicts (complaints) by the rules and segment feedback names."""
    bad = meaning.bad
    assert bad is not None and bad.verdicts is not None
    of = bad.verdicts

    def by_value(stats: WindowStats, dimension: Dimension) -> Tallies:
        pairs = stats.rule_feedback if dimension == "rule" else stats.segment_feedback
        verdicts = nested(pairs)
        return (
            Counter({v: of(c) for v, c in verdicts.items()}),
            Counter({v: sum(c.values()) for v, c in verdicts.items()}),
        )

    return Breakdown(
        bad.name, ("rule", "segment"), lambda s: (bad.amount(s), feedback_total(s)), by_value
    )


def breakdown(meaning: Metric, threshold: float | None = None) -> Breakdown | None:
    """What is bad for ``meaning`` (module doc); None: nothing to break down (a latency
    without a ``threshold``, a metric without a breakdown)."""
    if meaning.name in QUANTILES:
        return None if threshold is None else _slow(threshold)
    if meaning.feedback:
        return _verdicts(meaning)
    if meaning.name == "mean_confidence":
        return DEFICIT
    return FAILURES if meaning.name in ("success_rate", "critical_errors") else None


def contributors(
    view: RolloutView,
    roles: Roles,
    first: int,
    last: int,
    meaning: Metric = SUCCESS,
    threshold: float | None = None,
    top: int = TOP,
) -> list[Contributor]:
    """The top contributors to ``meaning`` over the windows starting in ``[first, last]``;
    ``threshold``: the alert's (what is slow, for a latency)."""
    end = last + view.window_seconds
    candidate = view.rolling(roles.candidate, end - first, end)
    baseline = view.rolling(roles.baseline, end - first, end)
    return rank(candidate, baseline, meaning, threshold, top)


def rank(
    candidate: WindowStats,
    baseline: WindowStats,
    meaning: Metric = SUCCESS,
    threshold: float | None = None,
    top: int = TOP,
    min_bad: int = MIN_BAD,
) -> list[Contributor]:
    """The ``top`` values with the largest excess of the candidate's bad (module doc)."""
    bad = breakdown(meaning, threshold)
    if bad is None:
        return []
    found = [
        Contributor(
            dimension=dim,
            value=v,
            candidate=round(c),
            baseline=round(b),
            expected=e,
            counts=bad.counts,
        )
        for dim in bad.dimensions
        for v, c, b, e in _rows(bad, dim, candidate, baseline)
        if c >= min_bad and c > e
    ]
    found.sort(key=lambda c: (c.expected - c.candidate, c.dimension, c.value))
    return found[:top]


Row = tuple[str, float, float, float]  # value, candidate, baseline, expected


def _rows(
    bad: Breakdown, dimension: Dimension, candidate: WindowStats, baseline: WindowStats
) -> Iterator[Row]:
    """Each value's bad among the candidate's samples with it, against the expected."""
    cand_bad, samples = bad.by_value(candidate, dimension)
    base_bad, base_samples = bad.by_value(baseline, dimension)
    total, n = bad.overall(baseline)
    overall = total / n if n else 0.0
    for value, amount in cand_bad.items():
        seen = base_samples[value]
        rate = base_bad[value] / seen if seen else overall
        yield value, amount, base_bad[value], samples[value] * rate
