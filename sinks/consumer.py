"""The sink: results, feedback, alerts and rollout topics -> ClickHouse, at least once.

Offsets are committed only after the rows they cover are stored; a redelivered event is
not inserted again (``sinks.ledger``), and ``FINAL`` collapses any that slips by.
Undecodable messages go to the DLQ topic with the reason. While the store is down the
sink pauses fetching, holds one bounded batch and retries with backoff, logging once per
interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import BaseModel

from schemas import DeadLetter, DecodeError, decode, encode
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.settings import Settings
from schemas.timebounds import ts_refusal
from sinks import ledger, rows
from sinks.batch import Backoff, Batch, Throttle, entry_columns
from sinks.store import Store, StoreError

log = logging.getLogger(__name__)

GROUP = "sink"
"""The consumer group, after the topic prefix (``phasegate.sink``): one group per prefix."""
COMPONENT = "sink"


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


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def on_partitions_revoked(self, revoked: object) -> None:
        self.sink._on_revoked()

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
        batch_rows: int = 5000,
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
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None

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
        """Try to store the pending batch once, then leave the group cleanly."""
        if self._consumer is not None:
            if self.batch.offsets:
                self.flush()
            self._consumer.close(autocommit=False)
            self._consumer = None
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    # -- one step ----------------------------------------------------------------------

    def poll_once(self, timeout_ms: int = 200) -> int:
        """Fetch once, and store the batch when it is full or old; return messages taken."""
        consumer = self._require()
        if self.paused:
            if not self.backoff.ready():
                wait = min(timeout_ms, int(self.backoff.wait() * 1000) + 1)
                return self._take_all(consumer.poll(timeout_ms=wait))  # keeps the membership
            if not self.flush():
                return 0
        room = max(1, self.batch_rows - len(self.batch))
        taken = self._take_all(consumer.poll(timeout_ms=timeout_ms, max_records=room))
        if self.batch.due(self.batch_rows, self.batch_seconds):
            self.flush()
        return taken

    def _take_all(self, records: dict) -> int:
        # While paused, poll returns nothing; whatever it does return is kept, not dropped.
        taken = 0
        for partition, messages in records.items():
            for message in messages:
                self._take(partition, message)
                taken += 1
        return taken

    def _take(self, partition: object, message: object) -> None:
        self.counters.messages += 1
        try:
            event = decode(message.value, expect=self.models[message.topic])
            refused = ts_refusal(event.ts, time.time(), self.settings.max_future_seconds)
            if refused:  # the store would refuse the row, and the batch with it
                raise DecodeError(refused)
        except DecodeError as exc:
            letter = DeadLetter(
                component=COMPONENT,
                source_topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                reason=exc.reason[:4096],
                original=message.value or b"",
            )
            self.batch.add_dead(partition, message.offset, letter)
            self.counters.dead_letters += 1
            return
        self.batch.add(partition, message.offset, event)

    def flush(self) -> bool:
        """Store the batch, send its dead letters, commit its offsets; False to retry later."""
        try:
            self._load_ledger()
            for table, entries in self.batch.tables():
                fresh = self.ledger.select(table, entries)
                table_name = f"{self.settings.database}.{table.name}"
                count = self.store.insert(table_name, entry_columns(table, fresh))
                self.ledger.remember(table, fresh)
                self.batch.stored(table)
                self.counters.rows[table.name] = self.counters.rows.get(table.name, 0) + count
                self.counters.duplicates += len(entries) - len(fresh)
            self._send_dead_letters()
            if self.after_insert is not None:
                self.after_insert()
        except (StoreError, KafkaError) as exc:
            self._failed(exc)
            return False
        self._commit()
        self.batch.clear()
        self.counters.batches += 1
        if self.paused:
            log.warning("sink: storing again after %d failed tries", self.backoff.failures)
            self._resume()
        self.backoff.reset()
        return True

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

    def _send_dead_letters(self) -> None:
        if not self.batch.dead:
            return
        producer = self._producer
        assert producer is not None
        futures = [
            producer.send(self.settings.topics.dlq, encode(letter), key=letter.key)
            for letter in self.batch.dead
        ]
        producer.flush(timeout=10)
        for future in futures:
            future.get(timeout=10)
        self.batch.dead.clear()

    def _commit(self) -> None:
        if not self.batch.offsets:
            return
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in self.batch.offsets.items()}
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
                len(self.batch),
                delay,
                self.throttle.take_suppressed(),
            )

    def _pause(self) -> None:
        self.paused = True
        consumer = self._require()
        consumer.pause(*consumer.assignment())

    def _resume(self) -> None:
        self.paused = False
        consumer = self._require()
        consumer.resume(*consumer.assignment())

    def _on_revoked(self) -> None:
        # Uncommitted messages of a revoked partition are read again by its next owner
        # (and ours restart from the committed offsets): dropping them loses nothing.
        if self.batch.offsets and not self.flush():
            self.batch.clear()

    def _on_assigned(self, assigned: object) -> None:
        self.ledger.assigned(assigned)  # type: ignore[arg-type]
        if self.paused:
            self._pause()

    def _require(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the sink is not started: call start() first")
        return self._consumer
