"""The Emitter: send result and feedback events to Kafka without ever hurting the caller.

``emit()`` only appends the (already validated) model to a bounded buffer and returns;
a background thread encodes it with :func:`schemas.codec.encode` and hands it to a
kafka-python ``KafkaProducer``. Nothing on the caller's path does I/O, blocks or raises.

Buffer and drop policy
    The buffer is bounded by ``max_events`` (events accepted and not yet acknowledged)
    and by ``max_bytes`` (encoded bytes waiting to be sent or in flight; the sender
    encodes as soon as it runs, so only the events not yet encoded are outside this
    count: a few, or those of the last 2 s while it waits on a connection attempt).
    When either bound is reached, ``emit()`` drops the *new* event, counts it and
    returns ``False``: events already accepted are kept, so a broker outage loses the
    newest traffic, never a gap in the middle.

Counters (:class:`EmitterStats`), exact at any instant::

    queued == sent + dropped + buffered

``queued`` counts every event passed to ``emit()``; ``sent`` those the broker
acknowledged (acks=all); ``dropped`` those that will never be sent (buffer full, emitter
closed, not encodable, or still buffered when ``close()`` gave up); ``buffered`` those
accepted and not yet acknowledged. ``failed`` counts failed delivery *attempts*
(informational: a failed event goes back to the buffer and is retried until it is sent
or ``close()`` gives up, so it is never lost silently; a refused send or a failed
connection attempt counts one too). Delivery is at least once: a
retried event may arrive twice; consumers de-duplicate by ``event_id``.

Broker down
    At start (``KafkaProducer`` cannot bootstrap) the thread retries creating it with
    exponential backoff while ``emit()`` keeps buffering. Later, the producer retries
    in-flight events itself until ``delivery_timeout_s``; then they come back to the
    buffer and are sent again. A failure (or no acknowledgement) lasting longer than
    ``error_after_s`` is logged at ERROR once per ``error_interval_s``; recovery at INFO.

Tuning (defaults measured against the local Tansu broker: see bench/bench_emit.py)
    Compression is the ``emit_compression`` setting: none, gzip, lz4, zstd or snappy
    (kafka-python sets no level: gzip runs at 9, zstd at 3). The default lz4 cost the
    least CPU an event in two runs (27-32 us: the sender thread 24-29, kafka-python's
    network thread 3; none 31-35, zstd 33-37, snappy 33-38, gzip 47-52) and sends 124
    bytes an event (none 382, snappy 127, gzip 78, zstd 74). Most of it is
    kafka-python's per-record ``send()`` (a bare loop pays 25-29 us with lz4), not the
    compression. Events/s varied up to 3x between rounds on the shared machine: no
    compression was reliably faster than another. ``linger_ms=20`` and
    ``batch_size=256 KiB`` fill large batches at high rates while adding at most 20 ms
    of delivery delay at low rates (64 KiB to 1 MiB batches measured within 10%).
    Keys are hashed once per distinct key (a cached murmur2, same partitions as
    kafka-python's default partitioner).
    ``acks="all"``; idempotence off (not relied on with Tansu, whose producer-id support
    is partial; consumers de-duplicate by ``event_id`` anyway).

asyncio
    ``emit()`` never blocks, so call it directly from coroutines. ``flush()`` and
    ``close()`` block: ``await asyncio.to_thread(emitter.flush, 5)``.

Thread safety: every method may be called from any thread.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.codec import describe, encode
from schemas.events import Feedback, Result, RolloutEvent, Verdict
from schemas.kafka_security import refusal
from schemas.settings import Settings

log = logging.getLogger(__name__)

Event = Result | Feedback | RolloutEvent
_CODEC_PACKAGES = {"lz4": "lz4", "zstd": "zstandard", "snappy": "python-snappy"}
_Record = tuple[str, bytes, bytes]  # topic, key, value


@dataclass(frozen=True)
class EmitterStats:
    """A consistent snapshot of the counters (see the module docstring)."""

    queued: int
    sent: int
    dropped: int
    buffered: int
    failed: int
    buffered_bytes: int
    dropped_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        return self.queued == self.sent + self.dropped + self.buffered


class Emitter:
    """Buffered, non-blocking, fail-safe event emission (see the module docstring)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        max_events: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
        linger_ms: int = 20,
        batch_size: int = 256 * 1024,
        delivery_timeout_s: float = 30.0,
        backoff_s: tuple[float, float] = (0.2, 5.0),
        error_after_s: float = 5.0,
        error_interval_s: float = 60.0,
        client_id: str = "phasegate-emitter",
        **producer_config: Any,
    ) -> None:
        self.settings = settings or Settings()
        self._topics = {
            Result: self.settings.topics.results,
            Feedback: self.settings.topics.feedback,
            RolloutEvent: self.settings.topics.rollout,
        }
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._backoff = backoff_s
        self._error_after = error_after_s
        self._error_interval = error_interval_s
        request_timeout_ms = int(min(10.0, delivery_timeout_s / 2) * 1000)
        compression = self.settings.emit_compression
        self._producer_config: dict[str, Any] = {
            "bootstrap_servers": [
                s.strip() for s in self.settings.bootstrap_servers.split(",") if s.strip()
            ],
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": False,
            "compression_type": None if compression == "none" else compression,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "max_block_ms": 1000,  # metadata waits block only the sender thread
            "bootstrap_timeout_ms": 2000,
            "request_timeout_ms": request_timeout_ms,
            "delivery_timeout_ms": int(delivery_timeout_s * 1000) + linger_ms,
            "reconnect_backoff_ms": 100,
            "reconnect_backoff_max_ms": 1000,
            "partitioner": _hash_cached_partitioner(),
            **self.settings.kafka_options(),
            **producer_config,
        }
        _check_config(self._producer_config)

        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._models: collections.deque[Event] = collections.deque()  # accepted, not encoded
        self._pending: collections.deque[_Record] = collections.deque()  # encoded, not sent
        self._inflight: collections.deque[tuple[Any, _Record]] = collections.deque()
        self._queued = self._sent = self._dropped = self._buffered = self._failed = 0
        self._bytes = 0
        self._reasons: collections.Counter[str] = collections.Counter()
        self._closed = False
        self._stop = False
        self._finished = False  # close() has settled the counters: late callbacks ignored
        self._sleeping = False
        self._failing_since: float | None = None
        self._last_exc: BaseException | None = None
        self._last_progress = time.monotonic()
        self._last_error_log = float("-inf")
        self._last_drop_log = float("-inf")
        self._producer: Any = None
        self._thread = threading.Thread(target=self._run, name="phasegate-emitter", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller side
    def emit(self, event: Event) -> bool:
        """Queue one event for delivery; ``False`` if it was dropped. Never raises or blocks."""
        try:
            with self._lock:
                self._queued += 1
                if self._closed:
                    return self._drop_locked("closed")
                if type(event) not in self._topics:
                    return self._drop_locked("invalid")
                if self._buffered >= self._max_events or self._bytes >= self._max_bytes:
                    return self._drop_locked("full")
                self._buffered += 1
                self._models.append(event)
                sleeping = self._sleeping
            if sleeping:
                self._wake.set()
            return True
        except Exception:  # pragma: no cover - defensive: the app must never see one
            return False

    def emit_feedback(
        self,
        rollout: str,
        query_id: str,
        system: str,
        verdict: Verdict,
        comment: str | None = None,
    ) -> bool:
        """Build and emit a :class:`Feedback`; invalid arguments are logged, not raised."""
        try:
            event = Feedback(
                rollout=rollout, query_id=query_id, system=system, verdict=verdict, comment=comment
            )
        except ValidationError as exc:
            log.warning("feedback not emitted, invalid: %s", describe(exc))
            return False
        return self.emit(event)

    def stats(self) -> EmitterStats:
        with self._lock:
            return EmitterStats(
                queued=self._queued,
                sent=self._sent,
                dropped=self._dropped,
                buffered=self._buffered,
                failed=self._failed,
                buffered_bytes=self._bytes,
                dropped_by_reason=dict(self._reasons),
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event is acknowledged; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._drained:
            while self._buffered:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._drained.wait(0.1 if left is None else min(left, 0.1))
            return True

    def close(self, timeout: float = 10.0) -> bool:
        """Stop accepting, deliver what is buffered within ``timeout``, drop the rest.

        Returns ``True`` if nothing had to be dropped at close.
        """
        with self._lock:
            if self._closed and self._stop:
                return self._buffered == 0
            self._closed = True
        start = time.monotonic()
        delivered = self.flush(timeout)
        self._stop = True
        self._halt.set()
        self._wake.set()
        self._thread.join(max(0.5, timeout - (time.monotonic() - start)))
        producer, self._producer = self._producer, None
        if producer is not None:
            _close_producer(producer, 1.0 if delivered else 0.0)
        with self._lock:
            self._finished = True
            left = self._buffered
            if left:
                self._dropped += left
                self._reasons["close"] += left
                self._buffered = 0
                self._bytes = 0
                self._models.clear()
                self._pending.clear()
                self._inflight.clear()
                log.error("emitter closed with %d events undelivered (dropped)", left)
            self._drained.notify_all()
        return delivered and not left

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _drop_locked(self, reason: str) -> bool:
        self._dropped += 1
        self._reasons[reason] += 1
        now = time.monotonic()
        if now - self._last_drop_log >= self._error_interval:
            self._last_drop_log = now
            log.warning(
                "event dropped (%s); %d dropped so far, %d buffered",
                reason,
                self._dropped,
                self._buffered,
            )
        return False

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop:
            try:
                self._reap()
                self._check_health()
                self._encode_some()
                if self._producer is None:
                    self._producer = self._connect()
                if self._producer is None or not self._send_some():
                    self._halt.wait(delay)  # back off; only close() interrupts
                    delay = min(delay * 2, self._backoff[1])
                    continue
                delay = self._backoff[0]
                self._idle(0.005 if self._inflight else 0.1)
            except Exception as exc:  # pragma: no cover - keep the thread alive
                log.exception("emitter thread error: %s", exc)
                self._halt.wait(delay)

    def _idle(self, seconds: float) -> None:
        """Sleep until emit(), flush() or close() has work for us (or ``seconds`` pass)."""
        with self._lock:
            if (self._models and self._bytes < self._max_bytes) or self._stop:
                return  # more to encode (when the byte budget is spent, wait for acks)
            self._sleeping = True
        self._wake.wait(seconds)
        self._wake.clear()
        with self._lock:
            self._sleeping = False

    def _encode_some(self, chunk: int = 256) -> None:
        """Move accepted models to the encoded buffer while the byte bound allows."""
        models, pending, topics = self._models, self._pending, self._topics
        while models and self._bytes < self._max_bytes:
            size = unencodable = 0
            budget = self._max_bytes - self._bytes
            for _ in range(min(chunk, len(models))):
                if size >= budget:
                    break
                event = models.popleft()
                try:
                    value = encode(event)
                except Exception as exc:
                    log.error("event not encodable, dropped: %s", exc)
                    unencodable += 1
                    continue
                key = event.query_id if type(event) is Feedback else _key(event)
                pending.append((topics[type(event)], key.encode(), value))
                size += len(value)
            with self._lock:
                self._bytes += size
                if unencodable:
                    self._buffered -= unencodable
                    self._dropped += unencodable
                    self._reasons["unencodable"] += unencodable

    def _send_some(self) -> bool:
        """Hand encoded events to the producer; ``False`` if the producer refused one."""
        pending, inflight, send = self._pending, self._inflight, self._producer.send
        while pending:
            record = pending.popleft()
            try:
                future = send(record[0], record[2], key=record[1])
            except Exception as exc:
                pending.appendleft(record)
                self._count(0, 0, [], exc)
                return False
            if not inflight:
                self._last_progress = time.monotonic()
            inflight.append((future, record))
            if len(inflight) & 1023 == 0:
                self._reap()
            if not pending:
                self._encode_some()
        return True

    def _reap(self) -> None:
        """Account for the completed deliveries at the head of the in-flight queue.

        Polling the futures (instead of one callback per record) keeps the per-event cost
        low; a failed event goes back to the front of the buffer to be retried.
        """
        inflight = self._inflight
        sent = size = 0
        failed: list[_Record] = []
        exc: BaseException | None = None
        while inflight and inflight[0][0].is_done:
            future, record = inflight.popleft()
            if future.exception is None:
                sent += 1
                size += len(record[2])
            else:
                failed.append(record)
                exc = future.exception
        if failed:
            self._pending.extendleft(reversed(failed))
        if sent or failed:
            self._count(sent, size, failed, exc)

    def _count(
        self, sent: int, size: int, failed: list[_Record], exc: BaseException | None
    ) -> None:
        with self._lock:
            if self._finished:
                return
            self._sent += sent
            self._buffered -= sent
            self._bytes -= size
            if sent:
                self._failing_since = None
                self._last_progress = time.monotonic()
            if exc is not None:
                self._failed += max(1, len(failed))
                self._last_exc = exc
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
            if not self._buffered:
                self._drained.notify_all()

    def _check_health(self) -> None:
        """Log a failure lasting ``error_after_s`` at ERROR, once per ``error_interval_s``.

        Failing means failed attempts with no delivery since, or events in flight with no
        acknowledgement for that long (the producer retries silently until its delivery
        timeout).
        """
        now = time.monotonic()
        since, cause = self._failing_since, self._last_exc
        if since is None and self._inflight and now - self._last_progress >= self._error_after:
            since, cause = self._last_progress, "no acknowledgement from the broker"
        if since is None:
            if self._last_error_log != float("-inf"):
                log.info("event delivery recovered")
                self._last_error_log = float("-inf")
            return
        if now - since >= self._error_after and now - self._last_error_log >= self._error_interval:
            self._last_error_log = now
            stats = self.stats()
            hint = (
                refusal(self.settings) or f"is the broker at {self.settings.bootstrap_servers} up?"
            )
            log.error(
                "event delivery failing for %.0f s (%s): %d buffered, %d dropped, "
                "%d failed attempts; %s",
                now - since,
                cause,
                stats.buffered,
                stats.dropped,
                stats.failed,
                hint,
            )

    def _connect(self) -> Any:
        from kafka import KafkaProducer

        try:
            producer = KafkaProducer(**self._producer_config)
        except Exception as exc:
            self._count(0, 0, [], exc)
            return None
        if self._failing_since is not None:
            with self._lock:
                self._failing_since = None
        return producer


def _close_producer(producer: Any, timeout: float) -> None:
    """Close a KafkaProducer even with undeliverable records.

    kafka-python's ``close()`` raises from its internal ``flush()`` when records are
    still pending at the timeout, before it force-closes its network thread (which then
    keeps reconnecting forever): abort the pending batches first in that case.
    """
    try:
        producer.close(timeout=timeout)
        return
    except Exception as exc:
        log.debug("producer close: %s", exc)
    sender = getattr(producer, "_sender", None)
    try:
        if sender is not None:
            sender.force_close()
            sender.join(1.0)
        producer.close(timeout=0)
    except Exception as exc:  # pragma: no cover - closing must not raise
        log.debug("producer force close: %s", exc)


def _hash_cached_partitioner() -> Any:
    """kafka-python's default partitioner (Java-compatible murmur2 of the key) with the
    hash cached per key: units and queries repeat, and the pure-Python murmur2 costs
    about 4 us per event, 10% of the sender's time."""
    from kafka.partitioner.default import DefaultPartitioner, murmur2

    class HashCachedPartitioner(DefaultPartitioner):
        def __init__(self, limit: int = 100_000) -> None:
            self._hashes: dict[bytes, int] = {}
            self._limit = limit

        def partition(self, topic, key, serialized_key, value, serialized_value, cluster):  # type: ignore[no-untyped-def]
            if serialized_key is None:
                return super().partition(topic, key, None, value, serialized_value, cluster)
            idx = self._hashes.get(serialized_key)
            if idx is None:
                if len(self._hashes) >= self._limit:
                    self._hashes.clear()
                idx = self._hashes[serialized_key] = murmur2(serialized_key) & 0x7FFFFFFF
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                raise ValueError(f"Topic {topic} not found in ClusterMetadata")
            return sorted(partitions)[idx % len(partitions)]

    return HashCachedPartitioner()


def _check_config(config: dict[str, Any]) -> None:
    """Refuse a misspelt option or a missing codec now, not as an endless retry later."""
    from kafka import KafkaProducer, codec

    unknown = sorted(set(config) - set(KafkaProducer.DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"unknown KafkaProducer options: {', '.join(unknown)}")
    compression = config["compression_type"]
    if compression is not None and not getattr(codec, f"has_{compression}")():
        package = _CODEC_PACKAGES[compression]
        raise ValueError(f"{compression} compression needs the {package} package")


def _key(event: Result | RolloutEvent) -> str:
    return event.unit_id if type(event) is Result else event.rollout
