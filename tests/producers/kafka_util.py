"""Test helpers: read a topic back; a private broker the test may stop and restart."""

from __future__ import annotations

import time
from collections.abc import Iterator

from kafka import KafkaConsumer, TopicPartition

from phasegate.stack import ManagedProcess, free_port
from phasegate.stack.broker import broker_process
from schemas.settings import Settings


def read_values(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[bytes]:
    """Every value of ``topic`` from the beginning, once ``expect`` are there (or timeout)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=100)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(values) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(r.value for r in records)
        return values
    finally:
        consumer.close()


def private_broker(state_dir, prefix: str) -> Iterator[tuple[ManagedProcess, Settings]]:
    """A stopped in-memory broker of this test alone, and Settings pointing at it."""
    settings = Settings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        broker_storage="memory://tansu/",
        state_dir=state_dir,
        topic_prefix=prefix,
    )
    proc = broker_process(settings)
    try:
        yield proc, settings
    finally:
        proc.stop()
