"""Logs the dashboard follows: the rollout log (weight, phase, history) and the alerts.

A :class:`TopicFollower` reads one topic from its beginning in a daemon thread, with a
group-less consumer (nothing committed, nothing to rebalance), and hands every decoded
message to a callback; an unreadable one is skipped with a warning. While the broker
cannot be reached it retries and keeps ``error`` set for the page to show.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from rollout.state import RolloutState
from schemas.codec import DecodeError, decode
from schemas.events import Alert, RolloutEvent
from schemas.settings import Settings

log = logging.getLogger(__name__)


class TopicFollower:
    """Follow ``topic`` from its start; call ``on_message(model)`` for each message."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        model: type[BaseModel],
        on_message: Callable[[Any], None],
        *,
        retry_s: float = 2.0,
    ) -> None:
        self.settings, self.topic, self.model = settings, topic, model
        self.on_message = on_message
        self.retry_s = retry_s
        self.error: str | None = None
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"follow-{topic}", daemon=True)

    def start(self) -> TopicFollower:
        self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        positions: dict[int, int] = {}
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._consumer(positions)
                self.error = None
                while not self._stop.is_set():
                    batches = consumer.poll(timeout_ms=200)
                    for tp, records in batches.items():
                        for record in records:
                            positions[tp.partition] = record.offset + 1
                            self._handle(record.offset, record.value)
                    if not batches:
                        self.caught_up.set()
            except Exception as exc:
                if self.error is None:
                    log.warning("cannot read %s: %s (retrying)", self.topic, exc)
                self.error = f"cannot read {self.topic} at {self.settings.bootstrap_servers}: {exc}"
                self._stop.wait(self.retry_s)
            finally:
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()

    def _handle(self, offset: int, value: bytes) -> None:
        try:
            model = decode(value, self.model)
        except DecodeError as exc:
            log.warning("skipping unreadable message %s@%d: %s", self.topic, offset, exc)
            return
        self.on_message(model)

    def _consumer(self, positions: dict[int, int]) -> Any:
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
            client_id="phasegate-dashboard",
            **self.settings.kafka_options(),
        )
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            consumer.close()
            raise RuntimeError(f"topic {self.topic} does not exist (phasegate topics create)")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            if tp.partition in positions:
                consumer.seek(tp, positions[tp.partition])
            else:
                consumer.seek_to_beginning(tp)
        return consumer


class RolloutLog:
    """The state of every rollout in the rollout log (the fold of ``rollout.state``)."""

    def __init__(self, settings: Settings) -> None:
        self._states: dict[str, RolloutState] = {}
        self._lock = threading.Lock()
        self.follower = TopicFollower(settings, settings.topics.rollout, RolloutEvent, self.apply)

    def apply(self, event: RolloutEvent) -> None:
        with self._lock:
            state = self._states.get(event.rollout) or RolloutState(rollout=event.rollout)
            self._states[event.rollout] = state.apply(event)

    def state(self, rollout: str) -> RolloutState:
        with self._lock:
            return self._states.get(rollout) or RolloutState(rollout=rollout)

    def rollouts(self) -> list[str]:
        with self._lock:
            return sorted(self._states)


class AlertLog:
    """The most recent alerts (``keep`` of them) and a count per (rollout, kind)."""

    def __init__(self, settings: Settings, keep: int = 50) -> None:
        self._recent: collections.deque[Alert] = collections.deque(maxlen=keep)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._ids: set[Any] = set()
        self._lock = threading.Lock()
        self.follower = TopicFollower(settings, settings.topics.alerts, Alert, self.apply)

    def apply(self, alert: Alert) -> None:
        with self._lock:
            if alert.alert_id in self._ids:  # delivered again, or raised again by a replay
                return
            self._ids.add(alert.alert_id)
            self._recent.append(alert)
            self.counts[(alert.rollout, alert.kind)] += 1

    def recent(self, rollout: str) -> list[Alert]:
        """This rollout's recent alerts, newest first."""
        with self._lock:
            return [a for a in reversed(self._recent) if a.rollout == rollout]
