"""The backtest's replay core: stored events through stage 1 and stage 2, in event time.

:class:`Replay` is the worker without Kafka: events go into the same stage-1
accumulators (``streams.stage1``) in the order given (event time), a batch a source
partition at each flush as the worker's fetch reads them, the simulated clock at the
batch's newest event; every ``flush_seconds`` of it the pending runs are drained
into partials that :class:`streams.stage2.Stage2` merges and judges with the plan given:
the same triggers, gates and alert ids as the worker. A source partition keeps its
stored partition; offsets count the events read from it (stage 2 only needs them in
order). Stage 2's clock is the simulated one; its release timer (a fired trigger that
has waited long enough for the other system's events goes out though no partial comes)
runs at each waiting trigger's due moment before the next flush, and after the last
one: where the worker's timer, once a second, finds it due. A trigger still waiting at
the range's end is released as the events after the end release it live (those given to
:meth:`Replay.finish`, read only while it waits); what they raise on their own is left out.

The rollout log is folded as it stood at each flush: the changes a person made, in time
order. The live worker's own events (rollbacks, auto-advances) are left out: this plan's
own are simulated instead, applied to the fold as soon as they are raised (the live log
returns them within moments), stamped with the simulated time. So the backtest of a plan
that acts differently from the live one shows what *it* would have done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import inf
from typing import Any
from uuid import UUID

from rollout.state import WORKER, RolloutState
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.plan import Plan
from streams.clock import ManualClock
from streams.stage1 import Source, Stage1
from streams.stage2 import Stage2, control_json

ADVANCE_SECONDS = 5.0  # the worker's auto-advance timer (streams.app)
EXPIRE_SECONDS = 30.0  # the worker's expiry timer


@dataclass(frozen=True)
class Stored:
    """One stored event and the partition of its topic it was read from."""

    source: Source
    event: Result | Feedback


@dataclass(frozen=True)
class GateChange:
    """The current phase's gate verdict from ``at`` (simulated time) on."""

    at: datetime
    phase: int
    phase_name: str
    outcome: str
    verdicts: tuple[dict[str, Any], ...]


@dataclass
class Chart:
    """A trigger's score against its threshold: the highest score per ``step`` seconds."""

    threshold: float
    step: int
    points: dict[int, float] = field(default_factory=dict)

    def add(self, at: float, score: float) -> None:
        bucket = int(at) - int(at) % self.step
        self.points[bucket] = max(score, self.points.get(bucket, score))


@dataclass
class Findings:
    """What the plan would have done: alerts, its own rollout events, gate changes, charts."""

    alerts: list[Alert] = field(default_factory=list)
    actions: list[RolloutEvent] = field(default_factory=list)
    gates: list[GateChange] = field(default_factory=list)
    charts: dict[str, Chart] = field(default_factory=dict)
    events: int = 0


