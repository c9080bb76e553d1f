"""Mergeable latency quantiles: DDSketch (1% relative accuracy) with a portable state."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from ddsketch import DDSketch

from schemas.internal import SketchState

RELATIVE_ACCURACY = 0.01


class LatencySketch:
    """Latency quantiles within 1% of the true value, mergeable across partitions."""

    __slots__ = ("_sketch",)

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY) -> None:
        self._sketch = DDSketch(relative_accuracy=relative_accuracy)

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
        sketch = self._sketch
        if not sketch.count:
            return [None] * len(levels)
        store, zeros = sketch._store, sketch._zero_count
        running = list(accumulate(store.bins))
        out: list[float | None] = []
        for q in levels:
            rank = q * (sketch.count - 1)
            if rank < zeros:
                out.append(0.0)
                continue
            i = bisect_right(running, rank - zeros)  # the first bin holding the rank
            out.append(
                sketch._mapping.value(i + store.offset if i < len(running) else store.max_key)
            )
        return out

    def _bins(self) -> list[tuple[int, float]]:
        store = self._sketch._store
        return [(i + store.offset, c) for i, c in enumerate(store.bins) if c]

    def count_above(self, limit: float) -> float:
        """How many values exceed ``limit`` (to the sketch's 1% relative accuracy)."""
        if limit < 0:
            return self.count
        key = self._sketch._mapping.key(limit) if limit > 0 else None
        return sum(c for k, c in self._bins() if key is None or k > key)

    def to_state(self) -> SketchState:
        # Latencies are >= 0: the negative store stays empty.
        bins = dict(self._bins())
        return SketchState(
            relative_accuracy=self._sketch._relative_accuracy,
            zero_count=self._sketch._zero_count,
            bins=bins,
        )

    @classmethod
    def from_state(cls, state: SketchState) -> LatencySketch:
        sketch = cls(state.relative_accuracy)
        inner = sketch._sketch
        for key, weight in state.bins.items():
            inner._store.add(key, weight)
        inner._zero_count = state.zero_count
        inner._count = inner._store.count + state.zero_count
        return sketch
