"""Mergeable latency quantiles: DDSketch (1% relative accuracy) with a portable state.

Built through ddsketch's public constructor (``BaseDDSketch(mapping, store,
negative_store, zero_count)``); the mapping and the positive store it was given are kept
to read the buckets.
"""

from __future__ import annotations

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
        return self._sketch.get_quantile_value(q) if self._sketch.count else None

    def _bins(self) -> list[tuple[int, float]]:
        store = self._store
        return [(i + store.offset, c) for i, c in enumerate(store.bins) if c]

    def count_above(self, limit: float) -> float:
        """How many values exceed ``limit`` (to the sketch's 1% relative accuracy)."""
        if limit < 0:
            return self.count
        key = self._mapping.key(limit) if limit > 0 else None
        return sum(c for k, c in self._bins() if key is None or k > key)

    def sum_of_squares(self) -> float:
        """Sum of the squared values, each taken at its bucket's value (about 2% error)."""
        value = self._mapping.value
        return sum(c * value(k) ** 2 for k, c in self._bins())

    def to_state(self) -> SketchState:
        return SketchState(
            relative_accuracy=self._mapping.relative_accuracy,
            zero_count=self.count - self._store.count,
            bins=dict(self._bins()),
        )

    @classmethod
    def from_state(cls, state: SketchState) -> LatencySketch:
        return cls(state.relative_accuracy, state.bins, state.zero_count)
