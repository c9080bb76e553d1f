"""The alert kinds: every trigger of the plan that can roll back raises a kind of
``ROLLBACK_KINDS`` when it would, and none when it holds or has nowhere to go."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from phasegate.testing.guardrails import COMPLAINTS, CONFIDENCE
from schemas.alert_text import headline
from schemas.events import Alert, AlertWindow
from schemas.internal import Partial
from schemas.plan import load_plan
from streams.aggregate import WindowStats
from streams.alerts import (
    FIXED_ROLLBACK_KINDS,
    GATE_FAILED,
    HELD,
    ROLLBACK_KINDS,
    Alerts,
    kind,
    rollback_reason,
)
from streams.baseline_watch import Degraded
from streams.windows import RolloutView, to_datetime


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


def _window(view: RolloutView, system: str, start: int, failures: int, events: int) -> None:
    stats = WindowStats()
    stats.count, stats.successes = events, events - failures
    view.apply(
        Partial(
            rollout="kai",
            system=system,
            window_start=to_datetime(start),
            window_seconds=60,
            source_topic=f"results-{system}",
            partition=0,
            first_offset=0,
            last_offset=events - 1,
            stats=stats.to_state(),
        )
    )


def test_a_baseline_alert_on_a_shared_blip_is_judged_on_the_moments_that_fired_it():
    # A/A with shared 8 s blips to 60%, 10 events/s, seed 2: the baseline's emergency ran
    # from the blip's first second (31 s into its window) and fired 6 s later, on 33
    # failures of 71 events; the candidate had 24 of 61 in those moments, but over the
    # window so far 32 of 377, against its 250 of 5,957 before: "baseline-only"
    plan = load_plan()
    emergency = next(t for t in plan.rollback if t.name == "success-emergency")
    view, start = RolloutView("kai", 60), 1767226920
    _window(view, "production", start - 60, 250, 5957)
    _window(view, "production", start, 32, 377)
    _window(view, "pipeline", start, 42, 390)
    d = Degraded(emergency, start, start, 33 / 71, 71, False, start + 31.0, start + 37.0)
    alerts = Alerts("kai", plan, 60)
    assert alerts.shared(view, d, read=((24, 61), (33, 71)))
