"""The sink's bookkeeping: the pending batch, log throttling, the process's collector."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas import DeadLetter, DecodeError
from schemas.timebounds import ts_refusal
from sinks import ddl, rows
from sinks.ledger import Entries

Clock = Callable[[], float]


@dataclass
class Batch:
    """Decoded events by table (with their partition and offset), dead letters, and the
    first and the next offset of every partition read.

    The offsets may be committed once every table's rows are stored and the dead letters
    sent; until then the batch is kept (and the consumer paused) so nothing is lost.
    """

    clock: Clock = time.monotonic
    events: dict[str, Entries] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    offsets: dict[object, int] = field(default_factory=dict)
    first: dict[object, int] = field(default_factory=dict)
    started: float | None = None

    def __len__(self) -> int:
        return sum(map(len, self.events.values())) + len(self.dead)

    def _mark(self, partition: object, low: int, high: int) -> None:
        self.offsets[partition] = max(self.offsets.get(partition, 0), high + 1)
        self.first[partition] = min(self.first.get(partition, low), low)
        if self.started is None:
            self.started = self.clock()

    def add(self, partition: object, offset: int, event: BaseModel) -> None:
        self.add_many(partition, [offset], [event], type(event))

    def add_many(
        self, partition: object, offsets: list[int], events: list[Any], model: type[BaseModel]
    ) -> None:
        """Events of ``model`` (or its Structs) read from ``partition`` at ``offsets``."""
        if not events:
            return
        table = rows.TABLE_OF[model].name
        self.events.setdefault(table, Entries()).extend(partition, offsets, events)
        self._mark(partition, min(offsets), max(offsets))

    def add_dead(self, partition: object, offset: int, letter: DeadLetter) -> None:
        self.dead.append(letter)
        self._mark(partition, offset, offset)

    def due(self, max_rows: int, max_seconds: float) -> bool:
        """Full, or its oldest message waited long enough."""
        if not self.offsets:
            return False
        return len(self) >= max_rows or self.clock() - (self.started or 0.0) >= max_seconds

    def tables(self) -> list[tuple[ddl.Table, Entries]]:
        """Each table with pending rows."""
        by_name = {t.name: t for t in ddl.EVENT_TABLES}
        return [(by_name[name], entries) for name, entries in self.events.items()]

    def stored(self, table: ddl.Table) -> None:
        """``table``'s rows are in the store: a retry needs not insert them again."""
        self.events.pop(table.name, None)

    def clear(self) -> None:
        self.events.clear()
        self.dead.clear()
        self.offsets.clear()
        self.first.clear()
        self.started = None


def entry_columns(table: ddl.Table, entries: Entries) -> rows.Columns:
    """The table's columns for ``entries``, with the ledger columns (partition, offset)."""
    columns = rows.columns(entries.events, table)
    numbers = {p: getattr(p, "partition", p) for p in entries.lowest}
    columns["kafka_partition"] = list(map(numbers.__getitem__, entries.partitions))
    columns["kafka_offset"] = list(entries.offsets)
    return columns


def refuse_times(decoded: list[Any], now: float, max_future: int) -> list[Any]:
    """``decoded`` with a :class:`DecodeError` for each event whose ``ts`` the store would
    refuse (``schemas.timebounds``); the earliest and latest are checked first, so a
    batch of ordinary times costs two checks."""
    stamps = [d.ts for d in decoded if type(d) is not DecodeError]
    if not stamps or not (
        ts_refusal(min(stamps), now, max_future) or ts_refusal(max(stamps), now, max_future)
    ):
        return decoded
    refusals = (
        None if type(d) is DecodeError else ts_refusal(d.ts, now, max_future) for d in decoded
    )
    return [
        d if why is None else DecodeError(why) for d, why in zip(decoded, refusals, strict=True)
    ]


SINK_COLLECTOR = (1_000_000, 20, 10)
"""The garbage collector's thresholds in a sink process (Python's: 700, 10, 10). A row
allocates about two tracked objects (its ``uuid.UUID``, its rules list); a young
collection walks every live young container, and while batches are fetched, held and
inserted those are lists of a batch's references (the batch's, the columns', the driver's
copies): 30-35 ms a collection at batches of 20,000. At a threshold of 50,000 one ran
every 22,000 rows (1.4-2.0 us a row, ``gc.callbacks`` over a sink run); at 1,000,000 one
in 300,000 rows (under 0.05 us a row). Rows are freed by reference counting; cycles are
rare and wait for the next one."""


@contextmanager
def seldom_collected() -> Iterator[None]:
    """The sink's collector thresholds (:data:`SINK_COLLECTOR`) meanwhile."""
    before = gc.get_threshold()
    gc.set_threshold(*SINK_COLLECTOR)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass
class Throttle:
    """Says yes at most once per ``interval`` seconds; counts the times it said no."""

    interval: float = 30.0
    clock: Clock = time.monotonic
    last: float | None = None
    suppressed: int = 0

    def due(self) -> bool:
        now = self.clock()
        if self.last is None or now - self.last >= self.interval:
            self.last = now
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count
