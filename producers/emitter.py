"""The Emitter: send result and feedback events to Kafka without ever hurting the caller.

``emit()`` only appends the (already validated) model to a bounded buffer and returns,
taking no lock; a background thread takes the models in chunks, encodes each
(:func:`schemas.fastcodec.fast_encode`) and hands it straight to a Kafka client:
confluent-kafka when installed, else kafka-python (``emit_client``;
:mod:`producers.clients`). Nothing on the caller's path does I/O, blocks or raises.

Buffer and drop policy
    The buffer is bounded by ``max_events`` (events accepted and not yet acknowledged)
    and by ``max_bytes`` (encoded bytes in flight or waiting to be sent again; the sender
    encodes as it hands over, or at once while it has no client, so only the events not
    yet encoded are outside this count: a few, or those of the last 2 s while it waits
    on a connection attempt).
    When either bound is reached, ``emit()`` drops the *new* event, counts it and
    returns ``False``: events already accepted are kept, so a broker outage loses the
    newest traffic, never a gap in the middle.

Counters (:class:`EmitterStats`), exact at any instant::

    queued == sent + dropped + buffered

``queued`` counts every event passed to ``emit()``; ``sent`` those the broker
acknowledged (acks=all: the records the client no longer holds and did not report as
failed, counted after each chunk and at every poll); ``dropped`` those that will never
be sent (buffer full, emitter closed, not encodable, or still buffered when ``close()``
gave up); ``buffered`` those accepted and not yet acknowledged. ``failed`` counts failed
delivery *attempts* (informational: a failed event goes back to the buffer and is
retried until it is sent or ``close()`` gives up, so it is never lost silently; a
refused send or a failed connection attempt counts one too). Delivery is at least once:
a retried event may arrive twice; consumers de-duplicate by ``event_id``.

Broker down
    At start (kafka-python's producer cannot bootstrap) the thread retries creating it
    with exponential backoff while ``emit()`` keeps buffering (librdkafka's starts at
    once and connects on its own). Later, the client retries in-flight events itself
    until ``delivery_timeout_s``; then they come back to the buffer and are sent again.
    A failure (or no acknowledgement) lasting longer than ``error_after_s`` is logged at
    ERROR once per ``error_interval_s``; recovery at INFO.

Tuning (defaults measured against the local Tansu broker: see bench/bench_emit.py)
    Compression is the ``emit_compression`` setting: none, gzip, lz4, zstd or snappy
    (neither client sets a level here: gzip runs at 9 in kafka-python, 6 in librdkafka;
    zstd at 3). The default lz4 sends a third of the bytes of none (126 an event, 399)
    for the same CPU; zstd and gzip send less for more CPU.
    ``linger_ms=20`` and ``batch_size=256 KiB`` fill large batches at high rates while
    adding at most 20 ms of delivery delay at low rates. Both clients send a key to the
    partition the Java client picks (murmur2). ``acks="all"``; idempotence off (not relied
    on with Tansu, whose producer-id support is partial; consumers de-duplicate by
    ``event_id`` anyway).

``flush()`` makes the client send at once what its linger holds back.

Cost (bench/bench_emit.py, confluent-kafka, lz4, a shared 2-core machine): ``emit()``
0.3 us of the caller's CPU; the sender 2.6-3.9 us an event, encoding included, about
what a loop that encodes and produces each event itself costs; delivered events/s
69-92% of that loop in two runs (95% over all compressions' rounds).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from pydantic import ValidationError

from producers.clients import Client, Record, Tuning, client_class
from schemas.codec import describe
from schemas.events import Feedback, Result, RolloutEvent, Verdict
from schemas.fastcodec import fast_encode
from schemas.kafka_security import refusal
from schemas.settings import Settings

log = logging.getLogger(__name__)

Event = Result | Feedback | RolloutEvent


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
        """``producer_config``: more options for the client in use, by its own names."""
        self.settings = settings or Settings()
        topics = self.settings.topics
        self._routes = {  # event type: its topic, its key (the partition follows the key)
            Result: (topics.results, attrgetter("unit_id")),
            Feedback: (topics.feedback, attrgetter("query_id")),
            RolloutEvent: (topics.rollout, attrgetter("rollout")),
        }
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._backoff = backoff_s
        self._error_after = error_after_s
        self._error_interval = error_interval_s
        tuning = Tuning(client_id, linger_ms, batch_size, delivery_timeout_s, max_events, max_bytes)
        self._client_class = client_class(self.settings)
        self._client_config = self._client_class.config(self.settings, tuning, producer_config)

        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._models: collections.deque[Event] = collections.deque()  # accepted, not encoded
        self._pending: collections.deque[Record] = collections.deque()  # encoded, to (re)send
        self._held = 0  # taken off _models, not yet sent nor dropped
        self._inflight = 0  # handed to the client, not yet delivered nor failed
        self._sent = self._dropped = self._failed = self._bytes = self._flushing = 0
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
        self._client: Client | None = None  # the sender thread's (for a look only)
        self._close_wait = 0.0
        self._thread = threading.Thread(target=self._run, name="phasegate-emitter", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller side
    def emit(self, event: Event) -> bool:
        """Queue one event for delivery; ``False`` if it was dropped. Never raises or blocks.

        No lock when accepted: a deque's ``append`` is atomic, and the sender takes models
        off under the lock after counting them as held, so ``len(models) + held`` read in
        this order never undercounts the buffer."""
        try:
            if (
                self._closed
                or type(event) not in self._routes
                or len(self._models) + self._held >= self._max_events
                or self._bytes >= self._max_bytes
            ):
                return self._refuse(event)
            self._models.append(event)
            if self._sleeping:
                self._wake.set()
            if self._finished:  # close() ended as we appended: nothing will send it
                self._drop_left("closed")
                return False
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
        rules: Sequence[str] = (),
        segment: str | None = None,
    ) -> bool:
        """Build and emit a :class:`Feedback`; invalid arguments are logged, not raised.
        ``rules`` and ``segment``: the judged answer's, if known (its result's), so that a
        complaint alert can name where complaints concentrate."""
        try:
            event = Feedback(
                rollout=rollout,
                query_id=query_id,
                system=system,
                verdict=verdict,
                comment=comment,
                rules=list(rules),
                segment=segment,
            )
        except ValidationError as exc:
            log.warning("feedback not emitted, invalid: %s", describe(exc))
            return False
        return self.emit(event)

    def stats(self) -> EmitterStats:
        with self._lock:
            buffered = len(self._models) + self._held
            return EmitterStats(
                queued=self._sent + self._dropped + buffered,  # each emit() ends as one
                sent=self._sent,
                dropped=self._dropped,
                buffered=buffered,
                failed=self._failed,
                buffered_bytes=self._bytes,
                dropped_by_reason=dict(self._reasons),
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event is acknowledged; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._drained:
            self._flushing += 1  # the sender skips the linger while someone waits
            self._wake.set()
            try:
                while self._models or self._held:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._drained.wait(0.1 if left is None else min(left, 0.1))
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> bool:
        """Stop accepting, deliver what is buffered within ``timeout``, drop the rest
        (closing the client may take up to 2 s more).

        Returns ``True`` if nothing had to be dropped at close.
        """
        with self._lock:
            if self._closed and self._stop:
                return not (self._held or self._models)
            self._closed = True
        start = time.monotonic()
        delivered = self.flush(timeout)
        self._close_wait = 1.0 if delivered else 0.0  # for the client, as the thread ends
        self._stop = True
        self._halt.set()
        self._wake.set()
        self._thread.join(max(0.5, timeout - (time.monotonic() - start)) + 2.0)
        with self._lock:
            self._finished = True
            self._pending.clear()
            self._bytes = 0
        left = self._drop_left("close")
        if left:
            log.error("emitter closed with %d events undelivered (dropped)", left)
        return delivered and not left

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _refuse(self, event: object) -> bool:
        """Count a refused event under its reason; ``False``."""
        with self._lock:
            if self._closed:
                return self._drop_locked("closed")
            if type(event) not in self._routes:
                return self._drop_locked("invalid")
            return self._drop_locked("full")

    def _drop_left(self, reason: str) -> int:
        """Drop everything buffered (close() has ended: nothing will send it); how many."""
        with self._lock:
            left = self._held + len(self._models)
            self._models.clear()
            self._held = 0
            self._dropped += left
            if left:
                self._reasons[reason] += left
            self._drained.notify_all()
            return left

    def _drop_locked(self, reason: str, count: int = 1) -> bool:
        self._dropped += count
        self._reasons[reason] += count
        now = time.monotonic()
        if now - self._last_drop_log >= self._error_interval:
            self._last_drop_log = now
            log.warning(
                "event dropped (%s); %d dropped so far, %d buffered",
                reason,
                self._dropped,
                self._held + len(self._models),
            )
        return False

    def _run(self) -> None:
        """The sender thread: encode, hand over, count; the client is its own, closed at exit."""
        delay = self._backoff[0]
        client: Client | None = None
        while not self._stop:
            try:
                if client is not None:
                    self._reap(client)
                self._check_health()
                if client is None:  # encoded now, the byte bound counts them while we connect
                    while self._hand_over(self._keep)[0]:
                        pass
                    client = self._client = self._connect()
                if client is None or not self._send_some(client):
                    self._halt.wait(delay)  # back off; only close() interrupts
                    delay = min(delay * 2, self._backoff[1])
                    continue
                delay = self._backoff[0]
                if self._flushing and self._inflight and not self._models:
                    client.flush(0.05)  # sends at once what lingers: flush() waits on it
                else:
                    self._idle(0.005 if self._inflight else 0.1)
            except Exception as exc:  # pragma: no cover - keep the thread alive
                log.exception("emitter thread error: %s", exc)
                self._halt.wait(delay)
        if client is not None:
            client.close(self._close_wait)

    def _idle(self, seconds: float) -> None:
        """Sleep until emit(), flush() or close() has work for us (or ``seconds`` pass)."""
        self._sleeping = True  # before looking: emit() appends, then reads it
        if not ((self._models and self._bytes < self._max_bytes) or self._stop):
            self._wake.wait(seconds)  # (when the byte budget is spent, wait for acks)
            self._wake.clear()
        self._sleeping = False

    def _send_some(self, client: Client) -> bool:
        """Hand the records to retry, then the accepted models, to the client, reading its
        deliveries after each chunk; ``False`` if it refused one."""
        pending, produce = self._pending, client.produce
        if not self._inflight:
            self._last_progress = time.monotonic()
        while pending:
            topic, key, value = pending[0]
            try:
                produce(topic, value, key)
            except Exception as exc:
                self._count(error=exc)
                return False
            pending.popleft()
            self._inflight += 1
        while self._models and self._bytes < self._max_bytes:
            handed, refused = self._hand_over(produce)
            self._inflight += handed
            if refused is not None:
                self._count(error=refused)
                return False
            self._reap(client)
        return True

    def _hand_over(
        self, put: Callable[[str, bytes, str], object], chunk: int = 1024
    ) -> tuple[int, Exception | None]:
        """Encode up to ``chunk`` accepted models, within the byte bound, giving each to
        ``put(topic, value, key)``: how many it took, and why it refused one (that record
        then waits in ``_pending``, the models after it back in ``_models``)."""
        models, routes, encode = self._models, self._routes, fast_encode
        budget = self._max_bytes - self._bytes
        with self._lock:
            taken = min(chunk, len(models))
            self._held += taken  # first: emit() reads it second
            batch = [models.popleft() for _ in range(taken)]
        size = done = unencodable = 0
        refused = None
        for event in batch:
            if size >= budget:
                break
            done += 1
            try:
                value = encode(event)
            except Exception as exc:
                log.error("event not encodable, dropped: %s", exc)
                unencodable += 1
                continue
            topic, key = routes[type(event)]
            key = key(event)
            size += len(value)
            try:
                put(topic, value, key)
            except Exception as exc:
                self._keep(topic, value, key)
                refused = exc
                break
        with self._lock:
            models.extendleft(reversed(batch[done:]))  # beyond the budget: back first
            self._held -= len(batch) - done + unencodable
            self._bytes += size
            if unencodable:
                self._drop_locked("unencodable", unencodable)
        return done - unencodable - (refused is not None), refused

    def _keep(self, topic: str, value: bytes, key: str | bytes) -> None:
        """Keep an encoded record to hand over later."""
        self._pending.append((topic, key, value))

    def _reap(self, client: Client) -> None:
        """Count the deliveries: what the client no longer holds, less the failures, which
        go back to the front of the records to hand over."""
        failed = client.poll()
        if failed.records:
            self._pending.extendleft(reversed(failed.records))
            self._inflight -= len(failed.records)
        delivered = max(0, self._inflight - client.held())
        self._inflight -= delivered
        if delivered or failed.error is not None:
            self._count(delivered, failed.error, len(failed.records))

    def _count(
        self, delivered: int = 0, error: BaseException | None = None, failures: int = 0
    ) -> None:
        """Count deliveries and failed attempts. The bytes of the delivered: exact when
        none is left, else pro rata (the clients do not say which were delivered)."""
        with self._lock:
            if self._finished:
                return
            if delivered:
                self._bytes -= self._bytes * delivered // self._held
                self._sent += delivered
                self._held -= delivered
                self._failing_since = None
                self._last_progress = time.monotonic()
            if error is not None:
                self._failed += max(1, failures)
                self._last_exc = error
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
            if not self._held and not self._models:
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

    def _connect(self) -> Client | None:
        try:
            client = self._client_class(self._client_config)
        except Exception as exc:
            self._count(error=exc)
            return None
        if self._failing_since is not None:
            with self._lock:
                self._failing_since = None
        return client
