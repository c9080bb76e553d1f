"""Faust's aiokafka transport, with a stop that takes seconds while the broker is down.

Two waits of Faust's stop have no bound of their own while the broker is away:

- aiokafka (0.14) raises ``CancelledError`` from a consumer's ``stop()`` while a fetch
  waits to retry (aio-libs/aiokafka#983 names the place). In Faust's consumer thread
  that ends the thread without telling its parent, which then waits its full shutdown
  timeout (60 s). Faust's own consumer only reads the partials and never commits.
- the producer's flush and stop wait until the broker takes every pending message
  (Faust's request timeout: 20 minutes).

Together they wait :data:`STOP_S` at most here (:class:`Budget`). Nothing is lost by
giving up: stage 1 commits only what the broker has, so the next worker reads again what
was pending and sends its partials anew; stage 2's alerts and rollbacks are derived
again, with the same ids, by the replay of the partials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from faust.transport.drivers import aiokafka

log = logging.getLogger("phasegate.streams")
STOP_S = 3.0
"""The longest the waits above take together."""


@dataclass
class Budget:
    """The stop's seconds: :data:`STOP_S` from the first wait on, shared by the rest."""

    ends: float | None = None

    def left(self) -> float:
        now = time.monotonic()
        if self.ends is None:
            self.ends = now + STOP_S
        return max(0.0, self.ends - now)

    async def bounded(self, step: Awaitable[None], what: str) -> None:
        try:
            await asyncio.wait_for(step, self.left())
        except TimeoutError:
            log.warning("could not %s within the stop's %g s; the broker is away", what, STOP_S)


class ConsumerThread(aiokafka.AIOKafkaConsumerThread):
    @property
    def shutdown_timeout(self) -> float:  # type: ignore[override]
        return self.transport.budget.left()


class Consumer(aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Producer(aiokafka.Producer):
    async def flush(self) -> None:
        if not self.app.should_stop:  # a rebalance's flush: not bounded
            return await super().flush()
        await self.transport.budget.bounded(super().flush(), "flush the producer")

    async def on_stop(self) -> None:
        await self.transport.budget.bounded(super().on_stop(), "stop the producer")


class Transport(aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.budget = Budget()
