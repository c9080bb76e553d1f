"""Mergeable latency quantiles: DDSketch (1% relative accuracy) with a portable state.

ddsketch's ``LogarithmicMapping`` maps a value to its bucket's key and back
(:func:`bin_key`); the buckets between the lowest and the highest key are one ``float64``
numpy array (ddsketch's ``DenseStore`` keeps a list of Python floats: four times the
memory, and an object a bucket). Values at or below the mapping's
smallest (latencies are >= 0) count as zeros, as in ddsketch's ``BaseDDSketch``.
:meth:`LatencySketch.update_many` maps a whole batch with the mapping's own formula (one
logarithm a value) and hands the keys back, for ``streams.slow``'s coarse bins; the
buckets, counts and quantiles are ddsketch's, value by value (tested against it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from math import ceil, log

import numpy as np
from ddsketch import LogarithmicMapping

from schemas.internal import SketchState
from streams import counts

RELATIVE_ACCURACY = 0.01
_LN2 = log(2.0)  # ``log(v) / _LN2`` is ``math.log(v, 2)``, ddsketch's, to the last bit


BIN = np.dtype([("key", np.int32), ("count", np.float64)])  # 12 bytes a bucket

Bins = np.ndarray
"""Latency bins, compact: one numpy array of :data:`BIN` records, the non-empty buckets by
ascending key (the key of a latency is :func:`bin_key`) with their counts; about a sixth
of a dict of Python numbers, and no object for Python's garbage collector to walk."""


def bins_of(keys: Sequence[int] | np.ndarray, counts: Sequence[float] | np.ndarray) -> Bins:
    """The bins of ``keys`` (ascending, distinct) with ``counts``, the empty ones left out."""
    counts = np.asarray(counts, np.float64)
    kept = counts > 0
    bins = np.empty(int(kept.sum()), BIN)
    bins["key"], bins["count"] = np.asarray(keys)[kept], counts[kept]
    return bins


NO_BINS = bins_of([], [])
NO_BINS.flags.writeable = False


def bins_dict(bins: Bins) -> dict[int, float]:
    """``bins`` as ``key -> count`` (``SketchState``'s form)."""
    return dict(zip(bins["key"].tolist(), bins["count"].tolist(), strict=True))


def bins_sum(a: Bins, b: Bins) -> Bins:
    """Each bucket's counts of the two added."""
    low, mine, theirs = _aligned(a, b)
    return bins_of(np.arange(len(mine)) + low, mine + theirs)


def bins_over(now: Bins, seen: Bins) -> Bins:
    """What ``now`` holds beyond ``seen``: each bucket's increase, if any."""
    low, mine, theirs = _aligned(now, seen)
    return bins_of(np.arange(len(mine)) + low, mine - theirs)


def bins_highest(a: Bins, b: Bins) -> Bins:
    """Each bucket's larger count of the two (a high-water mark)."""
    low, mine, theirs = _aligned(a, b)
    return bins_of(np.arange(len(mine)) + low, np.maximum(mine, theirs))


def _aligned(a: Bins, b: Bins) -> tuple[int, np.ndarray, np.ndarray]:
    """The lowest key of ``a`` and ``b``, and each one's counts from it to their highest
    key (0: none)."""
    ends = [int(k) for bins in (a, b) if len(bins) for k in bins["key"][[0, -1]]]
    low = min(ends, default=0)
    counts = np.zeros((2, max(ends, default=low - 1) - low + 1))
    counts[0, a["key"] - low] = a["count"]
    counts[1, b["key"] - low] = b["count"]
    return low, counts[0], counts[1]


@cache
def mapping(relative_accuracy: float = RELATIVE_ACCURACY) -> LogarithmicMapping:
    """The buckets' layout: one a process, shared by every sketch and ``streams.slow``
    (its offset is 0: a key is ``ceil(log(v, 2) * multiplier)``)."""
    return LogarithmicMapping(relative_accuracy)


def bin_key(value: float, relative_accuracy: float = RELATIVE_ACCURACY) -> int | None:
    """The key of the bucket counting latency ``value`` (ms): ``value`` is within
    ``relative_accuracy`` of the bucket's value; None for a value counted as zero."""
    layout = mapping(relative_accuracy)
    return layout.key(value) if value > layout.min_possible else None


_EMPTY = np.zeros(0)
_EMPTY.flags.writeable = False  # shared by every empty sketch: replaced, never written


