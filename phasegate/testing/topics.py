"""Read a topic back from its start; a private broker a test may stop and restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from phasegate.stack import ManagedProcess, free_port
from phasegate.stack.broker import broker_process
from schemas.settings import Settings


def _from_start(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return partitions


def read_values(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[bytes]:
    """Every value of ``topic`` from the beginning, once ``expect`` are there (or timeout)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=100)
    try:
        _from_start(consumer, topic)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(values) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(r.value for r in records)
        return values
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str, timeout_s: float = 60.0) -> list[Any]:
    """Every record of ``topic`` from its start: read until past the end offsets the broker
    reports (a lower bound on Tansu) and two more polls bring nothing."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        partitions = _from_start(consumer, topic)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        quiet, deadline = 0, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=1000)
            for rows in batch.values():
                records.extend(rows)
            quiet = 0 if batch else quiet + 1
            if quiet >= 2 and all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
        return records
    finally:
        consumer.close()


def private_broker(state_dir: Path, prefix: str) -> Iterator[tuple[ManagedProcess, Settings]]:
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
