"""Stage 1's consumer: whole fetched batches of results and feedback (aiokafka ``getmany``).

Faust's per-event stream path costs about 100 us of CPU an event; a batch costs that
once. :class:`BatchConsumer` is a member of the worker's consumer group on the results
and feedback topics: it hands each partition's fetched batch to
:meth:`~streams.protocol.Aggregation.add_batch`, commits exactly the offsets a flush
gives it (once their partials are on the broker), and before a rebalance lets the
protocol hand over and forget the revoked partitions (their next owner replays from the
commit). It runs as a task of the Faust app, which starts and stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from rollout.async_follower import close_client
from streams.protocol import Aggregation
from streams.stage1 import Source

log = logging.getLogger("phasegate.streams")
BATCH = 2000  # records per fetch: a few milliseconds of the loop's time
RETRY_S = 2.0  # the wait before a failed consumer's successor joins


class BatchConsumer(ConsumerRebalanceListener):
    """Read ``topics`` in ``group`` by batches into an aggregation until cancelled.

    ``options``: the rest of the consumer's settings (servers, security, timeouts).
    """

    def __init__(self, topics: Sequence[str], group: str, **options: Any) -> None:
        self.topics = tuple(topics)
        self.aggregation: Aggregation | None = None  # what run() feeds
        self.options = {
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": BATCH,
            **options,
        }
        self.consumer: AIOKafkaConsumer | None = None  # made in the app's event loop

    async def run(self, aggregation: Aggregation) -> None:
        """Feed ``aggregation`` until cancelled; the consumer leaves the group on the way out.

        If the consumer fails, a new one joins after ``RETRY_S``; what the old one read is
        handed over first (sent, not committed: it is read again from the commit)."""
        self.aggregation = aggregation
        while True:
            self.consumer = consumer = AIOKafkaConsumer(**self.options)
            try:
                await consumer.start()
                consumer.subscribe(self.topics, listener=self)
                await self._consume(consumer, aggregation)
            except Exception as exc:
                log.warning("stage 1 cannot read %s (%s); retrying", self.topics, exc)
            finally:
                await close_client(consumer)
            await aggregation.revoke(set(aggregation.stage1.accumulators))
            await asyncio.sleep(RETRY_S)

    @staticmethod
    async def _consume(consumer: AIOKafkaConsumer, aggregation: Aggregation) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            assigned = consumer.assignment()
            for tp, records in batches.items():
                if tp in assigned:  # not revoked since the fetch
                    await aggregation.add_batch(records)
            await asyncio.sleep(0)  # buffered batches come back at once: let others run

    def assignment(self) -> set[TopicPartition]:
        return self.consumer.assignment() if self.consumer else set()

    async def commit(self, offsets: Mapping[Source, int]) -> Collection[Source]:
        """Commit ``offsets`` of the partitions still assigned; return their sources. A
        failed commit is logged and returns none (the next flush commits further)."""
        assigned = self.assignment()
        owned = {
            source: offset
            for source, offset in offsets.items()
            if TopicPartition(*source) in assigned
        }
        if not owned or self.consumer is None:
            return ()
        try:
            await self.consumer.commit({TopicPartition(*s): o for s, o in owned.items()})
        except KafkaError as exc:
            log.warning("could not commit %s: %s", sorted(owned), exc)
            return ()
        return owned.keys()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.aggregation is not None:
            await self.aggregation.revoke({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do: each partition's first batch starts its accumulator."""
