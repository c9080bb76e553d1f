"""The alert kinds: every trigger of the plan that can roll back raises a kind of
``ROLLBACK_KINDS`` when it would, and none when it holds or has nowhere to go."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from phasegate.testing.guardrails import COMPLAINTS, CONFIDENCE
from schemas.alert_text import headline
from schemas.events import Alert, AlertWindow
from schemas.plan import load_plan
from streams.alerts import (
    FIXED_ROLLBACK_KINDS,
    GATE_FAILED,
    HELD,
    ROLLBACK_KINDS,
    kind,
    rollback_reason,
)


def test_every_trigger_that_rolls_back_raises_a_rollback_kind():
    plan = load_plan()
    for trigger in plan.rollback:
        acting = kind(trigger, would=True, held=False)
        assert acting in ROLLBACK_KINDS, trigger.name
        assert (acting in FIXED_ROLLBACK_KINDS) == (not trigger.guardrail), trigger.name
        assert kind(trigger, would=True, held=True) == HELD
    partial = next(t for t in plan.rollback if t.action == "partial" and not t.guardrail)
    assert kind(partial, would=False, held=False) == GATE_FAILED
    assert {HELD, GATE_FAILED}.isdisjoint(ROLLBACK_KINDS)


def test_a_feedback_alert_says_its_samples_are_verdicts():
    assert rollback_reason(COMPLAINTS, 0.3, 80).endswith("over 80 verdicts")
    assert rollback_reason(CONFIDENCE, 0.7, 800).endswith("over 800 events")
    alert = Alert(
        alert_id=uuid4(),
        rollout="kai",
        system="production",
        severity="critical",
        kind="guardrail",
        metric="complaint_rate",
        observed=0.3,
        threshold=0.0,
        window=AlertWindow(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime.now(UTC)),
        samples=80,
    )
    assert "complaint_rate 0.3 (limit 0) over 80 verdicts" in headline(alert)
    assert "over 80 events" in headline(alert.model_copy(update={"metric": "success_rate"}))