class Replay:
    """The worker's stages over stored events of one rollout (see the module docstring)."""

    def __init__(
        self,
        plan: Plan,
        rollout: str,
        log: Iterable[RolloutEvent],
        *,
        window_seconds: int,
        flush_seconds: float,
        lateness: int,
        retention: int,
        chart_step: int | None = None,
    ) -> None:
        self.plan, self.rollout, self.flush_seconds = plan, rollout, flush_seconds
        self.stage1 = Stage1(window_seconds, lateness)
        self.clock = ManualClock()  # stage 2's: the simulated time
        self.stage2 = Stage2(
            window_seconds, retention, plan, state_of=self._state_of, clock=self.clock
        )
        people = [e for e in log if e.rollout == rollout and e.actor != WORKER]
        self.pending_log = deque(sorted(people, key=lambda e: e.ts))
        self.state = RolloutState(rollout)
        self.offsets: dict[Source, int] = {}
        self.unread: dict[Source, tuple[list[int], list[Result | Feedback]]] = {}
        self.tick: int | None = None
        self.next_advance = self.next_expire = float("-inf")
        self.chart_step = chart_step or window_seconds
        self.findings = Findings()

    def _state_of(self, rollout: str) -> RolloutState | None:
        return self.state if rollout == self.rollout else None

    def add(self, stored: Stored) -> None:
        """Read one event at its own time; flush first when a flush tick has passed."""
        t = stored.event.ts.timestamp()
        tick = int(t // self.flush_seconds)
        if self.tick is not None and tick > self.tick:
            self.flush((self.tick + 1) * self.flush_seconds)
        self.tick = tick if self.tick is None else max(tick, self.tick)
        offset = self.offsets.get(stored.source, 0)
        self.offsets[stored.source] = offset + 1
        offsets, events = self.unread.setdefault(stored.source, ([], []))
        offsets.append(offset)
        events.append(stored.event)
        self.findings.events += 1

    def _read(self) -> None:
        """Add the events read since the last flush, a batch a source (as the worker's
        fetch does), the clock at the newest of them."""
        for source, (offsets, events) in self.unread.items():
            acc = self.stage1.accumulator(*source, offsets[0])
            now = events[-1].ts.timestamp()
            acc.add_batch(offsets, events, now, isinstance(events[0], Feedback))
        self.unread = {}

    def finish(self, after: Iterable[Stored] = ()) -> Findings:
        """Flush what is pending; release the triggers waiting at the range's end as the
        events ``after`` it (in event-time order) do, else at their due moments; return
        the findings (the later events' own not among them)."""
        self._flush_last()
        waiting = self._waiting()
        reported, self.findings = self.findings, Findings()
        later = iter(after)
        while waiting & self._waiting() and (stored := next(later, None)) is not None:
            self.add(stored)
        self._flush_last()
        self._release(inf)
        reported.alerts += [a for a in self.findings.alerts if a.alert_id in waiting]
        reported.actions += [e for e in self.findings.actions if e.event_id in waiting]
        self.findings = reported
        return reported

    def _flush_last(self) -> None:
        if self.tick is not None:
            self.flush((self.tick + 1) * self.flush_seconds)
            self.tick = None

    def _waiting(self) -> set[UUID]:
        """What the rollout's fired triggers still waiting would raise (ids)."""
        monitor = self.stage2.monitors.get(self.rollout)
        return monitor.waiting if monitor is not None else set()

    def flush(self, now: float) -> None:
        """What the worker does at a flush at ``now``: partials merged and judged."""
        self._release(now)
        self.clock.now = now
        self._read()
        self._read_log(now)
        for source, partials, next_offset in self.stage1.drain():
            for partial in partials:
                for out in self.stage2.apply(partial):
                    self._raised(out, now)
            self.stage1.accumulators[source].committed(next_offset)
        self._chart(now)
        if now >= self.next_advance:
            self.next_advance = now + ADVANCE_SECONDS
            self._gates(now)
        if now >= self.next_expire:
            self.next_expire = now + EXPIRE_SECONDS
            self.stage2.expire(now)

    def _release(self, before: float) -> None:
        """The worker's release timer up to ``before``: each waiting trigger goes out at
        its due moment (``Stage2.release``), ahead of a flush at the same moment."""
        while (due := self.stage2.due()) is not None and due <= before:
            self.clock.now = due
            self._read_log(due)
            for out in self.stage2.release():
                self._raised(out, due)

    def _read_log(self, now: float) -> None:
        while self.pending_log and self.pending_log[0].ts.timestamp() <= now:
            self.state = self.state.apply(self.pending_log.popleft())

    def _raised(self, out: Alert | RolloutEvent, now: float) -> None:
        stamped = out.model_copy(update={"ts": datetime.fromtimestamp(now, UTC)})
        if isinstance(stamped, Alert):
            self.findings.alerts.append(stamped)
        else:
            self.state = self.state.apply(stamped)
            self.findings.actions.append(stamped)

    def _chart(self, now: float) -> None:
        evidence = control_json(self.stage2, self.rollout)["evidence"]
        for name, figures in evidence.items():
            chart = self.findings.charts.get(name)
            if chart is None:
                chart = self.findings.charts[name] = Chart(figures["threshold"], self.chart_step)
            chart.add(now, figures["score"])

    def _gates(self, now: float) -> None:
        event = self.stage2.advance(self.rollout)
        if event is not None:
            self._raised(event, now)
        report = self.stage2.gates(self.rollout)
        if report is None:
            return
        last = self.findings.gates[-1] if self.findings.gates else None
        if last is not None and (last.phase, last.outcome) == (report.phase, report.outcome):
            return
        self.findings.gates.append(
            GateChange(
                datetime.fromtimestamp(now, UTC),
                report.phase,
                report.phase_name,
                report.outcome,
                tuple(v.to_json() for v in report.verdicts),
            )
        )


def replay(
    plan: Plan,
    rollout: str,
    log: Iterable[RolloutEvent],
    events: Iterable[Stored],
    after: Iterable[Stored] = (),
    **cadence: Any,
) -> Findings:
    """Replay ``events`` (in event-time order) of ``rollout``, ``after`` them those that
    follow the range's end (:meth:`Replay.finish`): :class:`Replay`'s findings."""
    run = Replay(plan, rollout, log, **cadence)
    for stored in events:
        run.add(stored)
    return run.finish(after)
