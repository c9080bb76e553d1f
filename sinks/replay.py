"""``phasegate replay``: rebuild the ClickHouse tables from the Kafka topics.

History is a projection of the log: the event tables and their rollups are dropped,
created again by the migrations, and filled by reading every event topic from its start
(or from the first offset at or after a time, ``offsets_for_times``) to its end. Replay
reads without a consumer group and commits nothing, so the running sink's offsets stay;
the rows carry their offsets (``sinks.ledger``), so a sink started afterwards skips what
replay stored. Dead letters are not sent again. Stop the sink while replaying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.settings import Settings
from sinks import ddl, rollups
from sinks.batch import Batch
from sinks.consumer import Sink, SinkCounters
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

    grouped = False

    def __init__(self, settings: Settings, store: Store, since: datetime | None, **kw) -> None:
        super().__init__(settings, store, **kw)
        self.since = since
        self.partitions: list[TopicPartition] = []

    async def _attach(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.topics()  # the cluster's metadata, read now
        self.partitions = [
            TopicPartition(topic, p)
            for topic in self.models
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(self.partitions)
        self.ledger.assigned(self.partitions)
        if self.since is None:
            await consumer.seek_to_beginning(*self.partitions)
            return
        ms = int(self.since.timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: ms for tp in self.partitions})
        for tp in self.partitions:
            if found.get(tp) is None:
                await consumer.seek_to_end(tp)  # nothing at or after that time
            else:
                consumer.seek(tp, found[tp].offset)

    async def _commit(self, next_offsets: dict[object, int]) -> None:
        """Replay leaves the consumer group's offsets alone."""

    async def _send_dead_letters(self, batch: Batch) -> None:
        batch.dead.clear()  # they are in the DLQ from the first pass

    async def _behind(self) -> list[int]:
        """Per partition, the messages up to the end offset the broker reports (a lower
        bound on Tansu)."""
        consumer = self._require()
        ends = await consumer.end_offsets(self.partitions)
        return [ends[tp] - await consumer.position(tp) for tp in self.partitions]

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