class LatencySketch:
    """Latency quantiles within 1% of the true value, mergeable across partitions."""

    __slots__ = ("_counts", "_mapping", "_offset", "_zeros")

    def __init__(
        self,
        relative_accuracy: float = RELATIVE_ACCURACY,
        bins: Mapping[int, float] | None = None,
        zero_count: float = 0.0,
    ) -> None:
        self._mapping = mapping(relative_accuracy)
        self._offset, self._counts = 0, _EMPTY  # the count of key k is _counts[k - _offset]
        self._zeros = zero_count
        if bins:
            self._add(bins)

    def _add(self, counts: Mapping[int, float]) -> None:
        """Add ``counts`` (bucket key -> count) to the buckets."""
        keys = [k for k, c in counts.items() if c]
        if keys:
            self._cover(min(keys), max(keys))
            for key in keys:
                self._counts[key - self._offset] += counts[key]

    def _cover(self, low: int, high: int) -> None:
        """Widen the buckets' range to hold the keys ``low`` to ``high``."""
        if len(self._counts):
            low, high = min(low, self._offset), max(high, self._offset + len(self._counts) - 1)
        if len(self._counts) != high - low + 1:
            wider, start = np.zeros(high - low + 1), self._offset - low
            wider[start : start + len(self._counts)] = self._counts
            self._offset, self._counts = low, wider

    def update(self, value: float) -> None:
        self.update_many((value,))

    def update_many(self, values: Sequence[float]) -> list[int | None]:
        """Add ``values`` (>= 0): ``LogarithmicMapping.key`` inlined (one logarithm a
        value), one add a bucket. Return each value's bucket key (None: counted as zero),
        for ``streams.slow``."""
        layout = self._mapping
        smallest, per_bit = layout.min_possible, layout._multiplier  # its offset is 0
        keys = [ceil(log(v) / _LN2 * per_bit) if v > smallest else None for v in values]
        by_key: dict[int | None, int] = {}
        counts.count(by_key, keys)
        self._zeros += by_key.pop(None, 0)
        self._add(by_key)  # type: ignore[arg-type]
        return keys

    def merge(self, other: LatencySketch) -> None:
        if other._mapping.gamma != self._mapping.gamma:
            raise ValueError("cannot merge sketches of different accuracies")
        if len(other._counts):
            self._cover(other._offset, other._offset + len(other._counts) - 1)
            start = other._offset - self._offset
            self._counts[start : start + len(other._counts)] += other._counts
        self._zeros += other._zeros

    @property
    def count(self) -> float:
        return self._zeros + float(self._counts.sum())

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), or None when empty."""
        return self.quantiles([q])[0]

    def quantiles(self, levels: Sequence[float]) -> list[float | None]:
        """The quantile at each of ``levels`` as DDSketch's ``get_quantile_value`` gives
        it, from one pass over the bins (a gate reads a value and its interval's ends)."""
        running, zeros = np.cumsum(self._counts), self._zeros
        count = zeros + (float(running[-1]) if len(running) else 0.0)
        if not count:
            return [None] * len(levels)
        ranks = [q * (count - 1) for q in levels]
        found = np.searchsorted(running, [r - zeros for r in ranks], side="right").tolist()
        last = len(running) - 1  # past it: the highest bucket, as ddsketch's key_at_rank
        return [
            0.0 if rank < zeros else self._mapping.value(self._offset + min(i, last))
            for rank, i in zip(ranks, found, strict=True)
        ]

    def bins(self) -> Bins:
        """The non-empty buckets (the zeros left out)."""
        return bins_of(np.arange(len(self._counts)) + self._offset, self._counts)

    @classmethod
    def of_bins(cls, bins: Bins) -> LatencySketch:
        return cls(bins=bins_dict(bins))

    def count_above(self, limit: float) -> float:
        """How many values exceed ``limit`` (to the sketch's 1% relative accuracy)."""
        if limit < 0:
            return self.count
        key = bin_key(limit, self._mapping.relative_accuracy)
        first = 0 if key is None else key + 1 - self._offset
        return float(self._counts[max(first, 0) :].sum())

    def to_state(self) -> SketchState:
        return SketchState(
            relative_accuracy=self._mapping.relative_accuracy,
            zero_count=self._zeros,
            bins=bins_dict(self.bins()),
        )

    @classmethod
    def from_state(cls, state: SketchState) -> LatencySketch:
        return cls(state.relative_accuracy, state.bins, state.zero_count)
