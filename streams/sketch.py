"""Mergeable latency quantiles: DDSketch (1% relative accuracy) with a portable state."""

from __future__ import annotations

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
        return self._sketch.get_quantile_value(q) if self._sketch.count else None

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
