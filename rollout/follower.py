"""Following a log topic from a thread (kafka-python): the Router, the CLI, the dashboard.

A :class:`Follower` reads the topic from its beginning in a daemon thread with a
group-less consumer (nothing committed, nothing to rebalance) and hands every decoded
message to a callback (:class:`rollout.reading.Reading`). ``caught_up`` is set once it
has read to the end offsets it saw at start. While the broker cannot be reached it
retries every ``retry_s`` and keeps ``error`` set; nothing raises into the caller.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from rollout.reading import Reading
from schemas.settings import Settings

MAX_RECORDS = 10_000
"""Records per poll; a poll that hands over fewer has left nothing buffered."""


class Follower:
    """Follow ``topic`` from its start; ``on_message(model)`` for each message, in order."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        model: type[BaseModel],
        on_message: Callable[[Any], None],
        *,
        name: str = "phasegate-follower",
        retry_s: float = 2.0,
    ) -> None:
        self.settings, self.name, self.retry_s = settings, name, retry_s
        self.reading = Reading(topic, model, on_message)
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def error(self) -> str | None:
        """Why the topic cannot be read now (None while it can)."""
        return self.reading.error

    def start(self) -> Follower:
        self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Follower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._connect()
                while not self._stop.is_set():
                    batches = consumer.poll(timeout_ms=200, max_records=MAX_RECORDS)
                    drained = sum(map(len, batches.values())) < MAX_RECORDS
                    if self.reading.read(batches, drained):
                        self.caught_up.set()
            except Exception as exc:
                self.reading.failed(exc, self.settings.bootstrap_servers)
                self._stop.wait(self.retry_s)
            finally:
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()

    def _connect(self) -> Any:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=[s.strip() for s in self.settings.bootstrap_servers.split(",")],
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            request_timeout_ms=5000,
            bootstrap_timeout_ms=2000,
            reconnect_backoff_max_ms=1000,
            max_poll_records=MAX_RECORDS,
            client_id=self.name,
            **self.settings.kafka_options(),
        )
        try:
            topic = self.reading.topic
            tps = [
                TopicPartition(topic, p)
                for p in self.reading.partitions(consumer.partitions_for_topic(topic))
            ]
            consumer.assign(tps)
            first = {tp.partition: o for tp, o in consumer.beginning_offsets(tps).items()}
            end = {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
            for partition, offset in self.reading.start(first, end).items():
                consumer.seek(TopicPartition(topic, partition), offset)
        except Exception:
            consumer.close()
            raise
        if self.reading.caught_up:
            self.caught_up.set()
        return consumer
