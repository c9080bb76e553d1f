"""The sink: results, feedback, alerts and rollout topics -> ClickHouse, at least once.

Offsets are committed only after the rows they cover are stored; a redelivered event is
not inserted again (``sinks.ledger``), and ``FINAL`` collapses any that slips by.
Undecodable messages go to the DLQ topic with the reason. While the store is down the
sink pauses fetching, holds at most two bounded batches and retries with backoff, logging
once per interval.

Pipelined: a full batch goes to an insert thread (one batch in flight) while this thread
fetches and decodes the next; this thread alone touches the consumer, and commits a
batch's offsets once its insert succeeded, batches in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import BaseModel

from schemas import DeadLetter, DecodeError, encode
from schemas.backoff import Backoff
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.fastcodec import fast_decode_many
from schemas.settings import Settings
from sinks import ddl, ledger, rows, schema_lock
from sinks.batch import Batch, Throttle, entry_columns, refuse_times
from sinks.store import Store, StoreError

log = logging.getLogger(__name__)

GROUP = "sink"
"""The consumer group, after the topic prefix (``phasegate.sink``): one group per prefix."""
COMPONENT = "sink"
BATCH_ROWS = 20_000
"""Rows per insert: the server's CPU per row falls with the insert's size (18.16, two rollup
views: about 20 us at 5,000 rows, 7 at 20,000); a batch of results holds about 35 MB."""


@contextmanager
def _quiet_kafka() -> Iterator[None]:
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        kafka_log.setLevel(level)


class BrokerUnavailable(RuntimeError):
    """The Kafka broker cannot be reached; the message says what to do."""


@dataclass
class SinkCounters:
    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    duplicates: int = 0
    batches: int = 0
    store_failures: int = 0
    commit_failures: int = 0


@dataclass
class _Job:
    """A batch handed to the insert thread. ``tables``: per table to store, the rows read
    and those the ledger let through; ``stored``: the ones stored so far."""

    batch: Batch
    tables: list[tuple[ddl.Table, int, ledger.Entries]] = field(default_factory=list)
    stored: list[tuple[ddl.Table, int, ledger.Entries]] = field(default_factory=list)
    future: Future[None] | None = None  # None: not running (failed, to be tried again)


class _Rebalance(ConsumerRebalanceListener):
    """kafka-python (3.x) calls these on its IO thread while ``poll`` waits on the sink's
    thread: they may not call a blocking consumer method (a commit raises there)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def on_partitions_revoked(self, revoked: object) -> None:
        self.sink._on_revoked(lost=False)

    def on_partitions_lost(self, lost: object) -> None:
        self.sink._on_revoked(lost=True)

    def on_partitions_assigned(self, assigned: object) -> None:
        self.sink._on_assigned(assigned)


