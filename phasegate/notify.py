"""Webhook notifications: alerts as they are, phase changes as the plan's announcements.

:class:`Webhook` POSTs one JSON body with a timeout and retries with exponential backoff;
failures are counted and logged, never raised. An alert goes as the contract has it, plus
a ``text`` line naming its top contributors (:func:`alert_message`). :func:`announcement`
turns a rollout event into the communication plan's text (the phase's ``announcement``, or
the plan's ``rollback_announcement`` for a rollback to 0). :func:`run` is ``phasegate
notify``: a consumer group on the alerts and rollout topics, committing after each batch
is handled, in its own process, so a slow or dead receiver never holds up the stream
worker. While the broker cannot be reached it tries again (:func:`connect`), and a stop
is honoured within :data:`CONNECT_MS`.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from pydantic import BaseModel

from schemas.alert_text import headline
from schemas.backoff import Backoff
from schemas.codec import DecodeError, decode
from schemas.events import Alert, RolloutEvent
from schemas.plan import Plan
from schemas.settings import Settings

log = logging.getLogger("phasegate.notify")
CONNECT_MS = 2000
"""The longest one connection attempt waits for the broker (and so holds up a stop)."""


def announcement(plan: Plan, event: RolloutEvent) -> dict[str, Any] | None:
    """The notification of a phase change, with the plan's texts; None if it has none."""
    if event.type == "rollback" and event.weight in (0, None):
        texts, what = plan.rollback_announcement, "rollback"
    elif event.type == "phase_started" and event.phase is not None:
        phase = plan.phase(event.phase)
        texts, what = (phase.announcement if phase else {}), "phase_started"
    else:
        return None
    if not texts:
        return None
    return {
        "schema": "phasegate.announcement/1",
        "kind": what,
        "rollout": event.rollout,
        "phase": event.phase,
        "weight": 0 if event.weight is None else event.weight,
        "actor": event.actor,
        "reason": event.reason,
        "ts": event.ts.isoformat(),
        "text": texts,
    }


def alert_message(alert: Alert) -> dict[str, Any]:
    """The alert as the contract has it, plus ``text``: one line with its top contributors,
    which chat webhooks (Slack, Mattermost) show as the message."""
    return alert.model_dump(mode="json", by_alias=True) | {"text": headline(alert)}


def body_of(message: BaseModel | dict[str, Any]) -> bytes:
    if isinstance(message, BaseModel):
        return message.model_dump_json(by_alias=True).encode()
    return json.dumps(message, ensure_ascii=False).encode()


def shown(url: str) -> str:
    """``url`` fit for a log: scheme, host and port only (a webhook's path or query often
    is its secret, as in Slack's)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    hidden = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def http_post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


@dataclass
class Webhook:
    """POST with timeout and retries; ``sent``/``failed``/``retries`` count what happened."""

    url: str
    timeout_s: float = 5.0
    attempts: int = 4
    backoff_s: float = 0.5
    post: Callable[[str, bytes, float], int] = http_post
    sleep: Callable[[float], None] = time.sleep
    sent: int = 0
    failed: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def deliver(self, message: BaseModel | dict[str, Any]) -> bool:
        """Send one notification; False (logged and counted) if every attempt failed."""
        body = body_of(message)
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                with self._lock:
                    self.retries += 1
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                status = self.post(self.url, body, self.timeout_s)
            except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts
                error = str(getattr(exc, "reason", exc))
                continue
            if 200 <= status < 300:
                with self._lock:
                    self.sent += 1
                return True
            error = f"HTTP {status}"
        with self._lock:
            self.failed += 1
        log.error("webhook %s failed after %d attempts: %s", shown(self.url), self.attempts, error)
        return False


@dataclass
class Notifier:
    """Turns decoded messages into webhook deliveries (alerts and announcements)."""

    webhook: Webhook
    plan: Plan
    rollout: str | None = None  # only this rollout, or all
    # ids already delivered: a worker's replay raises the same alert again
    recent: collections.OrderedDict[Any, None] = field(default_factory=collections.OrderedDict)
    keep: int = 10_000

    def handle(self, message: BaseModel) -> bool | None:
        """Deliver what ``message`` calls for; None if it calls for nothing (or did)."""
        if self.rollout and getattr(message, "rollout", None) != self.rollout:
            return None
        if isinstance(message, Alert):
            if message.alert_id in self.recent:
                return None
            self.recent[message.alert_id] = None
            if len(self.recent) > self.keep:
                self.recent.popitem(last=False)
            return self.webhook.deliver(alert_message(message))
        if isinstance(message, RolloutEvent):
            note = announcement(self.plan, message)
            return None if note is None else self.webhook.deliver(note)
        return None


class _Consumer(KafkaConsumer):
    """A KafkaConsumer that stops its I/O thread when it cannot connect (kafka-python 3
    leaves it running when the constructor raises)."""

    def __init__(self, *topics: str, **config: Any) -> None:
        try:
            super().__init__(*topics, **config)
        except BaseException:
            if (client := getattr(self, "_client", None)) is not None:
                client.close()
            raise


def connect(
    settings: Settings, topics: list[str], group: str, stop: threading.Event
) -> KafkaConsumer | None:
    """A consumer of ``topics`` in ``group`` once the broker answers; None if ``stop``
    comes first. Each attempt waits :data:`CONNECT_MS` at most, then doubling pauses."""
    backoff = Backoff(first=0.5, most=5.0)
    while not stop.is_set():
        try:
            return _Consumer(
                *topics,
                bootstrap_servers=[s.strip() for s in settings.bootstrap_servers.split(",")],
                bootstrap_timeout_ms=CONNECT_MS,
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=6000,
                heartbeat_interval_ms=1000,
                client_id="phasegate-notify",
                **settings.kafka_options(),
            )
        except KafkaError as exc:
            delay = backoff.failed()
            log.warning("broker unreachable (%s); trying again in %.1f s", exc, delay)
            stop.wait(delay)
    return None


def run(
    settings: Settings, notifier: Notifier, stop: threading.Event, group: str = "notify"
) -> None:
    """Consume alerts and rollout events (group ``<prefix><group>``) until ``stop``.

    One group per webhook: two notifiers sharing a group split the messages between them.
    """
    topics = settings.topics
    models = {topics.alerts: Alert, topics.rollout: RolloutEvent}
    consumer = connect(settings, list(models), f"{topics.prefix}{group}", stop)
    if consumer is None:
        return
    try:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    try:
                        message = decode(record.value, models[tp.topic])
                    except DecodeError as exc:
                        log.warning("skipping unreadable %s@%d: %s", tp.topic, record.offset, exc)
                        continue
                    notifier.handle(message)
            if batches:
                consumer.commit()
    finally:
        consumer.close()
