"""An alert's contributors: where the candidate's bad events concentrate, by the baseline.

"Bad" is what counts against the alert's metric (``schemas.metrics``: failures for the
success rate, the confidence deficit, 1 minus each event's confidence, for the mean
confidence). For each value of a dimension the candidate's bad amount with that value is
compared with what the baseline's rate for that value predicts over the same windows:

- error type ``v`` (failures only): ``expected = candidate events * baseline errors of v /
  baseline events``;
- rule or segment ``v``: ``expected = candidate events with v * baseline bad per event
  with v``, the baseline's overall bad per event where the baseline has no event with ``v``.

A value contributes when the candidate has at least ``min_bad`` bad with it and more than
expected; the ``top`` largest excesses (bad minus expected) are the alert's contributors.
An event counts once per dimension, so the dimensions are views of one excess, not parts
of a sum. Metrics the windows hold no breakdown of (a latency, feedback verdicts, which
carry no rule or segment) have none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Literal

from schemas.events import Contributor
from schemas.metrics import Metric, metric
from schemas.plan import Roles
from streams.aggregate import WindowStats
from streams.windows import RolloutView

TOP = 5
Dimension = Literal["rule", "segment"]
MIN_BAD = 5
FAILURES = metric("success_rate")
BROKEN_DOWN = frozenset({"success_rate", "critical_errors", "mean_confidence"})
"""The metrics whose bad the windows hold by rule and segment (critical errors: as failures)."""

Tallies = tuple[Counter[str], Counter[str]]  # bad, events by value


def contributors(
    view: RolloutView,
    roles: Roles,
    first: int,
    last: int,
    meaning: Metric = FAILURES,
    top: int = TOP,
) -> list[Contributor]:
    """The top contributors to ``meaning`` over the windows starting in ``[first, last]``."""
    end = last + view.window_seconds
    candidate = view.rolling(roles.candidate, end - first, end)
    baseline = view.rolling(roles.baseline, end - first, end)
    return rank(candidate, baseline, meaning, top)


def rank(
    candidate: WindowStats,
    baseline: WindowStats,
    meaning: Metric = FAILURES,
    top: int = TOP,
    min_bad: int = MIN_BAD,
) -> list[Contributor]:
    """The ``top`` values with the largest excess of the candidate's bad (module doc)."""
    if meaning.name not in BROKEN_DOWN:
        return []
    if meaning.name != "mean_confidence":  # failures (critical errors: the failures too)
        meaning = FAILURES
    by_value = [_by_value(candidate, baseline, meaning, d) for d in ("rule", "segment")]
    if meaning is FAILURES:
        by_value.insert(0, _error_types(candidate, baseline))
    name = meaning.bad.name  # type: ignore[union-attr]
    found = [
        Contributor(
            dimension=dim, value=v, candidate=round(c), baseline=round(b), expected=e, counts=name
        )
        for rows in by_value
        for dim, v, c, b, e in rows
        if c >= min_bad and c > e
    ]
    found.sort(key=lambda c: (c.expected - c.candidate, c.dimension, c.value))
    return found[:top]


Row = tuple[str, str, float, float, float]  # dimension, value, candidate, baseline, expected


def _error_types(candidate: WindowStats, baseline: WindowStats) -> Iterator[Row]:
    for value, bad in candidate.errors.items():
        base = baseline.errors[value]
        rate = base / baseline.count if baseline.count else 0.0
        yield "error_type", value, bad, base, candidate.count * rate


def _by_value(
    candidate: WindowStats, baseline: WindowStats, meaning: Metric, dimension: Dimension
) -> Iterator[Row]:
    """A rule's or segment's bad among the events with it."""
    bad, events = _tallies(candidate, meaning, dimension)
    base_bad, base_events = _tallies(baseline, meaning, dimension)
    overall = meaning.bad.amount(baseline) / baseline.count if baseline.count else 0.0  # type: ignore[union-attr]
    for value, n in bad.items():
        seen = base_events[value]
        rate = base_bad[value] / seen if seen else overall
        yield dimension, value, n, base_bad[value], events[value] * rate


def _tallies(stats: WindowStats, meaning: Metric, dimension: Dimension) -> Tallies:
    """(bad, events) by value of ``dimension``: failures, or the confidence deficit."""
    rule = dimension == "rule"
    events = stats.rule_uses if rule else stats.segment_events
    if meaning.name == "mean_confidence":
        confidence = stats.rule_confidence if rule else stats.segment_confidence
        return Counter({v: n - confidence.get(v, 0.0) for v, n in events.items()}), events
    if rule:
        return stats.rule_uses - stats.rule_successes, events
    return stats.segment_bad, events
