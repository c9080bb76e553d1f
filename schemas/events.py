"""Contract v1 events: result, feedback, rollout and alert (design.md, "Contract v1")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.base import ContractModel, EventId, Name, UtcDatetime, now

Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
Weight = Annotated[int, Field(ge=0, le=100)]
Text = Annotated[str, Field(max_length=4096)]
Rules = Annotated[list[Name], Field(max_length=256)]


class ErrorInfo(ContractModel):
    """What went wrong in one generation."""

    type: Name
    message: Text = ""
    critical: bool = False


class Result(ContractModel):
    """One generation by one system: the event the application emits per request."""

    schema_: Literal["phasegate.result/1"] = Field("phasegate.result/1", alias="schema")
    event_id: EventId
    ts: UtcDatetime = Field(default_factory=now)
    rollout: Name
    system: Name
    query_id: Name
    unit_id: Name
    success: bool
    confidence: Confidence
    latency_ms: Annotated[float, Field(ge=0.0, le=86_400_000.0)]
    error: ErrorInfo | None = None
    rules: Rules = []
    fallback: bool = False
    weight: Weight = 0
    segment: Name | None = None


Verdict = Literal["correct", "incorrect", "unsure"]


class Feedback(ContractModel):
    """A user's verdict on one answer; ``rules`` and ``segment``: the answer's, if the
    producer knows them (optional, added within ``/1``), for the alert to name them."""

    schema_: Literal["phasegate.feedback/1"] = Field("phasegate.feedback/1", alias="schema")
    event_id: EventId
    ts: UtcDatetime = Field(default_factory=now)
    rollout: Name
    query_id: Name
    system: Name
    verdict: Verdict
    comment: Text | None = None
    rules: Rules = []
    segment: Name | None = None


RolloutEventType = Literal["weight_set", "phase_started", "decision", "rollback"]


class RolloutEvent(ContractModel):
    """One entry of the rollout log; the current phase and weight are a fold over them."""

    schema_: Literal["phasegate.rollout/1"] = Field("phasegate.rollout/1", alias="schema")
    event_id: EventId
    ts: UtcDatetime = Field(default_factory=now)
    rollout: Name
    type: RolloutEventType
    weight: Weight | None = None
    phase: Annotated[int, Field(ge=0)] | None = None
    reason: Text = ""
    actor: Name = "unknown"


class AlertWindow(ContractModel):
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> AlertWindow:
        if self.end < self.start:
            raise ValueError("window end is before its start")
        return self


class AlertAction(ContractModel):
    weight_from: Weight
    weight_to: Weight


Severity = Literal["info", "warning", "critical"]
Attribution = Literal["candidate-specific", "shared", "baseline-only"]


class Figure(ContractModel):
    """One system's metric over an alert's window, with its 95% interval."""

    system: Name
    value: float
    low: float | None = None
    high: float | None = None
    samples: Annotated[int, Field(ge=0)] = 0


class Contributor(ContractModel):
    """A value (error type, rule, segment) the candidate's bad events concentrate on."""

    dimension: Literal["error_type", "rule", "segment"]
    value: Name
    candidate: Annotated[int, Field(ge=0)]  # the candidate's bad events with this value
    baseline: Annotated[int, Field(ge=0)]  # the baseline's, over the same windows
    expected: Annotated[float, Field(ge=0.0)] = 0.0  # the candidate's, at the baseline's rate
    counts: Name = "failures"  # what the figures count: the metric's bad (schemas.metrics)


class Alert(ContractModel):
    """A judgement on a window that somebody (or the Router) should act on."""

    schema_: Literal["phasegate.alert/1"] = Field("phasegate.alert/1", alias="schema")
    alert_id: EventId
    ts: UtcDatetime = Field(default_factory=now)
    rollout: Name
    system: Name
    severity: Severity
    kind: Name
    metric: Name
    observed: float
    threshold: float
    window: AlertWindow
    samples: Annotated[int, Field(ge=0)]
    action: AlertAction | None = None
    dry_run: bool = False  # judged and alerted, never acted on
    attribution: Attribution | None = None  # which systems degraded in the window
    figures: list[Figure] = []  # candidate and baseline over the window
    contributors: list[Contributor] = []  # where the candidate's bad events concentrate


__all__ = [
    "Alert",
    "AlertAction",
    "AlertWindow",
    "Attribution",
    "Contributor",
    "ErrorInfo",
    "Feedback",
    "Figure",
    "Result",
    "RolloutEvent",
]
