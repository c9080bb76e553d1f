"""Stage 1 state of one worker: an accumulator per assigned source partition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.internal import Partial
from streams.windows import PartitionAccumulator

Source = tuple[str, int]


@dataclass
class Stage1:
    """Accumulators per (topic, partition), plus the events to ack once flushed.

    ``pending`` holds whatever the transport needs to acknowledge the events of the
    current run (Faust events in the worker, offsets in tests).
    """

    window_seconds: int
    lateness: int
    max_future: int = 300
    accumulators: dict[Source, PartitionAccumulator] = field(default_factory=dict)
    pending: dict[Source, list[Any]] = field(default_factory=dict)

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
            self.pending[source] = []
        return acc

    def drain(self) -> list[tuple[Source, list[Partial], list[Any], int]]:
        """Every pending run as (source, partials, events to ack, next offset)."""
        out = []
        for source, acc in self.accumulators.items():
            if acc.pending:
                next_offset = acc.last_offset + 1
                out.append((source, acc.drain(), self.pending[source], next_offset))
                self.pending[source] = []
        return out

    def revoke(self, sources: set[Source]) -> None:
        """Forget partitions this worker no longer owns: their new owner replays them."""
        for source in sources:
            self.accumulators.pop(source, None)
            self.pending.pop(source, None)
