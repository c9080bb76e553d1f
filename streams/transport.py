"""Faust's aiokafka transport, with a stop that takes seconds while the broker is down.

aiokafka (0.14) raises ``CancelledError`` from a consumer's ``stop()`` while a fetch waits
to retry (the broker is unreachable: aio-libs/aiokafka#983 names the place). In Faust's
consumer thread that ends the thread without telling its parent, which then waits its
full shutdown timeout (60 s) before the worker goes on stopping. Faust's own consumer only
reads the partials and never commits, so nothing is lost by waiting at most
:data:`STOP_S`.
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka

STOP_S = 2.0
"""The longest a stop waits for Faust's consumer thread."""


class ConsumerThread(aiokafka.AIOKafkaConsumerThread):
    shutdown_timeout = STOP_S


class Consumer(aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(aiokafka.Transport):
    Consumer = Consumer
