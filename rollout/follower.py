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
from typing import Any

from rollout.reading import FollowerBase

POLL_MS = 50
"""The longest wait for new messages: what :meth:`Follower.close` may have to wait."""


class Follower(FollowerBase):
    """Follow ``topic`` from its start; ``on_message(model)`` for each message, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

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
                    batches = consumer.poll(timeout_ms=POLL_MS, max_records=self.reading.limit)
                    if self.reading.read(batches):
                        self.caught_up.set()
            except Exception as exc:
                self.failed(exc)
                self._stop.wait(self.retry_s)
            finally:
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()

    def _connect(self) -> Any:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            **self.consumer_options(),
            bootstrap_timeout_ms=int(self.settings.bootstrap_timeout_s * 1000),
            reconnect_backoff_max_ms=1000,
            **self.settings.kafka_options(),
        )
        try:
            topic = self.reading.topic
            found = consumer.partitions_for_topic(topic)
            tps = [TopicPartition(topic, p) for p in self.reading.partitions(found)]
            consumer.assign(tps)
            start = self.reading.start(consumer.beginning_offsets(tps), consumer.end_offsets(tps))
            for tp, offset in start.items():
                consumer.seek(tp, offset)
        except Exception:
            consumer.close()
            raise
        if self.reading.caught_up:
            self.caught_up.set()
        return consumer
