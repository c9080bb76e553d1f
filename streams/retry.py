"""Sending again what the broker did not take, with doubling waits, until it takes it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

from schemas.backoff import Backoff

T = TypeVar("T")
RETRIED = (TimeoutError, KafkaError)
"""What a send raises while the broker is away or refuses: worth sending again."""


async def until_sent(
    send: Callable[[], Awaitable[T]],
    backoff: Backoff,
    log: logging.Logger,
    what: str,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """``await send()`` until it returns; after each failure in :data:`RETRIED` wait
    ``backoff``'s next delay (other errors propagate). Only for sends safe to repeat."""
    while True:
        try:
            result = await send()
        except RETRIED as exc:
            delay = backoff.failed()
            log.warning("%s not sent (%r); sending again in %.1f s", what, exc, delay)
            await sleep(delay)
        else:
            backoff.reset()
            return result
