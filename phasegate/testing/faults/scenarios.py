"""The fault scenarios: each starts a :class:`Run`, injects one fault under load, judges.

``python -m bench.faults`` prints them as a table; ``tests/faults`` runs them reduced.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaProducer

from phasegate.notify import announcement
from phasegate.testing.faults.hostile import hostile
from phasegate.testing.faults.outcome import Outcome
from phasegate.testing.faults.run import ROLLOUT, Run, Seen, Size
from phasegate.testing.faults.stack import Stack
from phasegate.testing.processes import NOTIFY_ATTEMPTS, NotifyProcess, SinkProcess, wait_for
from phasegate.testing.webhook import Receiver
from rollout.state import fold
from schemas.events import RolloutEvent
from schemas.plan import load_plan
from streams.triggers import WORKER

Scenario = Callable[[Stack, Size, Path], Outcome]
STOP_S = 10.0  # the longest a worker may take to stop, broker or not
FAIL_ALWAYS = 10**9  # a webhook receiver that answers every request with 503


@contextmanager
def running(stack: Stack, name: str, size: Size, folder: Path) -> Iterator[Run]:
    run = Run(stack, name, size, folder)
    try:
        yield run
    finally:
        run.close()


def worker_kill(stack: Stack, size: Size, folder: Path) -> Outcome:
    """kill -9 of the worker in the middle of a window while a candidate degrades."""
    with running(stack, "worker kill -9", size, folder) as run:
        run.start()
        run.load("degrade")
        run.at(0.4)
        run.mid_window()
        run.worker.stop(signal.SIGKILL)
        run.worker.start()
        return run.recovered()


def sink_kill(stack: Stack, size: Size, folder: Path) -> Outcome:
    """kill -9 of the sink after its insert, before its commit; then a fresh sink."""
    with running(stack, "sink kill -9", size, folder) as run:
        run.start(sink=False)
        run.load()
        run.at(0.3)
        doomed = SinkProcess(run.settings, run.sink.log, PHASEGATE_SINK_FAULT="kill-after-insert")
        doomed.start()
        assert doomed.proc is not None
        code = doomed.proc.wait(60)
        assert code == -signal.SIGKILL, doomed.tail()
        inserted = run.ch("SELECT count() FROM {db}.results")
        run.sink.start()
        out = run.recovered()
        out.notes.append(f"the killed sink stored {inserted} rows, committed none")
        return out


def _bounce(name: str, service: str) -> Scenario:
    def scenario(stack: Stack, size: Size, folder: Path) -> Outcome:
        with running(stack, name, size, folder) as run:
            run.start()
            run.load()
            run.at(0.3)
            restarted = stack.bounce(service, size.outage_s)
            return run.recovered(restarted)

    scenario.__doc__ = f"stop {service}, wait, start it again while the load keeps emitting"
    return scenario


broker_restart = _bounce("broker restart", "broker")
clickhouse_restart = _bounce("ClickHouse restart", "clickhouse")


def worker_stop_broker_down(stack: Stack, size: Size, folder: Path) -> Outcome:
    """SIGTERM to the worker while the broker is down: it exits (0) within
    :data:`STOP_S`; a new worker, once the broker is back, counts every result once (what
    the stopped one read but could not send was not committed)."""
    with running(stack, "worker stop, broker down", size, folder) as run:
        run.start()
        run.load()
        run.at(0.3)
        broker = stack.processes["broker"]
        broker.stop(timeout=10)
        time.sleep(size.outage_s)  # the worker's clients retry
        began = time.monotonic()
        code = run.worker.stop(timeout=STOP_S)
        took = time.monotonic() - began
        if code != 0:
            run.problems.append(f"the worker did not stop within {STOP_S:g} s (exit {code})")
        broker.start(timeout=60)
        run.worker.start()
        out = run.recovered()
        out.notes.append(f"the worker stopped in {took:.1f} s with the broker down")
        return out


def broker_hang(stack: Stack, size: Size, folder: Path) -> Outcome:
    """The broker hangs (SIGSTOP) longer than the request timeout, then runs on, under two
    sinks in one group: every request times out, connections are dropped, the group
    rebalances while the sinks hold batches."""
    with running(stack, f"broker hangs {size.hang_s:.0f} s, 2 sinks", size, folder) as run:
        second = SinkProcess(run.settings, folder / "sink2.log")
        run.start()
        second.start()
        try:
            run.load()
            run.at(0.3)
            resumed = stack.hang("broker", size.hang_s)
            out = run.recovered(resumed)
        finally:
            code = second.stop()
        if code not in (0, None):
            out.crashes += 1
            out.notes.append(f"the second sink exited with {code}: {second.tail(5)}")
        return out


def bad_input(stack: Stack, size: Size, folder: Path) -> Outcome:
    """``size.hostile`` malformed or hostile messages spread over the load."""
    with running(stack, f"{size.hostile} bad messages", size, folder) as run:
        run.start()
        run.load()
        run.at(0.2)
        producer = KafkaProducer(
            bootstrap_servers=run.settings.bootstrap_servers,
            acks="all",
            enable_idempotence=False,
            max_request_size=4 * 1024 * 1024,
        )
        spread = 0.6 * size.duration_s / size.hostile
        pending = []
        for i, bad in enumerate(hostile(size.hostile, "kai", run.sent.recent(), seed=8)):
            future = producer.send(run.settings.topics.results, bad.value, key=bad.key)
            pending.append((future, bad))
            if i % 50 == 49:
                time.sleep(50 * spread)
        producer.flush(60)
        for future, bad in pending:
            meta = future.get(30)
            run.bad[(meta.partition, meta.offset)] = bad
        producer.close()
        run.join_load()
        out = run.outcome()
        kinds = sorted({b.kind for b in run.bad.values()})
        out.notes.append(f"{len(kinds)} kinds: {', '.join(kinds)}")
        return out


def webhooks(stack: Stack, size: Size, folder: Path) -> Outcome:
    """A slow webhook receiver and one that always fails, while a candidate degrades."""
    with running(stack, "slow + failing webhook", size, folder) as run:
        slow, failing = Receiver(delay=2.0), Receiver(fail=FAIL_ALWAYS)
        hooks = [
            NotifyProcess(run.settings, slow.url, folder / "notify-slow.log", timeout=5),
            NotifyProcess(run.settings, failing.url, folder / "notify-failing.log", timeout=5),
        ]
        for hook in hooks:
            hook.start()
        try:
            run.start()
            run.load("degrade")
            run.join_load()
            out = run.outcome()
            _waited(run, lambda: _notified(run, slow, failing), "every webhook call", 60)
        finally:
            counts = [hook.counters() for hook in hooks]
            slow.close()
            failing.close()
        got_slow, got_failing = counts
        out.notes.append(f"slow receiver: {got_slow}; failing receiver: {got_failing}")
        delivered = len(slow.bodies)
        if not (
            got_slow.get("sent") == delivered > 0
            and got_slow.get("failed") == 0
            and got_failing.get("failed") == delivered
            and got_failing.get("sent") == 0
            and got_slow.get("exit") == got_failing.get("exit") == 0
        ):
            out.problems.append("notify counters do not match the deliveries")
        return out


def _notified(run: Run, slow: Receiver, failing: Receiver) -> bool:
    """Whether the slow receiver got every notification of what ``run`` saw (each alert,
    each announcement of the plan), and the failing one every attempt of each it got."""
    assert run.seen is not None
    seen, plan = run.seen, load_plan(run.settings.plan)
    wanted = len({a.alert_id for a in seen.alerts})
    wanted += sum(announcement(plan, e) is not None for e in seen.log)
    got, attempts = len(slow.bodies), FAIL_ALWAYS - failing.fail
    return got >= wanted and attempts == NOTIFY_ATTEMPTS * got


def _weights(events: list[RolloutEvent]) -> str:
    """The log as weights and who set them: ``100 (fault-operator) -> 0 (phasegate-worker)``."""
    return " -> ".join(f"{e.weight if e.weight is not None else 0} ({e.actor})" for e in events)


def _held(events: list[RolloutEvent], out: Outcome) -> None:
    """The worker's emergency rollback stands: the fold ends at weight 0, phase 0, and no
    automatic event after it sets a weight above 0."""
    out.notes.append(f"rollout log: {_weights(events)}")
    state = fold(events, ROLLOUT)
    if (state.weight, state.phase) != (0, 0):
        out.problems.append(f"the rollout ends at weight {state.weight}, phase {state.phase}")
    to_zero = [i for i, e in enumerate(events) if e.actor == WORKER and not e.weight]
    if not to_zero:
        out.problems.append("no rollback to 0")
        return
    raised = [e for e in events[to_zero[0] + 1 :] if e.actor == WORKER and e.weight]
    if raised:
        out.problems.append(f"after the rollback to 0 the worker set {_weights(raised)}")


def outage_at_phase_3(stack: Stack, size: Size, folder: Path) -> Outcome:
    """At phase 3 (100%) every candidate request fails and times out (2 s): the success
    and the latency triggers fire in the same evaluation, and the emergency rollback to 0
    must stand."""
    with running(stack, "hard outage at phase 3 (100%)", size, folder) as run:
        run.start()
        run.steer("phase_started", weight=100, phase=3)
        run.load("outage", weight=None)
        run.join_load()
        out = run.outcome()
        assert run.seen is not None
        _held(run.seen.log, out)
        return out


def _waited(run: Run, check: Callable[[], bool], what: str, timeout: float) -> bool:
    try:
        wait_for(check, what, timeout, run.worker)
    except AssertionError:
        run.problems.append(f"timed out waiting for {what}")
        return False
    return True


def _nothing_new(before: list[tuple], after: list[tuple], what: str, out: Outcome) -> None:
    """A problem when ``after`` (records as (id, kind)) adds to ``before``, copies of a
    known id included."""
    added = after[len(before) :]
    if added:
        copies = sum(record in before for record in added)
        kinds = sorted({kind for _, kind in added})
        out.problems.append(
            f"{len(added)} new {what} after the restart ({copies} repeat an earlier id): {kinds}"
        )


def _alert_ids(seen: Seen) -> list[tuple]:
    return [(a.alert_id, a.kind) for a in seen.alerts]


def _event_ids(seen: Seen) -> list[tuple]:
    return [(e.event_id, e.type) for e in seen.log]


def restart_after_person(stack: Stack, size: Size, folder: Path) -> Outcome:
    """A person starts the rollout (phase 1, 50%) while traffic flows, the worker rolls
    the degrading candidate back to 0, the person starts it again; then the worker is
    killed (-9) and restarted with no new data: it must send no new alert and no new
    rollout event."""
    name = "worker kill -9 after a person restarted a rolled-back rollout"
    with running(stack, name, size, folder) as run:
        run.start()
        run.load("degrade", weight=None)  # the application at the log's weight: 0
        run.at(0.2)
        run.steer("phase_started", weight=50, phase=1)
        run.join_load()

        def rolled_back() -> bool:
            last = fold(run.rollout_log(), ROLLOUT).last
            return last is not None and last.actor == WORKER and not last.weight

        _waited(run, rolled_back, "the worker's rollback", 60)
        run.steer("phase_started", weight=50, phase=1)

        def follows() -> bool:
            status = run.worker.status() or {}
            return (status.get("control", {}).get(ROLLOUT) or {}).get("weight") == 50

        _waited(run, follows, "the worker to follow the person", 30)
        before = run.read()
        run.worker.stop(signal.SIGKILL)
        run.worker.start()
        recover = run.caught_up(run.sent.count, time.monotonic())
        time.sleep(5)  # ten flushes: room for what a replay would send
        out = run.outcome(recover)
        assert run.seen is not None
        events = run.seen.log
        _nothing_new(_alert_ids(before), _alert_ids(run.seen), "alerts", out)
        _nothing_new(_event_ids(before), _event_ids(run.seen), "rollout events", out)
        state = fold(events, ROLLOUT)
        out.notes.append(f"rollout log: {_weights(events)}; its fold: {state.weight}%")
        return out


SCENARIOS: dict[str, Scenario] = {
    "worker_kill": worker_kill,
    "sink_kill": sink_kill,
    "broker_restart": broker_restart,
    "worker_stop_broker_down": worker_stop_broker_down,
    "clickhouse_restart": clickhouse_restart,
    "broker_hang": broker_hang,
    "bad_input": bad_input,
    "webhooks": webhooks,
    "outage_at_phase_3": outage_at_phase_3,
    "restart_after_person": restart_after_person,
}

DURABLE = set(SCENARIOS) - {"bad_input"}
"""Scenarios on the durable broker (Tansu on s3rver with conditional writes); the others on
a broker in memory. Not the bad input: its many small batches outgrow what Tansu 0.6 on
s3 serves (each fetch lists every batch object of its partition; README, Fault
tolerance): at full size its producer timed out."""
