"""Reading a log topic from its start: the part every follower shares, without I/O.

A :class:`Reading` keeps the position reached in each partition, the end offsets the
broker reported when the follower (re)connected, and whether it has caught up: only once
every partition's position has reached those end offsets (an empty topic at once). It
decodes each message into its model and hands it to a callback; an unreadable one is
skipped with a warning. Its transports (:mod:`rollout.follower`, a thread on
kafka-python; :mod:`rollout.async_follower`, asyncio on aiokafka) do the reading.

The local broker (Tansu) reports "first offset of the last batch + 1" as the end, not
"last offset + 1". A batch is handed over whole, so a position at or past that value
means the last batch was read; a transport says when a read may have left records
buffered (``drained=False``) and the check waits for the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from schemas.codec import DecodeError, decode

log = logging.getLogger(__name__)


class Record(Protocol):
    """A consumed message as both Kafka clients give it."""

    offset: int
    value: bytes | None


class Partition(Protocol):
    partition: int


class Reading:
    """Positions, end offsets and the caught-up rule of one topic (see the module docstring)."""

    def __init__(self, topic: str, model: type[BaseModel], on_message: Callable[[Any], None]):
        self.topic, self.model, self.on_message = topic, model, on_message
        self.positions: dict[int, int] = {}  # partition -> next offset to read
        self.end: dict[int, int] | None = None  # the end offsets seen at (re)connection
        self.caught_up = False
        self.error: str | None = None

    def partitions(self, found: Iterable[int] | None) -> list[int]:
        """The partitions to read; an error if the topic does not exist."""
        if not found:
            raise RuntimeError(f"topic {self.topic} does not exist (phasegate topics create)")
        return sorted(found)

    def start(self, first: Mapping[int, int], end: Mapping[int, int]) -> dict[int, int]:
        """Where to seek each partition after (re)connecting, given its first offset and the
        end offset the broker reports now (kept until caught up)."""
        for partition, offset in first.items():
            self.positions[partition] = max(self.positions.get(partition, offset), offset)
        if not self.caught_up:
            self.end = dict(end)
        if self.error is not None:
            log.info("reading %s again", self.topic)
            self.error = None
        self._check()
        return dict(self.positions)

    def read(self, batches: Mapping[Partition, Iterable[Record]], drained: bool = True) -> bool:
        """Hand over every record of ``batches`` in order; True once caught up.

        ``drained``: the client has nothing more buffered (False when a read stopped at
        its record limit: the last batch may be only partly handed over).
        """
        for tp, records in batches.items():
            for record in records:
                self.positions[tp.partition] = record.offset + 1
                self._deliver(record)
        if drained:
            self._check()
        return self.caught_up

    def failed(self, exc: BaseException, servers: str) -> None:
        """Keep why the topic cannot be read; warn once per outage."""
        if self.error is None:
            log.warning("cannot read %s at %s (%s); retrying", self.topic, servers, exc)
        self.error = f"cannot read {self.topic} at {servers}: {exc}"

    def _deliver(self, record: Record) -> None:
        try:
            model = decode(record.value, self.model)
        except DecodeError as exc:
            log.warning("skipping unreadable message %s@%d: %s", self.topic, record.offset, exc)
            return
        self.on_message(model)

    def _check(self) -> None:
        if self.end is not None and all(
            self.positions.get(p, 0) >= end for p, end in self.end.items()
        ):
            self.caught_up = True
