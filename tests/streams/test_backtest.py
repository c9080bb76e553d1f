"""The backtest's replay core on a synthetic history: no broker, no store."""

from __future__ import annotations

from datetime import timedelta

from rollout.state import WORKER
from schemas.events import RolloutEvent
from schemas.plan import load_plan
from streams.backtest import Findings, Stored, replay
from tests.streams.conftest import T0, make_result

ROLLOUT = "kai"
DROP = 150  # seconds after T0: the candidate drops from 98% to 70% success
CADENCE = {"window_seconds": 10, "flush_seconds": 1.0, "lateness": 10, "retention": 3600}


def history(seconds: int = 300, per_second: int = 20) -> list[Stored]:
    """Both systems at ``per_second`` each over two partitions, in event-time order."""
    out = []
    for i in range(seconds * per_second):
        at = i / per_second
        dropped = at >= DROP
        for system in ("pipeline", "production"):
            ok = i % 50 != 0 if system == "pipeline" or not dropped else i % 10 not in (0, 3, 6)
            result = make_result(i, system=system, success=ok, seconds=at, rollout=ROLLOUT)
            result = result.model_copy(update={"weight": 50, "query_id": f"{system}{i}"})
            out.append(Stored(("results", i % 2), result))
    return out


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
