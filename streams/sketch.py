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
from itertools import accumulate
from math import ceil, log

from ddsketch import LogarithmicMapping
from ddsketch.store import DenseStore

from schemas.internal import SketchState

RELATIVE_ACCURACY = 0.01


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