class Sink:
    """Consume the event topics into ``store`` (database ``settings.database``)."""

    grouped = True  # a consumer group with committed offsets

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        group_id: str | None = None,
        batch_rows: int = BATCH_ROWS,
        batch_seconds: float = 1.0,
        retry_first: float = 0.5,
        retry_most: float = 10.0,
        log_interval: float = 30.0,
        recent_ids: int = 100_000,
        after_insert: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.group_id = group_id or settings.topic_prefix + GROUP
        self.after_insert = after_insert  # a fault-injection point for tests
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.counters = SinkCounters()
        self.batch = Batch()
        self.backoff = Backoff(retry_first, retry_most)
        self.throttle = Throttle(log_interval)
        self.ledger = ledger.Ledger(recent_ids)
        topics = settings.topics
        self.models: dict[str, type[BaseModel]] = {
            topics.results: Result,
            topics.feedback: Feedback,
            topics.alerts: Alert,
            topics.rollout: RolloutEvent,
        }
        self.paused = False
        self._job: _Job | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._rewind: dict[object, int] = {}  # the first uncommitted offset, at a rebalance

    @property
    def pending(self) -> bool:
        """Messages read and not committed yet (in flight or in hand)."""
        return self._job is not None or bool(self.batch.offsets)

    @property
    def held(self) -> int:
        """Messages in hand: the batch in flight and the one filling."""
        return len(self.batch) + (len(self._job.batch) if self._job else 0)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the broker and join the group."""
        servers = self.settings.bootstrap_servers.split(",")
        try:
            with _quiet_kafka():  # its retry errors; one clear message below instead
                self._producer = KafkaProducer(
                    bootstrap_servers=servers,
                    acks="all",
                    # off, as in the Emitter: Tansu on s3:// answers an idempotent producer
                    # with OutOfOrderSequenceNumber, then fails InitProducerId for good
                    enable_idempotence=False,
                    linger_ms=5,
                    bootstrap_timeout_ms=5000,
                    **self.settings.kafka_options(),
                )
                self._consumer = KafkaConsumer(
                    bootstrap_servers=servers,
                    group_id=self.group_id if self.grouped else None,
                    bootstrap_timeout_ms=5000,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    session_timeout_ms=6000,
                    heartbeat_interval_ms=1000,
                    max_poll_records=self.batch_rows,
                    **self.settings.kafka_options(),
                )
        except KafkaError:
            self.close()
            raise BrokerUnavailable(
                f"no Kafka broker at {self.settings.bootstrap_servers}: start it "
                "(`phasegate stack up`) or set PHASEGATE_BOOTSTRAP_SERVERS."
            ) from None
        self._attach(self._consumer)

    def _attach(self, consumer: KafkaConsumer) -> None:
        """Join the group on the event topics (``sinks.replay`` assigns partitions instead)."""
        consumer.subscribe(list(self.models), listener=_Rebalance(self))

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then store what is pending and leave the group."""
        self.start()
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def close(self) -> None:
        """Try to store what is in hand once, then leave the group cleanly."""
        if self._consumer is not None:
            if self.pending:
                self.flush()
            self._drop()
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
            self._consumer.close(autocommit=False)
            self._consumer = None
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    # -- one step ----------------------------------------------------------------------

    def poll_once(self, timeout_ms: int = 200) -> int:
        """Fetch once; hand the batch to the insert thread when it is full or old (after
        committing the one before); return messages taken."""
        consumer = self._require()
        if self.paused:
            if not self.backoff.ready():
                wait = min(timeout_ms, int(self.backoff.wait() * 1000) + 1)
                return self._take_all(consumer.poll(timeout_ms=wait))  # keeps the membership
            if not self.flush():
                return 0
        elif self._job is not None and self._job.future is not None and self._job.future.done():
            self._finish()  # commit early
        room = self.batch_rows - len(self.batch)
        taken = 0
        if room > 0:
            taken = self._take_all(consumer.poll(timeout_ms=timeout_ms, max_records=room))
        if self.batch.due(self.batch_rows, self.batch_seconds) and self._finish():
            self._hand_off()
        return taken

    def _take_all(self, records: dict) -> int:
        # While paused, poll returns nothing; whatever it does return is kept, not dropped.
        taken, now = 0, time.time()
        for partition, messages in records.items():
            self._take(partition, messages, now)
            taken += len(messages)
        self.counters.messages += taken
        return taken

    def _take(self, partition: object, messages: list, now: float) -> None:
        """Decode one partition's messages as a batch; the unreadable become dead letters."""
        values = [m.value for m in messages]
        decoded = fast_decode_many(values, expect=self.models[messages[0].topic])
        decoded = refuse_times(decoded, now, self.settings.max_future_seconds)
        if not any(type(d) is DecodeError for d in decoded):
            self.batch.add_many(partition, [m.offset for m in messages], decoded)  # type: ignore[arg-type]
            return
        offsets, events = [], []
        for message, event in zip(messages, decoded, strict=True):
            if type(event) is DecodeError:
                self.batch.add_dead(partition, message.offset, self._letter(message, event))
                self.counters.dead_letters += 1
            else:
                offsets.append(message.offset)
                events.append(event)
        self.batch.add_many(partition, offsets, events)  # type: ignore[arg-type]

    @staticmethod
    def _letter(message: object, error: DecodeError) -> DeadLetter:
        return DeadLetter(
            component=COMPONENT,
            source_topic=message.topic,  # type: ignore[attr-defined]
            partition=message.partition,  # type: ignore[attr-defined]
            offset=message.offset,  # type: ignore[attr-defined]
            key=message.key,  # type: ignore[attr-defined]
            reason=error.reason[:4096],
            original=message.value or b"",  # type: ignore[attr-defined]
        )

    def flush(self) -> bool:
        """Store and commit everything in hand (the batch in flight, then the one filling),
        waiting for it; False if the store refused (it is kept, to be tried again)."""
        if not self._finish():
            return False
        if self.batch.offsets:
            self._hand_off()
            if not self._finish():
                return False
        self._stored_again()
        return True

    # -- the insert thread -----------------------------------------------------------------

    def _hand_off(self) -> None:
        """The batch in hand goes to the insert thread (none may be in flight)."""
        self._job = _Job(self.batch)
        self.batch = Batch(clock=self.batch.clock)
        self._start(self._job)

    def _start(self, job: _Job) -> None:
        """Select the rows to store (the ledger, on this thread) and start the insert."""
        self._load_ledger()
        job.tables = [(t, len(e), self.ledger.select(t, e)) for t, e in job.batch.tables()]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="sink-insert")
        job.future = self._pool.submit(self._store, job)

    def _store(self, job: _Job) -> None:
        """On the insert thread: each table's rows, then the batch's dead letters."""
        for table, read, fresh in job.tables:
            columns = entry_columns(table, fresh)
            self._not_migrating()  # right before the insert: the migrator waits for it
            self.store.insert(f"{self.settings.database}.{table.name}", columns)
            job.batch.stored(table)
            job.stored.append((table, read, fresh))
        self._send_dead_letters(job.batch)

    def _not_migrating(self) -> None:
        """A migration fills rollups from the tables: no insert may land meanwhile."""
        if not self.store.shared:
            return
        migrator = schema_lock.holder(self.store, self.settings.database)
        if migrator is not None:
            raise StoreError(
                f"{self.settings.database} is being migrated by {migrator} (if that process "
                f"is gone: DROP TABLE {self.settings.database}.{schema_lock.LOCK_TABLE})"
            )

    def _finish(self) -> bool:
        """Wait for the batch in flight (starting it again if it failed before) and commit
        its offsets; False if the store refused it."""
        job = self._job
        if job is None:
            return True
        if job.future is None:
            self._start(job)
        assert job.future is not None
        try:
            job.future.result()
            if self.after_insert is not None:
                self.after_insert()
        except (StoreError, KafkaError) as exc:
            job.future = None
            self._remember(job)
            self._failed(exc)
            return False
        self._remember(job)
        self._commit(job.batch.offsets)
        self._job = None
        self.counters.batches += 1
        self._stored_again()
        return True

    def _remember(self, job: _Job) -> None:
        """What the job stored: into the ledger and the counters."""
        for table, read, fresh in job.stored:
            self.ledger.remember(table, fresh)
            self.counters.rows[table.name] = self.counters.rows.get(table.name, 0) + len(fresh)
            self.counters.duplicates += read - len(fresh)
        job.stored.clear()

    def _drop(self) -> None:
        """Forget what is not committed: its partitions' next owner reads it again."""
        self._job = None
        self.batch.clear()

    def _load_ledger(self) -> None:
        """The stored offsets of newly assigned partitions (before their first insert)."""
        if not self.ledger.unloaded:
            return
        tables = {topic: rows.TABLE_OF[model] for topic, model in self.models.items()}
        for topic, table in tables.items():
            partitions = [p for p in self.ledger.unloaded if getattr(p, "topic", None) == topic]
            if partitions:
                highest = self.store.query(ledger.ledger_sql(self.settings.database, table))
                self.ledger.load(partitions, {int(p): int(o) for p, o in highest})

    def _send_dead_letters(self, batch: Batch) -> None:
        if not batch.dead:
            return
        producer = self._producer
        assert producer is not None
        futures = [
            producer.send(self.settings.topics.dlq, encode(letter), key=letter.key)
            for letter in batch.dead
        ]
        producer.flush(timeout=10)
        for future in futures:
            future.get(timeout=10)
        batch.dead.clear()

    def _commit(self, next_offsets: dict[object, int]) -> None:
        if not next_offsets:
            return
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in next_offsets.items()}
        try:
            self._require().commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The rows are stored; a redelivery of them is skipped by the ledger.
            self.counters.commit_failures += 1
            log.warning("sink: commit failed (%s); those messages may be read again", exc)

    # -- store down ------------------------------------------------------------------------

    def _failed(self, exc: Exception) -> None:
        self.counters.store_failures += 1
        delay = self.backoff.failed()
        if not self.paused:
            self._pause()
        if self.throttle.due():
            log.warning(
                "sink: cannot store a batch (%s); holding %d messages, fetching paused, "
                "next try in %.1f s (%d more failures not logged)",
                exc,
                self.held,
                delay,
                self.throttle.take_suppressed(),
            )

    def _pause(self) -> None:
        self.paused = True
        consumer = self._require()
        consumer.pause(*consumer.assignment())

    def _stored_again(self) -> None:
        if self.paused:
            log.warning("sink: storing again after %d failed tries", self.backoff.failures)
            self.paused = False
            consumer = self._require()
            consumer.resume(*consumer.assignment())
        self.backoff.reset()

    def _on_revoked(self, lost: bool) -> None:
        """The group takes the partitions back (a rebalance, or this member was ``lost``).

        No commit is possible here (the IO thread), and none is needed: the insert in
        flight is waited for, so its rows are stored before the next owner loads the
        stored offsets, and everything uncommitted is dropped. The next owner reads it
        again from the committed offset; the ledger skips what is stored, by offset. A
        partition this sink keeps keeps its position in kafka-python, so it is sought
        back to the first offset dropped (``_on_assigned``); a lost member's partitions
        start afresh from the committed offsets."""
        unstored = [self.batch]
        job = self._job
        if job is not None:
            if not _landed(job):
                unstored.append(job.batch)  # to be read again
            self._remember(job)
        self._rewind = {} if lost else _first_offsets(unstored)
        self._drop()

    def _on_assigned(self, assigned: object) -> None:
        rewind, self._rewind = self._rewind, {}
        consumer = self._require()
        for partition in assigned:  # type: ignore[attr-defined]
            if partition in rewind:
                consumer.seek(partition, rewind[partition])
        self.ledger.assigned(assigned)  # type: ignore[arg-type]
        if self.paused:
            self._pause()

    def _require(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the sink is not started: call start() first")
        return self._consumer


def _first_offsets(batches: list[Batch]) -> dict[object, int]:
    """The lowest offset read of each partition in ``batches``."""
    first: dict[object, int] = {}
    for batch in batches:
        for partition, offset in batch.first.items():
            first[partition] = min(first.get(partition, offset), offset)
    return first


def _landed(job: _Job) -> bool:
    """Wait for ``job``'s insert; True if it stored everything."""
    if job.future is None:
        return False  # it failed before and is not running
    try:
        job.future.result()
    except (StoreError, KafkaError):
        return False
    return True
