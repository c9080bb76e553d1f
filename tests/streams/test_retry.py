"""until_sent: a send the broker refuses is sent again after doubling waits."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka.errors import KafkaConnectionError, UnknownError

from schemas.backoff import Backoff
from streams.retry import until_sent


class FlakySend:
    """Fails with each of ``errors`` in turn, then returns how often it was called."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.calls


def run(send, backoff: Backoff, slept: list[float]) -> int:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return asyncio.run(until_sent(send, backoff, logging.getLogger("t"), "partials", sleep))


def test_refused_sends_are_sent_again_after_doubling_waits(caplog) -> None:
    errors = [UnknownError(), TimeoutError(), KafkaConnectionError(), UnknownError()]
    send, slept, backoff = FlakySend(*errors), [], Backoff(first=0.5, most=2.0)
    with caplog.at_level(logging.WARNING):
        assert run(send, backoff, slept) == 5  # the fifth send went through
    assert slept == [0.5, 1.0, 2.0, 2.0]
    assert caplog.text.count("partials not sent") == 4
    assert backoff.failures == 0  # a success starts the next outage from the first wait


def test_a_send_that_works_waits_for_nothing() -> None:
    slept: list[float] = []
    assert run(FlakySend(), Backoff(), slept) == 1 and slept == []


def test_other_errors_are_not_retried() -> None:
    send = FlakySend(ValueError("a bug, not the broker"))
    with pytest.raises(ValueError):
        run(send, Backoff(), [])
    assert send.calls == 1
