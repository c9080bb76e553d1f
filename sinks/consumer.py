"""The sink: results, feedback, alerts and rollout topics -> ClickHouse, at least once.

Offsets are committed only after the rows they cover are stored; a redelivered event is
not inserted again (``sinks.ledger``), and ``FINAL`` collapses any that slips by. Rows of
an insert that raised, or that a predecessor stored without committing, are looked up
before they are inserted, and the rollups made to count them once (``sinks.repair``).
Undecodable messages go to the DLQ topic with the reason. While the store is down the
sink pauses fetching, holds at most ``inserts_at_once`` + 1 bounded batches and retries
with backoff, logging once per interval.

One asyncio loop drives a confluent-kafka consumer (librdkafka fetches and decompresses
on its own threads, outside the GIL) and an aiokafka producer (dead letters). Every call
on the consumer runs on the fetch thread (``sinks.client_thread``), in order: ``consume``,
commits, pauses. The loop decodes each partition's fetched messages as a batch
(``schemas.fastcodec``) and fills the next batch while those before it are inserted on
the insert threads (the stores are synchronous): up to ``Store.inserts_at_once`` batches
in flight (a server: two, each on its own connection; chdb: one). A batch lands in two
steps: its rows are chosen (after the batch before it chose, skipping the ids that one
claimed), inserted and its dead letters sent; then, strictly in order, its offsets are
committed (synchronously) once every batch before it committed. A batch that failed is
tried again (before any after it commits) once no insert runs, so ``sinks.repair`` finds
what the batches after it stored. librdkafka calls the rebalance callbacks inside
``consume``; they hand the work to the loop and run the consumer's calls meanwhile.
Before the group takes partitions away the sink awaits every batch in flight, commits in
order those that landed, and drops the rest: the next owner reads it again from the
commit.

The synchronous methods (``start``, ``poll_once``, ``flush``, ``close``, ``run``) run the
loop for one step each, from any one thread at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from confluent_kafka import Consumer, KafkaException, Message
from confluent_kafka import TopicPartition as Offset
from pydantic import BaseModel

from rollout.async_follower import close_client
from schemas import DeadLetter, DecodeError, encode
from schemas.backoff import Backoff
from schemas.codec import collection_paused
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.fastcodec import fast_decode_batch
from schemas.kafka_security import LIBRDKAFKA_LOGGER, aiokafka_options, librdkafka_options
from schemas.settings import Settings
from sinks import ddl, ledger, repair, rows, schema_lock
from sinks.batch import Batch, Throttle, entry_columns, refuse_times
from sinks.client_thread import ClientThread
from sinks.store import Store, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

GROUP = "sink"
"""The consumer group, after the topic prefix (``phasegate.sink``): one group per prefix."""
COMPONENT = "sink"
CLOSE_S = 10.0  # the longest wait for a client to leave
CONNECT_S = 15.0  # the longest wait for the broker's metadata at start
LANDING_FETCH_S = 0.01
"""While batches land, a fetch waits at most this long a call: the step then commits one
that landed."""
FETCH_BACKOFF_MS = 50
"""librdkafka's ``fetch.queue.backoff.ms``: how long it postpones a partition's next fetch
once its prefetch queue is full (its default, 1,000 ms, let the queue run dry while the
sink took 50,000 messages at a time and the loop waited on empty fetches:
docs/design.md, "The sink's loop")."""


@contextlib.contextmanager
def _quiet_kafka() -> Iterator[None]:
    """The clients' own error logs off: the sink says what failed in one line."""
    loggers = [logging.getLogger(name) for name in ("kafka", "aiokafka")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class BrokerUnavailable(RuntimeError):
    """The Kafka broker cannot be reached; the message says what to do."""


class Partition(NamedTuple):
    """A topic's partition: the key of the batch's and the ledger's offsets."""

    topic: str
    partition: int


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
    """A batch in flight: ``landing`` chooses and inserts its rows and sends its dead
    letters (True), or fails (False: the job is kept, to be tried again); ``selected`` is
    set once it chose its rows (the batch after it, ``after`` its predecessor's, waits)."""

    batch: Batch
    after: asyncio.Event | None = None
    selected: asyncio.Event = field(default_factory=asyncio.Event)
    landing: asyncio.Task[bool] | None = None

    @property
    def landed(self) -> bool:
        """Its rows are stored and its dead letters sent: it may commit."""
        return self.landing is not None and self.landing.done() and self.landing.result()

    @property
    def failed(self) -> bool:
        """The store refused it: to be tried again."""
        return self.landing is not None and self.landing.done() and not self.landing.result()


class Sink:
    """Consume the event topics into ``store`` (database ``settings.database``)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        group_id: str | None = None,
        batch_rows: int | None = None,
        batch_seconds: float = 1.0,
        retry_first: float = 0.5,
        retry_most: float = 10.0,
        log_interval: float = 30.0,
        recent_ids: int = 100_000,
        fetch_backoff_ms: int = FETCH_BACKOFF_MS,
        after_insert: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.group_id = group_id or settings.topic_prefix + GROUP
        self.after_insert = after_insert  # a fault-injection point for tests
        self.batch_rows = batch_rows or settings.sink_batch_rows
        self.batch_seconds = batch_seconds
        self.fetch_backoff_ms = fetch_backoff_ms
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
        self.assigned: set[Partition] = set()
        self._jobs: deque[_Job] = deque()  # in flight, in fetch order
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None  # the insert threads
        self._fetcher: ClientThread | None = None  # every call on the consumer
        self._consumer: Consumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._connecting = True  # broker errors are kept (not logged) until it answered
        self._broker_error: str | None = None
        self._broker_throttle = Throttle(log_interval)  # on the fetch thread

    @property
    def pending(self) -> bool:
        """Messages read and not committed yet (in flight or in hand)."""
        return bool(self._jobs) or bool(self.batch.offsets)

    @property
    def held(self) -> int:
        """Messages in hand: the batches in flight and the one filling."""
        return len(self.batch) + sum(len(job.batch) for job in self._jobs)

    # -- the synchronous face: one loop, driven a step at a time -------------------------

    def _call(self, step: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return self._loop.run_until_complete(step)

    def start(self) -> None:
        """Connect to the broker and join the group (once: a started sink stays so)."""
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._pool = ThreadPoolExecutor(
            self.store.inserts_at_once, thread_name_prefix="sink-insert"
        )
        self._fetcher = ClientThread("sink-fetch")
        try:
            self._call(self._open())
        except BaseException:
            self.close()
            raise

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then store what is pending and leave the group."""
        self.start()
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self, timeout_ms: int = 200) -> int:
        """Fetch once; commit the batches in flight that landed; hand the batch to an
        insert thread when it is full or old (once fewer than the store's
        ``inserts_at_once`` are in flight); return messages taken."""
        return self._call(self.step(timeout_ms))

    def flush(self) -> bool:
        """Store and commit everything in hand, waiting for it; False if the store
        refused (it is kept, to be tried again)."""
        return self._call(self.land_all())

    def close(self) -> None:
        """Try to store what is in hand once, then leave the group cleanly."""
        if self._loop is None:
            return
        try:
            self._call(self._shut())
        finally:
            if self._pool is not None:
                self._pool.shutdown()
            if self._fetcher is not None:
                self._fetcher.shutdown()
            self._pool = self._fetcher = None
            self._loop.close()
            self._loop = None

    # -- lifecycle -----------------------------------------------------------------------

    async def _open(self) -> None:
        servers = self.settings.bootstrap_servers
        try:
            producer_options = aiokafka_options(self.settings)
            consumer_options = librdkafka_options(self.settings)
        except ValueError as exc:  # a TLS file is missing
            raise BrokerUnavailable(str(exc)) from None
        self._consumer = Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
                "fetch.wait.max.ms": 200,
                "fetch.queue.backoff.ms": self.fetch_backoff_ms,
                "error_cb": self._on_broker_error,
                "logger": LIBRDKAFKA_LOGGER,
                **consumer_options,
            }
        )
        no_broker = BrokerUnavailable(
            f"no Kafka broker at {servers}: start it "
            "(`phasegate stack up`) or set PHASEGATE_BOOTSTRAP_SERVERS."
        )
        if not await self._in_fetch(self._connect, self._consumer):
            raise no_broker
        self._producer = AIOKafkaProducer(
            bootstrap_servers=servers.split(","), acks="all", linger_ms=5, **producer_options
        )
        try:
            with _quiet_kafka():  # its retry errors; one clear message below instead
                await self._producer.start()
        except (KafkaError, OSError, KeyError, ValueError):  # a refused SCRAM login: the last two
            raise no_broker from None
        await self._attach(self._consumer)

    def _connect(self, consumer: Consumer) -> bool:
        """On the fetch thread: whether the broker gave its metadata (False as soon as
        librdkafka reports an error: down, TLS or login refused)."""
        deadline = time.monotonic() + CONNECT_S
        while time.monotonic() < deadline:
            try:
                consumer.list_topics(timeout=0.5)
            except KafkaException:
                consumer.poll(0)  # serves the error callback
                if self._broker_error is not None:
                    return False
            else:
                self._connecting = False
                return True
        return False

    def _on_broker_error(self, error: Any) -> None:
        """librdkafka's error callback (on the fetch thread): kept while connecting,
        then logged once per interval (it reconnects by itself)."""
        if self._connecting:
            self._broker_error = str(error)
        elif self._broker_throttle.due():
            log.warning("sink: cannot fetch (%s); trying again", error)

    async def _attach(self, consumer: Consumer) -> None:
        """Join the group on the event topics (``sinks.replay`` assigns partitions instead)."""
        await self._in_fetch(
            consumer.subscribe,
            list(self.models),
            on_assign=self._assign_callback,
            on_revoke=self._revoke_callback,
        )

    async def _shut(self) -> None:
        if self._consumer is not None and self.pending:
            await self.land_all()
        await self._quiet()
        self._drop()
        if self._consumer is not None:
            await self._in_fetch(self._consumer.close)  # leaves the group (revoking)
        if self._producer is not None:
            await close_client(self._producer, CLOSE_S)
        self._consumer = self._producer = None

    # -- one step ------------------------------------------------------------------------

    async def step(self, timeout_ms: int = 200) -> int:
        """What :meth:`poll_once` does, on the loop."""
        self._require()
        if self.paused:
            if not self.backoff.ready():
                wait = min(timeout_ms, int(self.backoff.wait() * 1000) + 1)
                return await self._fetch(wait, 1)  # paused: serves the group's callbacks
            if not await self.land_all():
                return 0
        room = self.batch_rows - len(self.batch)
        taken = await self._fetch(timeout_ms, room) if room > 0 else 0
        due = not self.paused and self.batch.due(self.batch_rows, self.batch_seconds)
        keep = self.store.inserts_at_once - 1 if due else len(self._jobs)
        if await self._settle(keep) and due and not self.paused:
            self._hand_off()
        return taken

    async def _fetch(self, timeout_ms: int, room: int) -> int:
        """Fetch at most ``room`` messages into the batch (librdkafka reconnects by itself
        and reports through :meth:`_on_broker_error`)."""
        consumer, loop = self._require(), asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        try:
            with collection_paused():  # thousands of messages and events, all kept
                while True:
                    wait = deadline - loop.time()
                    if self._jobs:
                        wait = min(wait, LANDING_FETCH_S)
                    got = await self._in_fetch(_consume, consumer, room, max(wait, 0.0))
                    if got or loop.time() >= deadline:
                        return self._take_all(got)
        except KafkaException as exc:
            if self.throttle.due():
                log.warning("sink: cannot fetch (%s); trying again", exc)
        await asyncio.sleep(timeout_ms / 1000)
        return 0

    def _take_all(self, messages: list[Message]) -> int:
        """Fetched messages into the batch, a partition at a time (no await since the
        fetch: of partitions assigned now; librdkafka drops those fetched before a
        rebalance)."""
        groups, failed = by_partition(messages)
        for message in failed:
            self._fetch_failed(message)
        taken, now = 0, time.time()
        for partition, run in groups.items():
            if partition in self.assigned:
                self._take(partition, run, now)
                taken += len(run)
        self.counters.messages += taken
        return taken

    def _fetch_failed(self, message: Message) -> None:
        if self._broker_throttle.due():
            log.warning(
                "sink: cannot fetch %s [%s] (%s); trying again",
                message.topic(),
                message.partition(),
                message.error(),
            )

    def _take(self, partition: Partition, messages: list[Message], now: float) -> None:
        """Decode one partition's messages as a batch; the unreadable become dead letters."""
        model = self.models[partition.topic]
        offsets = list(map(Message.offset, messages))
        decoded = fast_decode_batch(list(map(Message.value, messages)), model)
        decoded = refuse_times(decoded, now, self.settings.max_future_seconds)
        if not any(type(d) is DecodeError for d in decoded):
            self.batch.add_many(partition, offsets, decoded, model)
            return
        kept, events = [], []
        for message, offset, event in zip(messages, offsets, decoded, strict=True):
            if type(event) is DecodeError:
                self.batch.add_dead(partition, offset, self._letter(message, event))
                self.counters.dead_letters += 1
            else:
                kept.append(offset)
                events.append(event)
        self.batch.add_many(partition, kept, events, model)

    @staticmethod
    def _letter(message: Message, error: DecodeError) -> DeadLetter:
        return DeadLetter(
            component=COMPONENT,
            source_topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
            reason=error.reason[:4096],
            original=message.value() or b"",
        )

    async def land_all(self) -> bool:
        """What :meth:`flush` does, on the loop."""
        if not await self._settle(0):
            return False
        if self.batch.offsets:
            self._hand_off()
            if not await self._settle(0):
                return False
        self._stored_again()
        return True

    # -- landing a batch -----------------------------------------------------------------

    def _hand_off(self) -> None:
        """The batch in hand starts landing, after those in flight."""
        if not self.batch.offsets:
            return  # dropped by a rebalance meanwhile
        job = _Job(self.batch, self._jobs[-1].selected if self._jobs else None)
        self._jobs.append(job)
        self.batch = Batch(clock=self.batch.clock)
        job.landing = asyncio.ensure_future(self._land(job))

    async def _settle(self, keep: int) -> bool:
        """Commit, in order, the batches in flight that landed, waiting for them until at
        most ``keep`` are left (trying a failed one again); False if the store refused
        one (it is kept, to be tried again)."""
        while self._jobs and (len(self._jobs) > keep or self._jobs[0].landed):
            job = self._jobs[0]
            if not await self._landed(job):
                return False
            await self._commit(job.batch.offsets)
            if self._jobs and self._jobs[0] is job:  # not dropped by a rebalance meanwhile
                self._jobs.popleft()
            self.counters.batches += 1
            if not any(later.failed for later in self._jobs):
                self._stored_again()
        return True

    async def _landed(self, job: _Job) -> bool:
        """Wait for ``job`` to land; one that failed is tried again once no other insert
        runs (``sinks.repair`` then finds what those after it stored)."""
        if job.landing is None or job.failed:
            await self._quiet()
            job.landing = asyncio.ensure_future(self._land(job))
        return await asyncio.shield(job.landing)

    async def _quiet(self) -> None:
        """Wait until no batch is landing (whatever came of it)."""
        running = [j.landing for j in self._jobs if j.landing is not None and not j.landing.done()]
        if running:
            await asyncio.wait(running)

    async def _land(self, job: _Job) -> bool:
        """Choose ``job``'s rows (after the batch before it chose; its ids claimed until
        stored), insert them on an insert thread, send its dead letters."""
        chosen: list[tuple[ddl.Table, int, ledger.Entries]] = []
        try:
            try:
                if job.after is not None:
                    await job.after.wait()
                await self._load_ledger()
                for table, entries in job.batch.tables():
                    fresh = await self._fresh(table, entries)
                    self.ledger.claim(fresh)
                    chosen.append((table, len(entries), fresh))
            finally:
                job.selected.set()
            for table, read, fresh in chosen:
                await self._in_thread(self._insert, table, fresh)
                job.batch.stored(table)
                self._remember(table, read, fresh)
            await self._send_dead_letters(job.batch)
            if self.after_insert is not None:
                self.after_insert()
        except (StoreError, KafkaError) as exc:
            self.ledger.assigned(job.batch.first)  # what landed is for the retry to find
            self._failed(exc)
            return False
        finally:
            for _, _, fresh in chosen:
                self.ledger.release(fresh)
        return True

    async def _fresh(self, table: ddl.Table, entries: ledger.Entries) -> ledger.Entries:
        """``entries`` the store does not hold; those read again (at or below the stored
        offset) are looked up first, and the rollups made to count them (``sinks.repair``)."""
        again = self.ledger.again(entries)
        if not again:
            return self.ledger.select(table, entries)
        database = self.settings.database
        held = await self._in_thread(repair.reconcile, self.store, database, table, again)
        return self.ledger.select(table, entries, held)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _in_fetch(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` on the fetch thread, after the consumer's calls before it."""
        assert self._fetcher is not None
        return await asyncio.wrap_future(
            self._fetcher.submit(functools.partial(fn, *args, **kwargs))
        )

    def _insert(self, table: ddl.Table, entries: ledger.Entries) -> None:
        """On the insert thread: ``table``'s rows, as columns."""
        columns = entry_columns(table, entries)
        self._not_migrating()  # right before the insert: the migrator waits for it
        self.store.insert(f"{self.settings.database}.{table.name}", columns)

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

    def _remember(self, table: ddl.Table, read: int, fresh: ledger.Entries) -> None:
        """``fresh`` (of ``read`` rows) is stored: into the ledger and the counters."""
        self.ledger.remember(table, fresh)
        self.counters.rows[table.name] = self.counters.rows.get(table.name, 0) + len(fresh)
        self.counters.duplicates += read - len(fresh)

    async def _load_ledger(self) -> None:
        """The stored offsets of newly assigned partitions (before their first insert)."""
        for topic, model in self.models.items():
            partitions = [p for p in self.ledger.unloaded if getattr(p, "topic", None) == topic]
            if partitions:
                sql = ledger.ledger_sql(self.settings.database, rows.TABLE_OF[model])
                highest = await self._in_thread(self.store.query, sql)
                self.ledger.load(partitions, {int(p): int(o) for p, o in highest})

    async def _send_dead_letters(self, batch: Batch) -> None:
        if not batch.dead:
            return
        producer = self._producer
        assert producer is not None
        topic = self.settings.topics.dlq
        sent = [await producer.send(topic, encode(x), key=x.key) for x in batch.dead]
        await asyncio.gather(*sent)
        batch.dead.clear()

    async def _commit(self, next_offsets: dict[object, int]) -> None:
        offsets = [
            Offset(p.topic, p.partition, o) for p, o in next_offsets.items() if p in self.assigned
        ]
        if offsets:
            await self._in_fetch(self._commit_now, offsets)

    def _commit_now(self, offsets: list[Offset]) -> None:
        """On the fetch thread, waiting for the broker's answer."""
        try:
            done = self._require().commit(offsets=offsets, asynchronous=False) or []
            error = next((tp.error for tp in done if tp.error is not None), None)
        except KafkaException as exc:
            error = exc
        if error is not None:
            # The rows are stored; a redelivery of them is skipped by the ledger.
            self.counters.commit_failures += 1
            log.warning("sink: commit failed (%s); those messages may be read again", error)

    def _drop(self) -> None:
        """Forget what is not committed (none landing): the next owner reads it again."""
        self._jobs.clear()
        self.batch.clear()

    # -- store down ----------------------------------------------------------------------

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
        self._on_fetch(lambda: consumer.pause(consumer.assignment()))

    def _stored_again(self) -> None:
        if self.paused:
            log.warning("sink: storing again after %d failed tries", self.backoff.failures)
            self.paused = False
            consumer = self._require()
            self._on_fetch(lambda: consumer.resume(consumer.assignment()))
        self.backoff.reset()

    def _on_fetch(self, fn: Callable[[], None]) -> None:
        """``fn`` on the fetch thread before the next fetch, not waited for."""
        assert self._fetcher is not None
        self._fetcher.submit(fn)

    # -- the group (librdkafka calls back on the fetch thread; the loop does the work) ----

    def _revoke_callback(self, consumer: Consumer, partitions: list[Offset]) -> None:
        self._on_loop(self.on_partitions_revoked(_partitions(partitions)))

    def _assign_callback(self, consumer: Consumer, partitions: list[Offset]) -> None:
        self._on_loop(self.on_partitions_assigned(_partitions(partitions)))
        consumer.assign(partitions)
        if self.paused:
            consumer.pause(partitions)

    def _on_loop(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the loop (it runs: it awaits the fetch thread) and wait for it,
        running the consumer's calls it makes meanwhile (a commit)."""
        assert self._loop is not None and self._fetcher is not None
        self._fetcher.serve_until(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def on_partitions_revoked(self, revoked: set[Partition]) -> None:
        """The group takes the partitions back: every batch in flight lands or fails,
        those landed commit in order (by this member) up to the first that did not, the
        rest is dropped, to be read again by the next owner from the commit (the ledger
        skips what is stored, by offset)."""
        await self._quiet()
        await self._settle(len(self._jobs))
        self._drop()
        self.assigned -= revoked

    async def on_partitions_assigned(self, assigned: set[Partition]) -> None:
        """Every assigned partition starts at its committed offset: the ledger loads
        what the store holds of it before the next insert."""
        self.ledger.assigned(assigned)
        self.assigned |= assigned

    def _require(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("the sink is not started: call start() first")
        return self._consumer


def _partitions(offsets: list[Offset]) -> set[Partition]:
    return {Partition(tp.topic, tp.partition) for tp in offsets}


def _consume(consumer: Consumer, room: int, wait: float) -> list[Message]:
    """On the fetch thread: what librdkafka holds fetched, up to ``room`` messages; if it
    holds none, the first to come within ``wait`` seconds and what came with it (its
    ``consume`` alone waits for ``room`` messages or the whole ``wait``)."""
    got = consumer.consume(room, 0)
    if got or wait <= 0:
        return got
    first = consumer.poll(wait)
    if first is None:
        return []
    return [first, *consumer.consume(room - 1, 0)] if room > 1 else [first]


def by_partition(messages: list[Message]) -> tuple[dict[Partition, list[Message]], list[Message]]:
    """Fetched messages by partition, in order, and those that carry an error (read with
    C loops, ``map``, and cut where the partition changes: not a Python loop a message)."""
    failed: list[Message] = []
    if any(map(Message.error, messages)):
        failed = [m for m in messages if m.error() is not None]
        messages = [m for m in messages if m.error() is None]
    if not messages:
        return {}, failed
    topics = list(map(Message.topic, messages))
    numbers = list(map(Message.partition, messages))
    changed = map(
        operator.or_, map(operator.ne, numbers, numbers[1:]), map(operator.ne, topics, topics[1:])
    )
    starts = [0, *itertools.compress(range(1, len(messages)), changed)]
    groups: dict[Partition, list[Message]] = {}
    for a, b in zip(starts, [*starts[1:], len(messages)], strict=True):
        groups.setdefault(Partition(topics[a], numbers[a]), []).extend(messages[a:b])
    return groups, failed
