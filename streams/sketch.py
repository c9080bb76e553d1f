"""Mergeable latency quantiles: DDSketch (1% relative accuracy) with a portable state.

ddsketch's ``LogarithmicMapping`` maps a value to its bucket's key and back
(:func:`bin_key`); the buckets between the lowest and the highest key are one ``float64``
numpy array, as ddsketch's ``DenseStore`` keeps them in a list of Python floats (a
quarter of the memory, and no Python object a bucket). Values at or below the mapping's
smallest (latencies are >= 0) count as zeros, as in ddsketch's ``BaseDDSketch``.
:meth:`LatencySketch.update_many` maps a whole batch with the mapping's own formula; the
buckets, counts and quantiles are ddsketch's, value by value (tested against it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from math import ceil, log

import numpy as np
from ddsketch import LogarithmicMapping

from schemas.internal import SketchState

RELATIVE_ACCURACY = 0.01


@dataclass(frozen=True, slots=True, eq=False)
class Bins:
    """Latency bins, compact: the ascending keys of the non-empty buckets (``int32``) and
    their counts (``float64``), two arrays instead of a dict of Python numbers (about a
    sixth of the memory). The key of a latency is :func:`bin_key`."""

    keys: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, keys: Sequence[int] | np.ndarray, counts: Sequence[float] | np.ndarray) -> Bins:
        """The bins of ``keys`` (ascending, distinct) with ``counts``, empty ones left out."""
        keys, counts = np.asarray(keys, np.int32), np.asarray(counts, np.float64)
        kept = counts > 0
        return cls(keys[kept], counts[kept]) if not kept.all() else cls(keys, counts)

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    def to_dict(self) -> dict[int, float]:
        return dict(zip(self.keys.tolist(), self.counts.tolist(), strict=True))

    def __add__(self, other: Bins) -> Bins:
        keys, mine, theirs = _aligned(self, other)
        return Bins.of(keys, mine + theirs)

    def over(self, seen: Bins) -> Bins:
        """What these bins hold beyond ``seen``: each bucket's increase, if any."""
        keys, mine, theirs = _aligned(self, seen)
        return Bins.of(keys, mine - theirs)

    def highest(self, other: Bins) -> Bins:
        """Each bucket's larger count of the two (a high-water mark)."""
        keys, mine, theirs = _aligned(self, other)
        return Bins.of(keys, np.maximum(mine, theirs))


NO_BINS = Bins.of([], [])


def _aligned(a: Bins, b: Bins) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keys of ``a`` and ``b`` together, and each one's counts over them (0: none)."""
    keys = np.union1d(a.keys, b.keys)
    counts = np.zeros((2, len(keys)))
    counts[0, np.searchsorted(keys, a.keys)] = a.counts
    counts[1, np.searchsorted(keys, b.keys)] = b.counts
    return keys, counts[0], counts[1]


@cache
def _mapping(relative_accuracy: float) -> LogarithmicMapping:
    return LogarithmicMapping(relative_accuracy)  # one a process: the sketches share it


def bin_key(value: float, relative_accuracy: float = RELATIVE_ACCURACY) -> int | None:
    """The key of the bucket counting latency ``value`` (ms): ``value`` is within
    ``relative_accuracy`` of the bucket's value; None for a value counted as zero."""
    mapping = _mapping(relative_accuracy)
    return mapping.key(value) if value > mapping.min_possible else None


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
        self._mapping = _mapping(relative_accuracy)
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

    def update_many(self, values: Sequence[float]) -> None:
        """Add ``values`` (>= 0): ``LogarithmicMapping.key`` inlined, one add a bucket."""
        mapping = self._mapping
        smallest, multiplier, offset = mapping.min_possible, mapping._multiplier, mapping._offset
        keys = Counter([int(ceil(log(v, 2) * multiplier) + offset) for v in values if v > smallest])
        self._add(keys)
        self._zeros += len(values) - keys.total()

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
        count = self.count
        if not count:
            return [None] * len(levels)
        running = np.cumsum(self._counts)
        last = self._offset + len(running) - 1
        out: list[float | None] = []
        for q in levels:
            rank = q * (count - 1)
            if rank < self._zeros:
                out.append(0.0)
                continue
            i = int(np.searchsorted(running, rank - self._zeros, side="right"))  # first bin
            out.append(self._mapping.value(i + self._offset if i < len(running) else last))
        return out

    def bins(self) -> Bins:
        """The non-empty buckets (the zeros left out)."""
        held = np.flatnonzero(self._counts)
        return Bins(held.astype(np.int32) + np.int32(self._offset), self._counts[held])

    @classmethod
    def of_bins(cls, bins: Bins) -> LatencySketch:
        return cls(bins=bins.to_dict())

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
            bins=self.bins().to_dict(),
        )

    @classmethod
    def from_state(cls, state: SketchState) -> LatencySketch:
        return cls(state.relative_accuracy, state.bins, state.zero_count)
