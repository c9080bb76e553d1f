"""Slow events by rule, segment and error type: coarse latency bins that add up.

Stage 1 knows no trigger's latency limit (it is plan-agnostic), so per value it counts
events in coarse log-spaced bins, and stage 2 asks how many were slower than any limit.
A coarse bin is :data:`STEP` adjacent bins of the latency sketch's layout
(``streams.sketch``: 1% relative accuracy, gamma 1.0202): it spans a factor of
:data:`BASE` (1.41, about 7 bins a decade), so a rule whose latencies span a factor of
10 holds about 7 counters. Bin ``k`` holds the sketch's bins ``STEP*(k-1)+1 .. STEP*k``,
the latencies in ``(BASE**(k-1), BASE**k]`` (a latency of 0 is in :data:`ZERO`: never
slow, as in the sketch).

A value's events slower than ``limit`` (:func:`above`) are its bins above the limit's,
and of the limit's own bin the share that the system's latency sketch (all its events,
in bins ``STEP`` times finer) puts above the limit: the value's events are taken to
spread within one coarse bin as the system's do.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

from streams import counts
from streams.sketch import LatencySketch, bin_key, mapping

STEP = 17
"""Sketch bins in one coarse bin."""
BASE = mapping().gamma ** STEP
ZERO = -(2**16)
"""The bin of a latency of 0, or as small as the sketch takes for 0 (below every other)."""

ByBin = dict[int, dict[str, int]]
"""Events by coarse bin, then by value (a rule, a segment, an error type): grouped by bin,
a batch's events cost one count update a bin (counts of (value, bin) pairs, a tuple to
hash an event, cost stage 1 three times as much). Plain dicts (``streams.counts``): only
the outer one is an object for the garbage collector."""


def bins(keys: Sequence[int | None]) -> list[int]:
    """Each latency's coarse bin, from its sketch bin's key (``LatencySketch.update_many``
    hands them back; None: a latency counted as zero)."""
    return [ZERO if key is None else -(-key // STEP) for key in keys]


def bin_of(latency: float) -> int:
    """``latency``'s coarse bin: that of its sketch bin."""
    return bins([bin_key(latency)])[0]


def count(by_bin: ByBin, bins: Sequence[int], values: Iterable[str]) -> None:
    """Add each event's value in its bin."""
    for key, group in _groups(bins, values).items():
        counts.count(by_bin.setdefault(key, {}), group)


def count_each(by_bin: ByBin, bins: Sequence[int], values: Iterable[Iterable[str]]) -> None:
    """Add each of each event's values (its rules) in its bin."""
    for key, group in _groups(bins, values).items():
        counts.count(by_bin.setdefault(key, {}), chain.from_iterable(group))


def _groups(bins: Sequence[int], values: Iterable) -> dict[int, list]:
    groups: defaultdict[int, list] = defaultdict(list)
    for key, value in zip(bins, values, strict=True):
        groups[key].append(value)
    return groups


def merge(by_bin: ByBin, other: ByBin) -> None:
    for key, tally in other.items():
        counts.add(by_bin.setdefault(key, {}), tally)


def by_value(by_bin: ByBin) -> dict[str, dict[int, int]]:
    """The partial's form: ``{value: {bin: events}}``."""
    out: dict[str, dict[int, int]] = {}
    for key, tally in by_bin.items():
        for value, n in tally.items():
            out.setdefault(value, {})[key] = n
    return out


def from_values(values: Mapping[str, Mapping[int, int]]) -> ByBin:
    """:func:`by_value` read back."""
    out: ByBin = {}
    for value, bins in values.items():
        for key, n in bins.items():
            out.setdefault(key, {})[value] = n  # each (value, bin) once
    return out


def above(by_bin: ByBin, limit: float, sketch: LatencySketch) -> Counter[str]:
    """Each value's events slower than ``limit`` (module doc); ``sketch``: the latencies
    of all the system's events the counts are of."""
    edge = bin_of(limit)
    slow: Counter[str] = Counter()
    for key, tally in by_bin.items():
        if key > edge:
            slow.update(tally)
    share = _share_above(limit, edge, sketch) if edge in by_bin and edge != ZERO else 0.0
    for value, n in by_bin.get(edge, {}).items() if share else ():
        slow[value] += n * share
    return slow


def _share_above(limit: float, edge: int, sketch: LatencySketch) -> float:
    """The share of bin ``edge``'s latencies above ``limit``: the sketch's (its bins in
    ``edge``), or, where it has none there, as if spread evenly on a log scale."""
    key, low, high = bin_key(limit), STEP * (edge - 1), STEP * edge
    within = {k: n for k, n in sketch.to_state().bins.items() if low < k <= high}
    total = sum(within.values())
    if total:
        return sum(n for k, n in within.items() if k > key) / total
    return (high - key) / STEP
