"""The backtest's replay core on a synthetic history: no broker, no store."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from itertools import chain

from rollout.state import WORKER, fold
from schemas.codec import encode
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.plan import Plan, load_plan
from streams.backtest import Findings, Stored, replay
from streams.clock import ManualClock
from streams.protocol import Aggregation, Counters, Judgement
from streams.stage1 import Stage1
from streams.stage2 import Stage2
from streams.triggers import GRACE
from tests.streams.conftest import T0, make_result
from tests.streams.test_protocol import Msg, Outbox

ROLLOUT = "kai"
DROP = 150  # seconds after T0: the candidate drops from 98% to 70% success
RESUME = 103  # seconds after T0: both systems again after :func:`stopping`
CADENCE = {"window_seconds": 10, "flush_seconds": 1.0, "lateness": 10, "retention": 3600}


def history(seconds: int = 300, per_second: int = 20) -> list[Stored]:
    """Both systems at ``per_second`` each over two partitions, in event-time order."""
    out = []
    for i in range(seconds * per_second):
        at = i / per_second
        dropped = at >= DROP
        for system in ("pipeline", "production"):
            ok = i % 50 != 0 if system == "pipeline" or not dropped else i % 10 not in (0, 3, 6)
            out.append(stored(i, system, ok, at))
    return out


def stored(i: int, system: str, ok: bool, at: float, critical: bool = False) -> Stored:
    """Result ``i`` of ``system`` at ``at`` seconds after T0, on partition ``i % 2``."""
    result = make_result(
        i, system=system, success=ok, critical=critical, seconds=at, rollout=ROLLOUT
    )
    result = result.model_copy(update={"weight": 50, "query_id": f"{system}{i}"})
    return Stored(("results", i % 2), result)


def failing(
    system: str, seconds: range, critical: float = -1, per_second: int = 20
) -> list[Stored]:
    """``system`` at 30% success over ``seconds``; its failure at ``critical`` s critical."""
    first, end = seconds.start * per_second, seconds.stop * per_second
    return [
        stored(i, system, i % 10 < 3, i / per_second, i / per_second == critical)
        for i in range(first, end)
    ]


def in_time(*parts: list[Stored]) -> list[Stored]:
    """The events of ``parts`` in event-time order (a part's first at the same time)."""
    return sorted(chain(*parts), key=lambda s: s.event.ts)


def stopping(per_second: int = 20) -> list[Stored]:
    """:func:`history` for 100 s, then the candidate alone at 30% for 3 s; then nothing."""
    return history(100, per_second) + failing("production", range(100, 103), per_second=per_second)


def resuming() -> list[Stored]:
    """:func:`stopping`, then the candidate alone for a second more, its failure at
    103.25 s critical; then both at 30% from 104 s to 130 s (a shared cause, told by the
    baseline's events read after the candidate's)."""
    later = failing("production", range(RESUME, 130), critical=RESUME + 0.25)
    return in_time(stopping(), failing("pipeline", range(RESUME + 1, 130)), later)


def person(type: str, seconds: float, **fields) -> RolloutEvent:
    ts = T0 + timedelta(seconds=seconds)
    return RolloutEvent(rollout=ROLLOUT, type=type, ts=ts, actor="alice", **fields)


def run(log: list[RolloutEvent]) -> Findings:
    return replay(load_plan(), ROLLOUT, log, history(), **CADENCE)


def test_a_drop_fires_the_emergency_rollback_in_the_window_it_began():
    findings = run([person("phase_started", -5, weight=50, phase=1)])
    (alert,) = [a for a in findings.alerts if a.kind == "emergency_rollback"]
    assert alert.window.start == T0 + timedelta(seconds=DROP)
    assert alert.observed < 0.9
    assert (alert.action.weight_from, alert.action.weight_to) == (50, 0)
    (action,) = findings.actions
    assert (action.type, action.weight, action.actor) == ("rollback", 0, WORKER)
    # stamped with the simulated time of the flush that raised it, not the wall clock
    assert T0 + timedelta(seconds=DROP) < action.ts < T0 + timedelta(seconds=DROP + 60)
    assert alert.ts == action.ts
    chart = findings.charts["success-emergency"]
    assert max(chart.points.values()) == chart.threshold
    assert findings.events == 2 * 300 * 20


def test_the_live_workers_own_rollback_is_not_folded_but_a_persons_change_is():
    live_rollback = person("rollback", 30, weight=0, phase=0).model_copy(update={"actor": WORKER})
    log = [person("phase_started", -5, weight=50, phase=1), live_rollback]
    (alert,) = [a for a in run(log).alerts if a.kind == "emergency_rollback"]
    assert alert.action.weight_from == 50  # the stored rollback to 0 did not happen here

    # a person's rollback before the drop: no weight left to roll back, so no action
    log = [person("phase_started", -5, weight=50, phase=1), person("rollback", 30, weight=0)]
    findings = run(log)
    assert findings.actions == []
    assert all(a.action is None for a in findings.alerts)


def test_gate_changes_are_recorded_with_their_phase():
    findings = run([person("phase_started", -5, weight=50, phase=1)])
    assert findings.gates, "no gate verdict was recorded"
    assert {g.phase for g in findings.gates} <= {0, 1}
    assert findings.gates[0].phase == 1
    assert all(g.verdicts for g in findings.gates if g.phase == 1)


def worker_alerts(
    events: list[Stored], log: list[RolloutEvent], plan: Plan | None = None
) -> list[Alert]:
    """The worker's protocol (``streams.protocol``) on an in-memory broker, its release
    and flush timers firing every second of a clock that follows the events (and goes on
    for :data:`GRACE` seconds after them); the log returns the worker's rollbacks before
    the next flush. ``plan``: the default plan unless given."""
    clock, outbox = ManualClock(), Outbox([])
    state = fold(log, ROLLOUT)
    stage2 = Stage2(10, 3600, plan or load_plan(), state_of=lambda rollout: state, clock=clock)
    read = asyncio.Event()
    read.set()
    models = {"results": Result, "feedback": Feedback}
    aggregation = Aggregation(Stage1(10, 10), models, outbox, Counters(), clock)
    judgement = Judgement(stage2, outbox, Counters(), read)
    offsets: dict[tuple[str, int], int] = {}

    async def flush() -> None:
        nonlocal state
        await aggregation.flush()
        for partial in outbox.sent:
            await judgement.merge(Msg("partials", 0, 0, encode(partial)))
        outbox.sent.clear()
        for event in outbox.rollouts:
            state = state.apply(event)

    async def timers(seconds: range) -> None:
        for second in seconds:
            clock.now = float(second)
            await judgement.release()
            await flush()

    async def run() -> None:
        tick = int(events[0].event.ts.timestamp())
        for stored in events:
            t = stored.event.ts.timestamp()
            if int(t) > tick:
                await timers(range(tick + 1, int(t) + 1))
            tick, clock.now = int(t), t
            offset = offsets[stored.source] = offsets.get(stored.source, -1) + 1
            message = Msg(*stored.source, offset, encode(stored.event))
            await aggregation.add_batch([message])
        await timers(range(tick + 1, tick + int(GRACE) + 3))

    asyncio.run(run())
    return outbox.alerts


def test_the_replay_is_the_workers_protocol_at_the_same_cadence():
    """Batch for batch the same evidence: the same alerts to the last figure."""
    log = [person("phase_started", -5, weight=50, phase=1)]
    events = history()
    replayed = replay(load_plan(), ROLLOUT, log, events, **CADENCE).alerts
    assert replayed, "nothing fired"
    figures = ["alert_id", "kind", "window", "observed", "samples", "action", "threshold"]
    as_worker = [a.model_dump(include=set(figures)) for a in worker_alerts(events, log)]
    assert [a.model_dump(include=set(figures)) for a in replayed] == as_worker


def test_a_trigger_that_fires_as_traffic_stops_goes_out_as_from_the_worker():
    """The candidate's failing events come after the baseline's last: its trigger waits
    for the baseline's, which never come; the timer releases it in both, alike."""
    log = [person("phase_started", -5, weight=50, phase=1)]
    events = stopping()
    replayed = replay(load_plan(), ROLLOUT, log, events, **CADENCE).alerts
    (alert,) = [a for a in replayed if a.kind == "emergency_rollback"]
    assert alert.ts > events[-1].event.ts + timedelta(seconds=GRACE / 2)  # it waited
    figures = ["alert_id", "kind", "window", "observed", "samples", "action", "attribution"]
    as_worker = [a.model_dump(include=set(figures)) for a in worker_alerts(events, log)]
    assert [a.model_dump(include=set(figures)) for a in replayed] == as_worker


def cut(events: list[Stored], end: datetime) -> tuple[list[Stored], list[Stored]]:
    """``events`` of a range that ends at ``end``, and those of the :data:`GRACE` after it."""
    within = [s for s in events if s.event.ts < end]
    return within, [s for s in events if end <= s.event.ts < end + timedelta(seconds=GRACE)]


def test_a_range_that_ends_while_a_fired_trigger_waits_reads_on_as_the_worker_did():
    """The range ends right after the candidate's trigger fired, waiting for the baseline's
    events: those stored after the end release it as they did live (held: the baseline
    fails too), not as if traffic had stopped (a rollback). What they fire on their own
    (the critical error) is not reported."""
    log = [person("phase_started", -5, weight=50, phase=1)]
    events, end = resuming(), T0 + timedelta(seconds=RESUME)
    findings = replay(load_plan(), ROLLOUT, log, *cut(events, end), **CADENCE)
    (alert,) = findings.alerts
    assert (alert.kind, alert.attribution, findings.actions) == ("rollback_held", "shared", [])
    assert end < alert.ts < end + timedelta(seconds=GRACE / 2)  # the baseline's, not the timer
    live = worker_alerts(events, log)
    assert {a.kind for a in live} == {"rollback_held", "critical_error", "recovered"}
    figures = ["alert_id", "kind", "window", "observed", "samples", "action", "attribution"]
    as_worker = [a.model_dump(include=set(figures)) for a in live if a.kind == "rollback_held"]
    assert [a.model_dump(include=set(figures)) for a in findings.alerts] == as_worker


def test_a_baselines_degradation_waiting_at_the_ranges_end_is_judged_as_live():
    """The mirror: the baseline's trigger fired right before the range's end, waiting for
    the candidate's events. Those after the end show the candidate failing too (a shared
    cause): no alert, as live, and the candidate's own alert they fire is not reported;
    or the candidate healthy: the baseline's alert, released by them."""
    log, end = [person("phase_started", -5, weight=50, phase=1)], T0 + timedelta(seconds=RESUME)
    base, cand = failing("pipeline", range(100, 130)), failing("production", range(RESUME, 130))
    events = in_time(history(100), base, cand)
    within, after = cut(events, end)
    stopped = replay(load_plan(), ROLLOUT, log, within, **CADENCE)
    assert [a.kind for a in stopped.alerts] == ["baseline_degraded"]  # as if traffic stopped
    assert replay(load_plan(), ROLLOUT, log, within, after, **CADENCE).alerts == []
    assert [a.kind for a in worker_alerts(events, log)] == ["rollback_held"]  # after the end

    healthy = [s for s in history(130)[2 * 20 * RESUME :] if s.event.system == "production"]
    events = in_time(history(100), base, healthy)
    (alert,) = replay(load_plan(), ROLLOUT, log, *cut(events, end), **CADENCE).alerts
    assert end < alert.ts < end + timedelta(seconds=GRACE / 2)
    (live,) = worker_alerts(events, log)
    figures = {"alert_id", "kind", "window", "observed", "samples", "attribution"}
    assert alert.model_dump(include=figures) == live.model_dump(include=figures)
