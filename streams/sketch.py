"""Mergeable latency quantiles: DDSketch (1% relative accuracy) with a portable state.

ddsketch's ``LogarithmicMapping`` maps a value to its bucket and back, its ``DenseStore``
holds the buckets; values at or below the mapping's smallest (latencies are >= 0) count
as zeros, as in ddsketch's ``BaseDDSketch``. :meth:`LatencySketch.update_many` maps a
whole batch with the mapping's own formula and adds each bucket's count once: the
buckets are those of ddsketch's ``add`` value by value (tested against it).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from math import ceil, log

import numpy as np
from ddsketch import LogarithmicMapping
from ddsketch.store import DenseStore

from schemas.internal import SketchState

RELATIVE_ACCURACY = 0.01


@dataclass(frozen=True, slots=True, eq=False)
class Bins:
    """Latency bins, compact: the ascending keys of the non-empty buckets (``int32``) and
    their counts (``float64``), two arrays instead of a dict of Python numbers (about a
    sixth of the memory). The key of a latency is :meth:`LatencySketch.key`."""

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


class LatencySketch:
    """Latency quantiles within 1% of the true value, mergeable across partitions."""

    __slots__ = ("_mapping", "_store", "_zeros")

    def __init__(
        self,
        relative_accuracy: float = RELATIVE_ACCURACY,
        bins: dict[int, float] | None = None,
        zero_count: float = 0.0,
    ) -> None:
        self._mapping = LogarithmicMapping(relative_accuracy)
        self._store = DenseStore()
        for key, weight in (bins or {}).items():
            self._store.add(key, weight)
        self._zeros = zero_count

    def update(self, value: float) -> None:
        self.update_many((value,))

    def update_many(self, values: Sequence[float]) -> None:
        """Add ``values`` (>= 0): ``LogarithmicMapping.key`` inlined, one add a bucket."""
        mapping, store = self._mapping, self._store
        smallest, multiplier, offset = mapping.min_possible, mapping._multiplier, mapping._offset
        keys = Counter([int(ceil(log(v, 2) * multiplier) + offset) for v in values if v > smallest])
        for key, n in keys.items():
            store.add(key, float(n))
        self._zeros += len(values) - keys.total()

    def merge(self, other: LatencySketch) -> None:
        if other._mapping.gamma != self._mapping.gamma:
            raise ValueError("cannot merge sketches of different accuracies")
        self._store.merge(other._store)
        self._zeros += other._zeros

    @property
    def count(self) -> float:
        return self._zeros + self._store.count

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), or None when empty."""
        return self.quantiles([q])[0]

    def quantiles(self, levels: Sequence[float]) -> list[float | None]:
        """The quantile at each of ``levels`` as DDSketch's ``get_quantile_value`` gives
        it, from one pass over the bins (a gate reads a value and its interval's ends)."""
        count, store = self.count, self._store
        if not count:
            return [None] * len(levels)
        running = list(accumulate(store.bins))
        out: list[float | None] = []
        for q in levels:
            rank = q * (count - 1)
            if rank < self._zeros:
                out.append(0.0)
                continue
            i = bisect_right(running, rank - self._zeros)  # the first bin holding the rank
            out.append(self._mapping.value(i + store.offset if i < len(running) else store.max_key))
        return out

    def bins(self) -> Bins:
        """The non-empty buckets (the zeros left out)."""
        store = self._store
        return Bins.of(np.arange(store.offset, store.offset + len(store.bins)), store.bins)

    @classmethod
    def of_bins(cls, bins: Bins) -> LatencySketch:
        return cls(bins=bins.to_dict())

    def _bins(self) -> list[tuple[int, float]]:
        store = self._store
        return [(i + store.offset, c) for i, c in enumerate(store.bins) if c]

    def count_above(self, limit: float) -> float:
        """How many values exceed ``limit`` (to the sketch's 1% relative accuracy)."""
        if limit < 0:
            return self.count
        key = self._mapping.key(limit) if limit > 0 else None
        return sum(c for k, c in self._bins() if key is None or k > key)

    def to_state(self) -> SketchState:
        return SketchState(
            relative_accuracy=self._mapping.relative_accuracy,
            zero_count=self._zeros,
            bins=dict(self._bins()),
        )

    @classmethod
    def from_state(cls, state: SketchState) -> LatencySketch:
        return cls(state.relative_accuracy, state.bins, state.zero_count)
