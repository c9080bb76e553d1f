"""Confidence and feedback guardrails in stage 2: the candidate against the baseline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from phasegate.testing.guardrails import COMPLAINTS, CONFIDENCE, with_triggers
from schemas.events import Feedback
from schemas.plan import Plan, Trigger, load_plan
from streams.stage2 import control_json
from tests.streams.conftest import T0
from tests.streams.test_triggers import ROLLOUT, Harness, replay


def feedback_guardrail(metric: str) -> Trigger:
    return COMPLAINTS.model_copy(update={"metric": metric})


def with_guardrail(trigger: Trigger) -> Plan:
    return with_triggers(load_plan(), trigger)


def confident(h: Harness, mean: float):
    """Successful results with beta-distributed confidence of ``mean``."""
    return lambda i: {"confidence": h.rng.betavariate(12 * mean, 12 * (1 - mean))}


def confidences(h: Harness, batches: int, candidate: float, baseline: float) -> None:
    for _ in range(batches):
        h.batch(100, confident(h, candidate), baseline=confident(h, baseline))


def test_a_confidence_drop_against_the_baseline_rolls_back():
    h = Harness(plan=with_guardrail(CONFIDENCE))
    confidences(h, 30, 0.85, 0.85)
    assert h.out == []
    confidences(h, 40, 0.76, 0.85)
    (alert,) = h.alerts()
    (event,) = h.events()
    assert (alert.kind, alert.metric, alert.attribution) == (
        "guardrail",
        "mean_confidence",
        "candidate-specific",
    )
    assert alert.observed < alert.threshold < 0.85
    assert alert.threshold == pytest.approx(0.83, abs=0.02)  # the baseline's, less the margin
    figures = {f.system: f for f in alert.figures}
    assert figures["pipeline"].low < 0.85 < figures["pipeline"].high
    assert figures["production"].high < figures["pipeline"].low
    assert event.weight == 0 and "confidence-guardrail" in event.reason
    assert [a.alert_id for a in replay(h) if hasattr(a, "alert_id")] == [alert.alert_id]
    evidence = control_json(h.stage2, ROLLOUT)["evidence"]["confidence-guardrail"]
    assert evidence["score"] == evidence["threshold"]


def test_a_confidence_drop_both_systems_share_is_no_evidence():
    h = Harness(plan=with_guardrail(CONFIDENCE))
    confidences(h, 30, 0.85, 0.85)
    confidences(h, 40, 0.55, 0.55)
    confidences(h, 20, 0.85, 0.85)
    assert h.out == []
    evidence = control_json(h.stage2, ROLLOUT)["evidence"]["confidence-guardrail"]
    assert evidence["score"] < 1.0


def test_within_the_margin_it_stays_silent():
    h = Harness(plan=with_guardrail(CONFIDENCE))
    confidences(h, 30, 0.85, 0.85)
    confidences(h, 60, 0.84, 0.85)  # one point lower, the margin is two
    assert h.out == []


def verdicts(h: Harness, complaints: dict[str, float], per_system: int = 40) -> None:
    """A batch of results (both systems healthy), then ``per_system`` feedback verdicts
    of each system, ``complaints`` of them "incorrect" (the rest "correct")."""
    h.batch(100, h.success(1.0), baseline=h.success(1.0))
    events = []
    for system, share in complaints.items():
        for _ in range(per_system):
            verdict = "incorrect" if h.rng.random() < share else "correct"
            ts = T0 + timedelta(seconds=h.offset * 0.01)
            events.append(
                Feedback(rollout=ROLLOUT, query_id="q", system=system, verdict=verdict, ts=ts)
            )
            h.offset += 1
    h.send(events, h.offset - len(events))


@pytest.mark.parametrize("metric", ["complaint_rate", "feedback_positive_rate"])
def test_more_negative_feedback_than_the_baseline_rolls_back(metric):
    h = Harness(phase=2, weight=75, plan=with_guardrail(feedback_guardrail(metric)))
    for _ in range(30):
        verdicts(h, {"production": 0.1, "pipeline": 0.1})
    assert h.out == []
    for _ in range(40):
        verdicts(h, {"production": 0.4, "pipeline": 0.1})
    (alert,) = h.alerts()
    assert (alert.kind, alert.metric, alert.attribution) == (
        "guardrail",
        metric,
        "candidate-specific",
    )
    worse = (
        alert.observed > alert.threshold
        if metric == "complaint_rate"
        else alert.observed < alert.threshold
    )
    assert worse
    events = sum(f.samples for f in alert.figures)
    assert alert.samples < events < 1000  # feedback verdicts, not results
    assert [e.weight for e in h.events()] == [0]


def test_shared_complaints_are_no_evidence():
    h = Harness(phase=2, weight=75, plan=with_guardrail(feedback_guardrail("complaint_rate")))
    for _ in range(30):
        verdicts(h, {"production": 0.1, "pipeline": 0.1})
    for _ in range(40):
        verdicts(h, {"production": 0.4, "pipeline": 0.4})
    assert h.out == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "mean_confidence", "below": 0.8}, "no fixed-limit trigger"),
        ({"metric": "complaint_rate", "above": 0.1}, "no fixed-limit trigger"),
        ({"metric": "mean_latency_ms", "compare": "baseline"}, "Input should be"),
        ({"metric": "complaint_rate", "compare": "baseline", "bad_share": 0.2}, "take detect"),
        ({"metric": "mean_confidence", "compare": "baseline", "margin": 1.0}, "below 1"),
        (
            {
                "metric": "mean_confidence",
                "compare": "baseline",
                "margin": 0.5,
                "relative": True,
                "detect": 1.0,
            },
            "below 1",
        ),
        (
            {"metric": "mean_confidence", "compare": "baseline", "margin": 0.1, "detect": 0.05},
            "detect must exceed margin",
        ),
    ],
)
def test_a_metric_and_compare_without_a_test_is_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        Trigger(name="t", action="emergency", **fields)


def test_confidence_and_feedback_guardrails_are_accepted():
    relative = Trigger(
        name="t",
        action="partial",
        metric="mean_confidence",
        compare="baseline",
        margin=0.05,
        relative=True,
    )
    assert relative.worse(0.8) == pytest.approx(0.76)
    assert relative.detect_by == pytest.approx(0.10)
    assert feedback_guardrail("complaint_rate").worse(0.1) == pytest.approx(0.1)
