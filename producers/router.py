"""The Router: which system serves a unit, sticky, at the weight the rollout log says.

Routing is a pure function of ``(rollout, unit_id, weight)``: a stable hash puts every
unit in one of 10,000 buckets, and a unit goes to the candidate iff its bucket is below
``weight * 100``. Raising the weight therefore only moves new units to the candidate,
and stepping back (100 -> 75) returns exactly the units that moved last.

The weight is the fold (:mod:`rollout.state`) over the rollout topic, which a
background thread replays from the beginning and then follows (a change takes effect
in well under a second). Until the log has been read, or while it cannot be read, the
Router keeps its last known weight (``default_weight`` at start: 0, all baseline, unless
configured) and says so once in the log. Nothing here raises into the caller.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any

from rollout.state import RolloutState
from schemas.codec import DecodeError, decode
from schemas.events import RolloutEvent
from schemas.settings import Settings

log = logging.getLogger(__name__)

BUCKETS = 10_000


def bucket(rollout: str, unit_id: str) -> int:
    """The unit's fixed bucket in ``0..9999`` for this rollout (blake2b, stable everywhere)."""
    digest = hashlib.blake2b(f"{rollout}\x00{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def to_candidate(rollout: str, unit_id: str, weight: int) -> bool:
    """True iff the unit is served by the candidate at ``weight`` percent."""
    return bucket(rollout, unit_id) < weight * (BUCKETS // 100)


class Router:
    """Sticky weighted routing that follows the rollout log (see the module docstring)."""

    def __init__(
        self,
        settings: Settings | None,
        rollout: str,
        default_weight: int = 0,
        *,
        candidate: str = "production",
        baseline: str = "pipeline",
        follow: bool = True,
        retry_s: float = 2.0,
    ) -> None:
        self.settings = settings or Settings()
        self.rollout = rollout
        self.candidate = candidate
        self.baseline = baseline
        self._state = RolloutState(rollout=rollout, weight=default_weight)
        self._retry_s = retry_s
        self._ready = threading.Event()
        self._end: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if follow:
            self._thread = threading.Thread(
                target=self._follow, name=f"phasegate-router-{rollout}", daemon=True
            )
            self._thread.start()

    @property
    def state(self) -> RolloutState:
        return self._state

    @property
    def weight(self) -> int:
        return self._state.weight

    def choose(self, unit_id: str) -> str:
        """The name of the system that serves ``unit_id`` now. Never raises."""
        try:
            if to_candidate(self.rollout, str(unit_id), self._state.weight):
                return self.candidate
        except Exception:  # pragma: no cover - routing must never break the app
            log.exception("routing failed for unit %r; serving the baseline", unit_id)
        return self.baseline

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the rollout log has been replayed once; ``False`` on timeout."""
        return self._ready.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ follower thread
    def _follow(self) -> None:
        positions: dict[int, int] = {}  # partition -> next offset; absent: from the beginning
        warned = False
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._consumer(positions)
                if warned:
                    log.info("reading the rollout log of %r again", self.rollout)
                    warned = False
                while not self._stop.is_set():
                    self._poll(consumer, positions)
            except Exception as exc:
                if not warned:
                    warned = True
                    log.warning(
                        "cannot read the rollout log %s at %s (%s); routing %r at weight %d "
                        "until it can be read",
                        self.settings.topics.rollout,
                        self.settings.bootstrap_servers,
                        exc,
                        self.rollout,
                        self._state.weight,
                    )
                self._stop.wait(self._retry_s)
            finally:
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()

    def _consumer(self, positions: dict[int, int]) -> Any:
        """A group-less consumer on every partition of the rollout topic.

        The topic has one partition; should it have more, events of one rollout still
        share a partition (they are keyed by rollout), so their order holds.
        """
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=[s.strip() for s in self.settings.bootstrap_servers.split(",")],
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            request_timeout_ms=5000,
            bootstrap_timeout_ms=2000,
            reconnect_backoff_max_ms=1000,
            client_id=f"phasegate-router-{self.rollout}",
            **self.settings.kafka_options(),
        )
        topic = self.settings.topics.rollout
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            consumer.close()
            raise RuntimeError(f"topic {topic} does not exist (create the topics first)")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            if tp.partition in positions:
                consumer.seek(tp, positions[tp.partition])
            else:
                consumer.seek_to_beginning(tp)
        if not self._ready.is_set():
            # Tansu reports the first offset of the last batch + 1 as the end: reaching it
            # means the last batch (read whole) has been read.
            self._end = {tp.partition: end for tp, end in consumer.end_offsets(tps).items()}
        return consumer

    def _poll(self, consumer: Any, positions: dict[int, int]) -> None:
        batches = consumer.poll(timeout_ms=200)
        state = self._state
        for tp, records in batches.items():
            for record in records:
                positions[tp.partition] = record.offset + 1
                try:
                    state = state.apply(decode(record.value, RolloutEvent))
                except DecodeError as exc:
                    log.warning("skipping unreadable rollout event at %d: %s", record.offset, exc)
        if state is not self._state:
            if state.weight != self._state.weight:
                log.info(
                    "rollout %r: candidate weight %d -> %d",
                    self.rollout,
                    self._state.weight,
                    state.weight,
                )
            self._state = state
        if not self._ready.is_set() and all(
            positions.get(p, 0) >= end for p, end in self._end.items()
        ):
            self._ready.set()
