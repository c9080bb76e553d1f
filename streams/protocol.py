"""The worker's protocol, apart from Faust: what it does with each message, flush and rebalance.

:class:`Aggregation` is stage 1: it adds each fetched batch of results or feedback to its
partition's accumulator, decoded at once, without committing it; :meth:`Aggregation.flush`
sends every pending run's partials, and only once the broker has them commits the offset
after each run. A send the broker refuses is retried with backoff (resending a run is
harmless: stage 2 keeps one copy of each run). An unreadable or refused event goes to the
DLQ with its reason; the rest of its batch is aggregated.
:class:`Judgement` is stage 2: it merges partials, judges them once the rollout log has
been read to its end, and sends what the triggers raise.

Both talk to the broker only through an :class:`Outbox`, so tests drive them with an
in-memory one and no subprocess; ``streams.app`` gives them Faust's topics and the
batch consumer's commit (``streams.fetch``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from schemas.backoff import Backoff
from schemas.codec import DecodeError, collection_paused, decode
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.fastcodec import fast_decode_structs
from schemas.internal import DeadLetter, Partial
from streams.clock import Clock
from streams.retry import until_sent
from streams.stage1 import Source, Stage1
from streams.stage2 import Stage2

log = logging.getLogger("phasegate.streams")
FLUSH_RETRY_S = (0.5, 10.0)  # first and longest wait before sending partials again


class Message(Protocol):
    """What the protocol reads of a consumed message (aiokafka's ``ConsumerRecord`` and
    Faust's ``Message`` have it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Outbox(Protocol):
    """Where the protocol's messages go. ``partials`` returns once the broker has every
    one (the commit depends on it); the others once the producer has taken the message."""

    async def partials(self, partials: Sequence[Partial]) -> None: ...
    async def alert(self, alert: Alert) -> None: ...
    async def rollout(self, event: RolloutEvent) -> None: ...
    async def dead_letter(self, letter: DeadLetter) -> None: ...
    async def commit(self, offsets: Mapping[Source, int]) -> Collection[Source]:
        """Commit ``offsets``; return the sources it committed."""
        ...


@dataclass
class Counters:
    """What the worker has done since it started (``/status`` and ``/metrics``)."""

    results: int = 0
    feedback: int = 0
    dead_letters: int = 0
    partials: int = 0
    alerts: int = 0
    rollbacks: int = 0

    def json(self) -> dict[str, int]:
        return asdict(self)


def letter(message: Message, reason: str) -> DeadLetter:
    """The dead letter of ``message``: its place, its reason and its bytes."""
    return DeadLetter(
        component="streams",
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        reason=reason,
        original=message.value or b"",
    )


class Aggregation:
    """Stage 1's protocol (see the module docstring)."""

    def __init__(
        self,
        stage1: Stage1,
        models: dict[str, type[Result] | type[Feedback]],
        outbox: Outbox,
        counters: Counters,
        clock: Clock,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.stage1, self.models, self.outbox = stage1, models, outbox
        self.counters, self.clock, self.sleep = counters, clock, sleep
        self.backoff = Backoff(*FLUSH_RETRY_S)
        self.flushing = asyncio.Lock()

    async def add_batch(self, messages: Sequence[Message]) -> None:
        """Aggregate one fetched batch of one partition, decoded at once; nothing is
        committed until its partials are on the broker."""
        if not messages:
            return
        with collection_paused():  # re-enabled once the batch's temporaries are gone
            reasons = self._aggregate(messages)
        if self.models[messages[0].topic] is Result:
            self.counters.results += len(messages) - len(reasons)
        else:
            self.counters.feedback += len(messages) - len(reasons)
        for message in messages if reasons else ():
            if message.offset in reasons:
                await self._dead_letter(message, reasons[message.offset])

    def _aggregate(self, messages: Sequence[Message]) -> dict[int, str]:
        """Decode and aggregate one partition's batch; why each offset it refuses was."""
        first = messages[0]
        acc = self.stage1.accumulator(first.topic, first.partition, first.offset)
        model = self.models[first.topic]
        decoded = fast_decode_structs([m.value for m in messages], model)
        unreadable = {
            m.offset: e.reason
            for m, e in zip(messages, decoded, strict=True)
            if isinstance(e, DecodeError)
        }
        if unreadable:
            decoded = [None if isinstance(e, DecodeError) else e for e in decoded]
        offsets = [m.offset for m in messages]
        return acc.add_batch(offsets, decoded, self.clock(), model is Feedback) | unreadable

    async def _dead_letter(self, message: Message, reason: str) -> None:
        self.counters.dead_letters += 1
        await self.outbox.dead_letter(letter(message, reason))

    async def flush(self) -> None:
        """Send every pending run's partials; once the broker has them, commit their ends."""
        async with self.flushing:  # a revoke waits for a timer's flush, and vice versa
            runs = self.stage1.drain()
            if not runs:
                return
            partials = [p for _source, run, _next in runs for p in run]
            await until_sent(
                lambda: self.outbox.partials(partials), self.backoff, log, "partials", self.sleep
            )
            self.counters.partials += len(partials)
            offsets = {source: next_offset for source, _partials, next_offset in runs}
            for source in await self.outbox.commit(offsets):
                acc = self.stage1.accumulators.get(source)
                if acc is not None:  # a refused commit is not claimed: its runs stay replaceable
                    acc.committed(offsets[source])

    async def revoke(self, sources: set[Source]) -> None:
        """Before a rebalance: hand over what was read (the next owner replays less)."""
        try:
            await self.flush()
        except Exception:
            log.warning("could not flush before a rebalance; the next owner replays it")
        self.stage1.revoke(sources)


class Judgement:
    """Stage 2's protocol (see the module docstring)."""

    def __init__(
        self, stage2: Stage2, outbox: Outbox, counters: Counters, log_read: asyncio.Event
    ) -> None:
        self.stage2, self.outbox, self.counters = stage2, outbox, counters
        self.log_read = log_read  # set once the rollout log has been read to its end

    async def merge(self, message: Message) -> None:
        """Merge one partial and send what it raises; judged only on the whole log."""
        await self.log_read.wait()  # a replayed partial is judged on today's log, no guess
        try:
            partial = decode(message.value, Partial)
        except DecodeError as exc:
            self.counters.dead_letters += 1
            await self.outbox.dead_letter(letter(message, exc.reason))
            return
        for out in self.stage2.apply(partial):
            await self._send(out)

    async def release(self) -> None:
        """Stage 2's timer: send each fired trigger that has waited long enough for the
        other system's events (``Stage2.release``), though no partial comes."""
        for out in self.stage2.release():
            await self._send(out)

    async def advance(self) -> None:
        """With ``auto_advance``: start each rollout's next phase once its gates pass.

        Judging a rollout's gates takes milliseconds: the loop gets a turn after each.
        """
        if not self.stage2.plan.auto_advance:
            return
        for rollout in list(self.stage2.views):
            event = self.stage2.advance(rollout)
            if event is not None:
                log.warning("rollout %s: auto-advance to phase %s", rollout, event.phase)
                await self.outbox.rollout(event)
            await asyncio.sleep(0)

    async def _send(self, out: Alert | RolloutEvent) -> None:
        if isinstance(out, Alert):
            self.counters.alerts += 1
            log.warning(
                "alert %s %s/%s %s=%.4g (limit %.4g) over %d events",
                out.kind,
                out.rollout,
                out.system,
                out.metric,
                out.observed,
                out.threshold,
                out.samples,
            )
            await self.outbox.alert(out)
        else:
            self.counters.rollbacks += 1
            log.warning("rollout %s: %s to weight %s", out.rollout, out.type, out.weight)
            await self.outbox.rollout(out)
