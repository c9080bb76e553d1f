"""An alert's contributors: where the candidate's bad events concentrate, by the baseline.

For each error type, rule and segment the candidate's bad events with that value are
compared with what the baseline's rate for that value predicts over the same windows:

- error type ``v``: ``expected = candidate events * baseline errors of v / baseline events``;
- rule or segment ``v``: ``expected = candidate events with v * baseline bad rate with v``,
  the baseline's overall bad rate where the baseline has no event with ``v``.

A value contributes when the candidate has at least ``min_bad`` bad events with it and
more than expected; the ``top`` largest excesses (bad minus expected) are the alert's
contributors. A bad event counts once per dimension, so the three dimensions are three
views of one excess, not parts of a sum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Literal

from schemas.events import Contributor
from schemas.plan import Roles
from streams.aggregate import WindowStats
from streams.windows import RolloutView

TOP = 5
Dimension = Literal["rule", "segment"]
MIN_BAD = 5


def contributors(
    view: RolloutView, roles: Roles, first: int, last: int, top: int = TOP
) -> list[Contributor]:
    """The top contributors over the windows starting in ``[first, last]`` of ``view``."""
    end = last + view.window_seconds
    candidate = view.rolling(roles.candidate, end - first, end)
    baseline = view.rolling(roles.baseline, end - first, end)
    return rank(candidate, baseline, top)


def rank(
    candidate: WindowStats, baseline: WindowStats, top: int = TOP, min_bad: int = MIN_BAD
) -> list[Contributor]:
    """The ``top`` values with the largest excess of candidate bad events (module doc)."""
    found = [
        c
        for c in (
            *_error_types(candidate, baseline),
            *_by_value(candidate, baseline, "rule"),
            *_by_value(candidate, baseline, "segment"),
        )
        if c.candidate >= min_bad and c.candidate > c.expected
    ]
    found.sort(key=lambda c: (c.expected - c.candidate, c.dimension, c.value))
    return found[:top]


def _error_types(candidate: WindowStats, baseline: WindowStats) -> Iterator[Contributor]:
    for value, bad in candidate.errors.items():
        base = baseline.errors[value]
        rate = base / baseline.count if baseline.count else 0.0
        yield Contributor(
            dimension="error_type",
            value=value,
            candidate=bad,
            baseline=base,
            expected=candidate.count * rate,
        )


def _by_value(
    candidate: WindowStats, baseline: WindowStats, dimension: Dimension
) -> Iterator[Contributor]:
    """A rule's or segment's bad events among the events with it."""
    bad, events = _tallies(candidate, dimension)
    base_bad, base_events = _tallies(baseline, dimension)
    fallback = 1.0 - baseline.successes / baseline.count if baseline.count else 0.0
    for value, n in bad.items():
        seen = base_events[value]
        rate = base_bad[value] / seen if seen else fallback
        yield Contributor(
            dimension=dimension,
            value=value,
            candidate=n,
            baseline=base_bad[value],
            expected=events[value] * rate,
        )


def _tallies(stats: WindowStats, dimension: Dimension) -> tuple[Counter[str], Counter[str]]:
    """(bad events, events) by value of ``dimension``."""
    if dimension == "rule":
        return stats.rule_uses - stats.rule_successes, stats.rule_uses
    return stats.segment_bad, stats.segment_events
