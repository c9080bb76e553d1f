"""The alert kinds: every trigger of the plan that can roll back raises a kind of
``ROLLBACK_KINDS`` when it would, and none when it holds or has nowhere to go."""

from __future__ import annotations

from schemas.plan import load_plan
from streams.alerts import FIXED_ROLLBACK_KINDS, GATE_FAILED, HELD, ROLLBACK_KINDS, kind


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
