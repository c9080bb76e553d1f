"""Reading a log topic from its start: the part every follower shares, without I/O.

A :class:`Reading` keeps the position reached in each partition, the end offsets the
broker reported when the follower (re)connected, and whether it has caught up: only once
every partition's position has reached those end offsets (an empty topic at once). It
decodes each message into its model and hands it to a callback; an unreadable one is
skipped with a warning. Its transports (:mod:`rollout.follower`, a thread on
kafka-python; :mod:`rollout.async_follower`, asyncio on aiokafka) do the reading.

The local broker (Tansu) reports "first offset of the last batch + 1" as the end, not
"last offset + 1". A batch is handed over whole, so a position at or past that value
means the last batch was read, once the client has handed all of it over: a read of
fewer than ``limit`` records (what a transport asks for at a time) left nothing
buffered, and only then is the end checked. The limit also keeps each read short, so an
event loop following a long log is never held for long.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from schemas.codec import DecodeError, decode
from schemas.settings import Settings

log = logging.getLogger(__name__)


class Record(Protocol):
    """A consumed message as both Kafka clients give it."""

    offset: int
    value: bytes | None


class Partition(Protocol):
    """A topic partition as both Kafka clients name it."""

    @property
    def partition(self) -> int: ...


P = TypeVar("P", bound=Partition)


class Reading:
    """Positions, end offsets and the caught-up rule of one topic (see the module docstring)."""

    def __init__(
        self,
        topic: str,
        model: type[BaseModel],
        on_message: Callable[[Any], None],
        limit: int = 500,
    ) -> None:
        self.topic, self.model, self.on_message, self.limit = topic, model, on_message, limit
        self.positions: dict[int, int] = {}  # partition -> next offset to read
        self.end: dict[int, int] | None = None  # the end offsets seen at (re)connection
        self.caught_up = False
        self.error: str | None = None

    def partitions(self, found: Iterable[int] | None) -> list[int]:
        """The partitions to read; an error if the topic does not exist."""
        if not found:
            raise RuntimeError(f"topic {self.topic} does not exist (phasegate topics create)")
        return sorted(found)

    def start(self, first: Mapping[P, int], end: Mapping[P, int]) -> dict[P, int]:
        """Where to seek each partition after (re)connecting, given its first offset and the
        end offset the broker reports now (kept until caught up)."""
        for tp, offset in first.items():
            self.positions[tp.partition] = max(self.positions.get(tp.partition, offset), offset)
        if not self.caught_up:
            self.end = {tp.partition: offset for tp, offset in end.items()}
        if self.error is not None:
            log.info("reading %s again", self.topic)
            self.error = None
        self._check()
        return {tp: self.positions[tp.partition] for tp in first}

    def read(self, batches: Mapping[Partition, Sequence[Record]]) -> bool:
        """Hand over every record of one read of at most ``limit``; True once caught up."""
        for tp, records in batches.items():
            for record in records:
                self.positions[tp.partition] = record.offset + 1
                self._deliver(record)
        if sum(map(len, batches.values())) < self.limit:  # nothing left buffered
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


class FollowerBase:
    """What both transports share: the broker's settings, the reading, a name, a retry."""

    limit = 500
    """Records per read."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        model: type[BaseModel],
        on_message: Callable[[Any], None],
        *,
        name: str = "phasegate-follower",
        retry_s: float = 2.0,
    ) -> None:
        self.settings, self.name, self.retry_s = settings, name, retry_s
        self.reading = Reading(topic, model, on_message, self.limit)

    @property
    def error(self) -> str | None:
        """Why the topic cannot be read now (None while it can)."""
        return self.reading.error

    def consumer_options(self) -> dict[str, Any]:
        """What both clients' consumers take alike: group-less, nothing committed."""
        return {
            "bootstrap_servers": [s.strip() for s in self.settings.bootstrap_servers.split(",")],
            "group_id": None,
            "enable_auto_commit": False,
            "fetch_max_wait_ms": 100,
            "request_timeout_ms": 5000,
            "client_id": self.name,
        }

    def failed(self, exc: Exception) -> None:
        self.reading.failed(exc, self.settings.bootstrap_servers)
