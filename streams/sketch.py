"""Mergeable latency quantiles: DDSketch (1% relative accuracy) with a portable state.

Built through ddsketch's public constructor (``BaseDDSketch(mapping, store,
negative_store, zero_count)``); the mapping and the positive store it was given are kept
to read the buckets.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

from schemas.internal import SketchState

RELATIVE_ACCURACY = 0.01


class LatencySketch:
    """Latency quantiles within 1% of the true value, mergeable across partitions."""

    __slots__ = ("_mapping", "_sketch", "_store")

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
        self._sketch = BaseDDSketch(
            mapping=self._mapping,
            store=self._store,
            negative_store=DenseStore(),  # latencies are >= 0: it stays empty
            zero_count=zero_count,
        )

    def update(self, value: float) -> None:
        self._sketch.add(value)

    def merge(self, other: LatencySketch) -> None:
        self._sketch.merge(other._sketch)

    @property
    def count(self) -> float:
        return self._sketch.count

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), or None when empty."""
        return self.quantiles([q])[0]

    def quantiles(self, levels: Sequence[float]) -> list[float | None]:
        """The quantile at each of ``levels`` as DDSketch's ``get_quantile_value`` gives
        it, from one pass over the bins (a gate reads a value and its interval's ends)."""
        count, store = self.count, self._store
        if not count:
            return [None] * len(levels)
        zeros = count - store.count
        running = list(accumulate(store.bins))
        out: list[float | None] = []
        for q in levels:
            rank = q * (count - 1)
            if rank < zeros:
                out.append(0.0)
                continue
            i = bisect_right(running, rank - zeros)  # the first bin holding the rank
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
            zero_count=self.count - self._store.count,
            bins=dict(self._bins()),
        )

    @classmethod
    def from_state(cls, state: SketchState) -> LatencySketch:
        return cls(state.relative_accuracy, state.bins, state.zero_count)
