"""Following a log topic from asyncio (aiokafka, Faust's own client): the stream worker.

:class:`AsyncFollower` is :class:`rollout.follower.Follower` for an event loop: the same
:class:`rollout.reading.Reading` (positions, the end offsets seen at start, the
caught-up rule, decoding), every call to the broker awaited, and the loop given back
between reads, so it never waits on Kafka. :meth:`AsyncFollower.run` follows until it is
cancelled and closes its consumer on the way out; while the broker cannot be reached it
retries and keeps ``error`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from rollout.reading import FollowerBase

CLOSE_S = 5.0  # the longest wait for the consumer to close


async def close_client(
    client: AIOKafkaConsumer | AIOKafkaProducer, within: float = CLOSE_S
) -> None:
    """Stop an aiokafka ``client`` within ``within`` seconds, its errors ignored but never a
    cancel (3.11's ``asyncio.wait_for`` drops a cancel that arrives as the close ends: a
    worker stopping would go on retrying)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(within):
            await client.stop()


class AsyncFollower(FollowerBase):
    """Follow ``topic`` from its start; ``on_message(model)`` for each message, in order.

    ``client_options``: the consumer's security options (``security_protocol``,
    ``ssl_context``, ``sasl_*``), as aiokafka takes them.
    """

    limit = 100  # records per read: a few milliseconds of the loop's time

    def __init__(
        self, *args: Any, client_options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.client_options = dict(client_options or {})
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Follow the topic until cancelled."""
        while True:
            consumer = self._consumer()
            try:
                await self._connect(consumer)
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=self.reading.limit)
                    if self.reading.read(batches):
                        self.caught_up.set()
                    await asyncio.sleep(0)  # buffered records come back at once: let others run
            except Exception as exc:
                self.failed(exc)
            finally:
                await close_client(consumer)
            await asyncio.sleep(self.retry_s)

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **self.consumer_options(), retry_backoff_ms=1000, **self.client_options
        )

    async def _connect(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.start()
        topic = self.reading.topic
        await consumer.topics()  # the cluster's metadata, read now
        found = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in self.reading.partitions(found)]
        consumer.assign(tps)
        first, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        for tp, offset in self.reading.start(first, end).items():
            consumer.seek(tp, offset)
        if self.reading.caught_up:
            self.caught_up.set()
