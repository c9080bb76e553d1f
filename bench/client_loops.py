"""Bare client loops over one topic: the ceilings a consumer of that topic is measured
against. Each reads ``n`` records from the start in a fresh consumer group and does no
work with them; it returns the events/s and the CPU microseconds an event, both from the
first batch to the last (this process's CPU: run nothing else meanwhile), so ``n`` must
span many fetches of ``FETCH`` records; and how busy the machine's cores were meanwhile
(every process: the broker's share shows there).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer

FETCH = 5000  # records a poll at most, in every loop
Measured = tuple[float, float, float]
"""Events/s, CPU us an event, the share of the machine's cores busy."""


def machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every core since boot (Linux ``/proc/stat``); the
    ticks a hypervisor took (steal) are not busy: this machine did no work in them."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks[:3]) + ticks[5] + ticks[6], sum(ticks)  # user nice system, irq softirq


@dataclass
class Span:
    """Counts and clocks from the first record to the last."""

    first: tuple[float, ...] | None = None  # wall, CPU seconds, machine ticks (busy, all)
    last: tuple[float, ...] = (0.0, 0.0, 0, 0)
    seen: int = 0

    def add(self, records: int) -> None:
        now = (time.perf_counter(), time.process_time(), *machine_ticks())
        if self.first is None:
            self.first = now
        self.seen += records
        self.last = now

    def rate(self, first_batch: int) -> Measured:
        """(events/s, CPU us an event, the share of the machine's cores busy) over all
        but the first batch (its wait is the group's join, not the client's speed)."""
        assert self.first is not None
        counted = max(self.seen - first_batch, 1)
        wall, cpu, busy, ticks = (b - a for a, b in zip(self.first, self.last, strict=True))
        return counted / max(wall, 1e-9), cpu / counted * 1e6, busy / max(ticks, 1)


def _group() -> str:
    return f"bare-{uuid.uuid4().hex[:8]}"


def _options(bootstrap: str) -> dict[str, object]:
    """What kafka-python's and aiokafka's consumers take alike: a fresh group, from the
    start, nothing committed."""
    return {
        "bootstrap_servers": bootstrap,
        "group_id": _group(),
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "max_poll_records": FETCH,
    }


def kafka_python(bootstrap: str, topic: str, n: int) -> Measured:
    consumer = KafkaConsumer(topic, **_options(bootstrap))
    span, first = Span(), 0
    while span.seen < n:
        for records in consumer.poll(timeout_ms=200).values():
            first = first or len(records)
            span.add(len(records))
    consumer.close()
    return span.rate(first)


def aiokafka(bootstrap: str, topic: str, n: int) -> Measured:
    from aiokafka import AIOKafkaConsumer

    async def go() -> Measured:
        consumer = AIOKafkaConsumer(topic, **_options(bootstrap))
        await consumer.start()
        span, first = Span(), 0
        try:
            while span.seen < n:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    first = first or len(records)
                    span.add(len(records))
        finally:
            await consumer.stop()
        return span.rate(first)

    return asyncio.run(go())


def confluent(bootstrap: str, topic: str, n: int) -> Measured:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": _group(),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    span, first = Span(), 0
    while span.seen < n:
        records = consumer.consume(FETCH, timeout=0.2)
        if records:
            first = first or len(records)
            span.add(len(records))
    consumer.close()
    return span.rate(first)


def loops() -> dict[str, Callable[[str, str, int], Measured]]:
    """The bare loops, by name."""
    return {
        "confluent-kafka consume": confluent,
        "aiokafka getmany": aiokafka,
        "kafka-python poll": kafka_python,
    }
