"""Guardrails, attribution and dry runs on the default plan: shared causes never roll back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.plan import Trigger, load_plan
from streams.stage2 import control_json
from tests.streams.test_triggers import ROLLOUT, Harness, replay


def healthy(h: Harness, batches: int, rate: float = 0.97) -> None:
    for _ in range(batches):
        h.batch(100, h.success(rate), baseline=h.success(rate))


def test_a_shared_blip_is_held_and_alerted_as_shared():
    h = Harness(plan=load_plan())
    healthy(h, 30)
    healthy(h, 2, rate=0.6)  # both systems drop together for 4 seconds
    healthy(h, 30)
    assert h.events() == []  # no rollback
    (alert, recovered) = h.alerts()
    assert recovered.kind == "recovered"
    assert (alert.kind, alert.severity, alert.attribution) == (
        "rollback_held",
        "critical",
        "shared",
    )
    assert alert.action is None and not alert.dry_run
    figures = {f.system: f for f in alert.figures}
    assert set(figures) == {"production", "pipeline"}
    assert figures["pipeline"].value < 0.9 and figures["pipeline"].samples > 0
    assert figures["pipeline"].low < figures["pipeline"].value < figures["pipeline"].high


def test_a_candidate_only_drop_is_rolled_back_as_candidate_specific():
    h = Harness(plan=load_plan())
    healthy(h, 30)
    for _ in range(25):
        h.batch(100, h.success(0.80), baseline=h.success(0.97))
    alert = h.alerts()[0]
    assert (alert.kind, alert.attribution) == ("emergency_rollback", "candidate-specific")
    assert [e.weight for e in h.events()] == [0]


def test_a_candidate_at_93_5_is_caught_by_the_guardrail_only():
    """Above the 90% limit, so the fixed trigger is silent; 3.5 points under the baseline."""
    h = Harness(plan=load_plan())
    healthy(h, 30)
    for _ in range(60):
        h.batch(100, h.success(0.935), baseline=h.success(0.97))
    (alert,) = h.alerts()
    (event,) = h.events()
    assert (alert.kind, alert.metric, alert.attribution) == (
        "guardrail",
        "success_rate",
        "candidate-specific",
    )
    assert alert.observed < alert.threshold < 0.97
    assert (alert.action.weight_from, alert.action.weight_to) == (50, 0)
    assert event.weight == 0 and "success-guardrail" in event.reason
    assert [a.alert_id for a in replay(h) if hasattr(a, "alert_id")] == [alert.alert_id]


def test_a_shared_outage_does_not_move_the_guardrails():
    h = Harness(plan=load_plan())
    healthy(h, 30)
    healthy(h, 60, rate=0.85)
    assert h.events() == []
    assert [(a.kind, a.attribution) for a in h.alerts()] == [("rollback_held", "shared")]
    evidence = control_json(h.stage2, ROLLOUT)["evidence"]
    assert evidence["success-guardrail"]["score"] < evidence["success-guardrail"]["threshold"]


def test_on_shared_rollback_rolls_back_on_a_shared_outage_anyway():
    """The plan's other choice for a shared cause: the same outage as above, rolled back."""
    plan = load_plan()
    anyway = [
        t.model_copy(update={"on_shared": "rollback"}) if t.name == "success-emergency" else t
        for t in plan.rollback
    ]
    h = Harness(plan=plan.model_copy(update={"rollback": anyway}))
    healthy(h, 30)
    healthy(h, 60, rate=0.85)
    (alert,) = h.alerts()
    assert (alert.kind, alert.attribution) == ("emergency_rollback", "shared")
    assert (alert.action.weight_from, alert.action.weight_to) == (50, 0)
    assert [e.weight for e in h.events()] == [0]


def test_a_latency_regression_against_the_baseline_steps_back():
    """P95 +50% against a baseline of the same shape, far under the fixed 250 ms limit."""
    h = Harness(phase=2, weight=75, plan=load_plan())
    for _ in range(30):
        h.batch(100, h.latency(60), baseline=h.latency(60))
    for _ in range(40):
        h.batch(100, h.latency(90), baseline=h.latency(60))
    (alert,) = h.alerts()
    assert (alert.kind, alert.metric) == ("guardrail", "p95_latency_ms")
    assert alert.observed > alert.threshold and alert.observed < 250
    assert [(e.weight, e.phase) for e in h.events()] == [(50, 1)]


def test_a_dry_run_trigger_alerts_and_never_acts():
    plan = load_plan()
    dry = [t.model_copy(update={"dry_run": True}) for t in plan.rollback]
    h = Harness(plan=plan.model_copy(update={"rollback": dry}))
    healthy(h, 30)
    for _ in range(20):
        h.batch(100, h.success(0.80), baseline=h.success(0.97))
    alerts = h.alerts()
    assert alerts and all(a.dry_run and a.action is None for a in alerts)
    assert {a.kind for a in alerts} >= {"emergency_rollback"}
    assert h.events() == []
    status = control_json(h.stage2, ROLLOUT)
    assert "success-emergency" in status["incidents"]
    assert status["evidence"]["success-emergency"]["dry_run"] is True


def test_a_baseline_only_drop_warns_and_never_acts():
    h = Harness(plan=load_plan())
    healthy(h, 30)
    for _ in range(20):
        h.batch(100, h.success(0.97), baseline=h.success(0.75))
    assert h.events() == []
    (alert,) = h.alerts()
    assert (alert.kind, alert.system, alert.severity, alert.attribution) == (
        "baseline_degraded",
        "pipeline",
        "warning",
        "baseline-only",
    )
    assert alert.action is None and alert.observed < 0.9
    healthy(h, 30)
    assert [a.kind for a in h.alerts()] == ["baseline_degraded", "recovered"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "success_rate", "compare": "baseline", "below": 0.9}, "not below/above"),
        ({"metric": "success_rate", "below": 0.9, "margin": 0.01}, "need compare"),
        (
            {"metric": "success_rate", "compare": "baseline", "margin": 0.02, "detect": 0.01},
            "detect",
        ),
        ({"metric": "critical_errors", "compare": "baseline"}, "no baseline comparison"),
        ({"metric": "p95_latency_ms", "compare": "baseline", "detect": 0.5}, "bad_share"),
    ],
)
def test_a_guardrail_takes_margins_not_limits(fields, message):
    with pytest.raises(ValidationError, match=message):
        Trigger(name="t", action="emergency", **fields)


def test_the_false_alarm_budget_is_shared_by_every_statistical_trigger():
    """h = ln(horizon / min_samples x triggers / false_alarm), the four of the default plan
    (two fixed-limit, two guardrails) counted in each: 19.8, 15.2 and 14.5 as documented."""
    plan = load_plan()
    h = Harness(plan=plan)
    healthy(h, 30)
    evidence = control_json(h.stage2, ROLLOUT)["evidence"]
    assert len(plan.statistical_triggers) == 4
    names = ("success-emergency", "latency-partial", "success-guardrail", "latency-guardrail")
    shown = {name: round(evidence[name]["threshold"], 1) for name in names}
    assert shown == {
        "success-emergency": 19.8,
        "latency-partial": 19.8,
        "success-guardrail": 15.2,
        "latency-guardrail": 14.5,
    }
