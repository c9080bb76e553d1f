"""``phasegate replay``: rebuild the ClickHouse tables from the Kafka topics.

History is a projection of the log: the event tables and their rollups are dropped,
created again by the migrations, and filled by reading every event topic from its start
(or from the first offset at or after a time, ``offsets_for_times``) to its end. Replay
assigns the partitions itself (it joins no consumer group) and commits nothing, so the
running sink's offsets stay; the rows carry their offsets (``sinks.ledger``), so a sink
started afterwards skips what replay stored. Dead letters are not sent again. Stop the
sink while replaying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer
from confluent_kafka import TopicPartition as Offset

from schemas.settings import Settings
from sinks import ddl, rollups
from sinks.batch import Batch
from sinks.consumer import Partition, Sink, SinkCounters
from sinks.migrations import migrate
from sinks.store import Store

log = logging.getLogger(__name__)


def drop_tables(store: Store, database: str) -> None:
    """Drop phasegate's tables in ``database`` (views first), leaving anything else."""
    db = ddl.identifier(database)
    names = rollups.drop_order()
    names += [t.name for t in ddl.EVENT_TABLES] + [ddl.MIGRATIONS_TABLE]
    for name in names:
        store.execute(f"DROP TABLE IF EXISTS {db}.{name}")


class ReplaySink(Sink):
    """A sink that assigns every partition itself, from a start, and commits nothing."""

    def __init__(self, settings: Settings, store: Store, since: datetime | None, **kw) -> None:
        # a group id librdkafka asks for, never joined: not the sink's
        super().__init__(settings, store, **{"group_id": settings.topic_prefix + "replay"} | kw)
        self.since = since
        self.starts: dict[Partition, int] = {}  # an offset, OFFSET_BEGINNING or OFFSET_END

    async def _attach(self, consumer: Consumer) -> None:
        self.starts = await self._in_fetch(self._place, consumer)
        self.assigned = set(self.starts)
        self.ledger.assigned(self.starts)

    def _place(self, consumer: Consumer) -> dict[Partition, int]:
        """On the fetch thread: every partition of the event topics assigned, from its
        start or from the first offset at or after ``since`` (the end if none is)."""
        topics = consumer.list_topics(timeout=10).topics
        partitions = [
            Offset(topic, p)
            for topic in self.models
            for p in sorted(topics[topic].partitions if topic in topics else ())
        ]
        if self.since is None:
            starts = [Offset(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        else:
            ms = int(self.since.timestamp() * 1000)
            asked = [Offset(tp.topic, tp.partition, ms) for tp in partitions]
            found = consumer.offsets_for_times(asked, timeout=10) if asked else []
            starts = [
                Offset(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                for tp in found
            ]
        consumer.assign(starts)
        return {Partition(tp.topic, tp.partition): tp.offset for tp in starts}

    async def _commit(self, next_offsets: dict[object, int]) -> None:
        """Replay leaves the consumer group's offsets alone."""

    async def _send_dead_letters(self, batch: Batch) -> None:
        batch.dead.clear()  # they are in the DLQ from the first pass

    async def _behind(self) -> list[int]:
        """Per partition, the messages up to the end offset the broker reports (a lower
        bound on Tansu)."""
        return await self._in_fetch(self._behind_now, self._require())

    def _behind_now(self, consumer: Consumer) -> list[int]:
        behind = []
        for partition, start in self.starts.items():
            tp = Offset(*partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            [position] = consumer.position([tp])
            if position.offset >= 0:
                behind.append(high - position.offset)
            elif start >= 0:
                behind.append(high - start)
            else:  # nothing read yet from its beginning or end
                behind.append(high - low if start == OFFSET_BEGINNING else 0)
        return behind

    def caught_up(self) -> bool:
        return all(n <= 0 for n in self._call(self._behind()))

    def to_read(self) -> int:
        """The messages read and those still to read: the total so far."""
        return self.counters.messages + sum(max(n, 0) for n in self._call(self._behind()))


def replay(
    settings: Settings,
    store: Store,
    since: datetime | None = None,
    idle_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    on_progress: Callable[[int, int], None] | None = None,
) -> SinkCounters:
    """Drop, recreate and refill ``settings.database``; return what was read.
    ``on_progress`` gets the messages read and :meth:`ReplaySink.to_read`, every poll."""
    drop_tables(store, settings.database)
    migrate(store, settings.database)
    sink = ReplaySink(settings, store, since, batch_rows=10_000, batch_seconds=0.5)
    sink.start()
    try:
        quiet_since = clock()
        while True:
            if on_progress is not None:
                on_progress(sink.counters.messages, sink.to_read())
            if sink.poll_once(timeout_ms=200):
                quiet_since = clock()
            elif sink.caught_up() and clock() - quiet_since >= idle_seconds:
                break
        if on_progress is not None:
            on_progress(sink.counters.messages, sink.to_read())
        if sink.pending and not sink.flush():
            raise RuntimeError("replay: the store refused the last batch")
    finally:
        sink.close()
    return sink.counters
