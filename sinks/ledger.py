"""What the store already holds, so a redelivered event is not inserted twice.

Two sources of duplicates, two checks (pure bookkeeping; the sink does the I/O):

- A sink that stopped between its insert and its commit leaves rows whose offsets are
  read again by the partition's next owner. Every row carries ``kafka_partition`` and
  ``kafka_offset``; on assignment (and after an insert that raised) the sink loads the
  highest stored offset per partition (``ledger_sql``); of the messages at or below it,
  ``sinks.repair`` says which are stored (and makes the rollups count them), and those
  are skipped.
- A producer that retried a send leaves the same event twice in the log, at two offsets
  close together. The ids of the last ``recent`` events stored by this process, of the
  batches in flight (claimed) and of the batch in hand are remembered, and an id seen
  there is skipped.

So the tables, and the rollups fed from them by materialized views, get each event once,
provided a producer's copies are fewer than ``recent`` events apart in one table.
``FINAL`` on the event tables removes any duplicate that escapes both checks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from sinks import ddl


@dataclass
class Entries:
    """Rows of one table with where each came from, column by column: per row its
    partition, offset and event; per partition its lowest and highest offset; the events'
    ids, once :meth:`Ledger.select` read them (for :meth:`Ledger.remember`)."""

    partitions: list[object] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    lowest: dict[object, int] = field(default_factory=dict)
    highest: dict[object, int] = field(default_factory=dict)
    ids: set[int] | None = None

    def __len__(self) -> int:
        return len(self.events)

    def extend(self, partition: object, offsets: Sequence[int], events: Sequence[object]) -> None:
        """Rows read from one partition."""
        if not offsets:
            return
        self.ids = None
        self.partitions += [partition] * len(offsets)
        self.offsets += offsets
        self.events += events
        low, high = min(offsets), max(offsets)
        self.lowest[partition] = min(self.lowest.get(partition, low), low)
        self.highest[partition] = max(self.highest.get(partition, high), high)

    def subset(self, keep: Iterable[int]) -> Entries:
        """The rows at positions ``keep``."""
        out = Entries()
        for i in keep:
            out.extend(self.partitions[i], [self.offsets[i]], [self.events[i]])
        return out

    @classmethod
    def of(cls, rows: Iterable[tuple[object, int, object]]) -> Entries:
        """From (partition, offset, event) rows."""
        out = cls()
        for partition, offset, event in rows:
            out.extend(partition, [offset], [event])
        return out


def ledger_sql(database: str, table: ddl.Table) -> str:
    """Highest stored offset per partition of ``table``'s topic."""
    return (
        f"SELECT kafka_partition, max(kafka_offset) FROM {ddl.identifier(database)}.{table.name} "
        "WHERE kafka_partition >= 0 GROUP BY kafka_partition"
    )


def event_ids(table: ddl.Table, events: Sequence[object]) -> list[int]:
    """The events' ids (as integers: a UUID hashes in Python, an int in C)."""
    return [key.int for key in map(attrgetter(table.order_by[-1]), events)]


Held = tuple[object, int]
"""A stored row's (partition number, offset)."""


class Ledger:
    """Stored offsets per partition (loaded on assignment) and the ids stored lately.

    The ids are kept in sets, one per stored batch; the oldest set is dropped once the
    others hold ``recent`` ids (so at least the last ``recent`` are known). A batch in
    flight claims its ids (:meth:`claim`) until it is stored or failed (:meth:`release`):
    the next batch, selected meanwhile, skips them.
    """

    def __init__(self, recent: int = 100_000) -> None:
        self.recent = recent
        self.stored: dict[object, int] = {}
        self.unloaded: set[object] = set()
        self._sets: deque[set[int]] = deque()
        self._count = 0
        self._claims: list[set[int]] = []

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

    def _known(self, keys: set[int]) -> bool:
        return not all(ids.isdisjoint(keys) for ids in self._every())

    def _every(self) -> Iterator[set[int]]:
        """The ids stored lately and those claimed."""
        yield from self._sets
        yield from self._claims

    def claim(self, entries: Entries) -> None:
        """``entries`` (selected) are in flight: later selects skip their ids."""
        assert entries.ids is not None
        self._claims.append(entries.ids)

    def release(self, entries: Entries) -> None:
        """Claimed ``entries`` are stored (remembered) or failed (to be selected again)."""
        self._claims = [ids for ids in self._claims if ids is not entries.ids]

    def again(self, entries: Entries) -> Entries:
        """The entries at or below their partition's stored offset: read again after
        another insert stored some of their partition (it may not have returned, so which
        of them are stored, and counted by the views, is for ``sinks.repair`` to find)."""
        stored = self.stored
        if all(low > stored.get(p, -1) for p, low in entries.lowest.items()):
            return Entries()
        pairs = zip(entries.partitions, entries.offsets, strict=True)
        return entries.subset(i for i, (p, o) in enumerate(pairs) if o <= stored.get(p, -1))

    def select(
        self, table: ddl.Table, entries: Entries, held: Container[Held] | None = None
    ) -> Entries:
        """The entries the store does not hold yet, each id once. An entry at or below
        its partition's stored offset is held unless ``held`` (of :meth:`again`'s entries,
        the pairs stored) says otherwise."""
        keys = event_ids(table, entries.events)
        unique = set(keys)
        stored = self.stored
        if (
            all(low > stored.get(p, -1) for p, low in entries.lowest.items())
            and len(unique) == len(keys)
            and not self._known(unique)
        ):
            entries.ids = unique
            return entries  # the usual case, checked without a loop in Python
        keep, seen = [], set()
        for i, (partition, offset, key) in enumerate(
            zip(entries.partitions, entries.offsets, keys, strict=True)
        ):
            if offset <= stored.get(partition, -1) and (
                held is None or (getattr(partition, "partition", partition), offset) in held
            ):
                continue
            if key in seen or any(key in ids for ids in self._every()):
                continue
            seen.add(key)
            keep.append(i)
        fresh = entries.subset(keep)
        fresh.ids = seen
        return fresh

    def remember(self, table: ddl.Table, entries: Entries) -> None:
        """``entries`` are stored now."""
        for partition, high in entries.highest.items():
            if high > self.stored.get(partition, -1):
                self.stored[partition] = high
        keys = set(event_ids(table, entries.events)) if entries.ids is None else entries.ids
        self._sets.append(keys)
        self._count += len(keys)
        while self._sets and self._count - len(self._sets[0]) >= self.recent:
            self._count -= len(self._sets.popleft())
