"""Stage 1 state of one worker: an accumulator per assigned source partition."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.internal import Partial
from streams.windows import PartitionAccumulator

Source = tuple[str, int]


@dataclass
class Stage1:
    """Accumulators per (topic, partition)."""

    window_seconds: int
    lateness: int
    max_future: int = 300
    accumulators: dict[Source, PartitionAccumulator] = field(default_factory=dict)

    def accumulator(self, topic: str, partition: int, offset: int) -> PartitionAccumulator:
        source = (topic, partition)
        acc = self.accumulators.get(source)
        if acc is None:
            # The first offset read after an assignment is where the group's commit was.
            acc = self.accumulators[source] = PartitionAccumulator(
                topic,
                partition,
                self.window_seconds,
                self.lateness,
                self.max_future,
                committed_offset=offset,
            )
        return acc

    def drain(self) -> list[tuple[Source, list[Partial], int]]:
        """Every pending run as (source, partials, the offset to commit after it)."""
        return [
            (source, acc.drain(), acc.last_offset + 1)
            for source, acc in self.accumulators.items()
            if acc.pending
        ]

    def revoke(self, sources: set[Source]) -> None:
        """Forget partitions this worker no longer owns: their new owner replays them."""
        for source in sources:
            self.accumulators.pop(source, None)
