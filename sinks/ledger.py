"""What the store already holds, so a redelivered event is not inserted twice.

Two sources of duplicates, two checks (pure bookkeeping; the sink does the I/O):

- A sink that stopped between its insert and its commit leaves rows whose offsets are
  read again by the partition's next owner. Every row carries ``kafka_partition`` and
  ``kafka_offset``; on assignment the sink loads the highest stored offset per partition
  (``ledger_sql``) and skips every message at or below it.
- A producer that retried a send leaves the same event twice in the log, at two offsets
  close together. The ids of the last ``recent`` events stored by this process (and of
  the batch in hand) are remembered, and an id seen there is skipped.

So the tables, and the rollups fed from them by materialized views, get each event once,
provided a producer's copies are fewer than ``recent`` events apart in one table.
``FINAL`` on the event tables removes any duplicate that escapes both checks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from uuid import UUID

from sinks import ddl

Entry = tuple[object, int, object]  # partition, offset, event


def ledger_sql(database: str, table: ddl.Table) -> str:
    """Highest stored offset per partition of ``table``'s topic."""
    return (
        f"SELECT kafka_partition, max(kafka_offset) FROM {ddl.identifier(database)}.{table.name} "
        "WHERE kafka_partition >= 0 GROUP BY kafka_partition"
    )


def event_id(table: ddl.Table, event: object) -> UUID:
    return getattr(event, table.order_by[-1])


class Ledger:
    """Stored offsets per partition (loaded on assignment) and the ids stored lately."""

    def __init__(self, recent: int = 100_000) -> None:
        self.recent = recent
        self.stored: dict[object, int] = {}
        self.unloaded: set[object] = set()
        self._ids: set[UUID] = set()
        self._order: deque[UUID] = deque()

    def assigned(self, partitions: Iterable[object]) -> None:
        """These partitions' stored offsets must be loaded before their next insert."""
        for partition in partitions:
            self.stored.pop(partition, None)
            self.unloaded.add(partition)

    def load(self, partitions: Iterable[object], highest: Mapping[int, int]) -> None:
        """``highest``: the stored maximum per partition number (``ledger_sql``)."""
        for partition in partitions:
            number = getattr(partition, "partition", partition)
            self.stored[partition] = highest.get(number, -1)  # type: ignore[call-overload]
            self.unloaded.discard(partition)

    def select(self, table: ddl.Table, entries: list[Entry]) -> list[Entry]:
        """The entries the store does not hold yet, each id once."""
        fresh, seen = [], set()
        for entry in entries:
            partition, offset, event = entry
            if offset <= self.stored.get(partition, -1):
                continue
            key = event_id(table, event)
            if key in self._ids or key in seen:
                continue
            seen.add(key)
            fresh.append(entry)
        return fresh

    def remember(self, table: ddl.Table, entries: list[Entry]) -> None:
        """``entries`` are stored now."""
        for partition, offset, event in entries:
            if offset > self.stored.get(partition, -1):
                self.stored[partition] = offset
            key = event_id(table, event)
            self._ids.add(key)
            self._order.append(key)
        while len(self._order) > self.recent:
            self._ids.discard(self._order.popleft())
