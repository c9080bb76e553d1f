"""How a fault run counts the worker's rollbacks: every alert that acts, whatever its
trigger, against the worker's rollback events (no stack needed)."""

from __future__ import annotations

from phasegate.testing.faults.outcome import Outcome
from phasegate.testing.faults.run import judge_rollbacks
from rollout.state import WORKER
from schemas.events import Alert, AlertAction, RolloutEvent
from tests.dashboard.test_feeds import alert as an_alert


def alert(kind: str, acts: bool, dry_run: bool = False) -> Alert:
    action = AlertAction(weight_from=50, weight_to=0) if acts else None
    return an_alert(kind=kind).model_copy(update={"action": action, "dry_run": dry_run})


def rollback() -> RolloutEvent:
    return RolloutEvent(rollout="kai", type="rollback", weight=0, phase=0, actor=WORKER)


def judged(alerts: list[Alert], log: list[RolloutEvent]) -> Outcome:
    out = Outcome("judge")
    judge_rollbacks(alerts, log, out)
    return out


def test_a_guardrail_that_rolls_back_is_a_rollback():
    out = judged([alert("guardrail", acts=True)], [rollback()])
    assert (out.rollbacks, out.problems) == (1, [])


def test_a_trigger_firing_after_the_rollback_has_nothing_left_to_roll_back():
    first, after = alert("emergency_rollback", acts=True), alert("guardrail", acts=False)
    out = judged([first, first, after], [rollback()])  # a replayed copy keeps its id
    assert (out.rollbacks, out.problems) == (1, [])


def test_a_dry_run_or_a_held_rollback_is_no_rollback():
    dry, held = alert("emergency_rollback", False, dry_run=True), alert("rollback_held", False)
    assert (judged([dry, held], []).rollbacks, judged([dry, held], []).problems) == (0, [])


def test_an_alert_that_acts_needs_its_rollback_event():
    out = judged([alert("critical_error", acts=True)], [])
    assert out.rollbacks == 1 and out.problems == ["0 rollback events for 1 alerts"]
