"""A simulated two-phase rollout with known numbers, for the phase report tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from schemas import Alert, AlertWindow, ErrorInfo, Feedback, Result, RolloutEvent
from schemas.events import Contributor, Figure
from sinks import rows
from sinks.store import Store
from tests.sinks.conftest import T0

HOUR = timedelta(hours=1)


def results(system: str, start, count: int, success_pct: int, latency: float) -> list[Result]:
    """``count`` results spread over an hour; ``success_pct`` of every 100 succeed."""
    out = []
    for i in range(count):
        ok = i % 100 < success_pct
        flaky = not ok or i % 10 == 0  # the rule behind every failure: the worst
        rules = ["greeting", "lookup"] + (["flaky"] if flaky else [])
        out.append(
            Result(
                rollout="kai",
                system=system,
                ts=start + timedelta(seconds=i * 3600 / count),
                query_id=f"{system}-{start:%H}-{i}",
                unit_id=f"u{i % 50}",
                success=ok,
                confidence=0.80 + (i % 10) / 100,
                latency_ms=latency + (i % 21) - 10,
                error=None if ok else ErrorInfo(type="timeout" if i % 2 else "parse"),
                rules=rules,
                weight=50,
                segment="en" if i % 3 == 0 else "de",
            )
        )
    return out


def feedback(system: str, start, correct: int, incorrect: int) -> list[Feedback]:
    verdicts = ["correct"] * correct + ["incorrect"] * incorrect
    return [
        Feedback(
            rollout="kai",
            system=system,
            query_id=f"f{i}",
            verdict=v,
            ts=start + timedelta(seconds=10 * i),
        )
        for i, v in enumerate(verdicts)
    ]


@dataclass
class Rollout:
    phase1: list[Result]
    phase2: list[Result]
    feedback1: list[Feedback]
    feedback2: list[Feedback]
    log: list[RolloutEvent]
    alerts: list[Alert]


def alert(start, contributors: list[Contributor], **changes) -> Alert:
    """A step-back alert raised at ``start`` over the 10 minutes before it."""
    return Alert(
        **changes,
        ts=start,
        rollout="kai",
        system="production",
        severity="warning",
        kind="partial_rollback",
        metric="success_rate",
        observed=0.94,
        threshold=0.95,
        window=AlertWindow(start=start - timedelta(minutes=10), end=start),
        samples=250,
        contributors=contributors,
    )


def build() -> Rollout:
    """Phase 1 (50%) for an hour, then phase 2 (75%) for an hour."""
    return Rollout(
        phase1=results("production", T0, 1200, 97, 150.0)
        + results("pipeline", T0, 1200, 96, 180.0),
        phase2=results("production", T0 + HOUR, 1500, 94, 152.0)
        + results("pipeline", T0 + HOUR, 500, 96, 180.0),
        feedback1=feedback("production", T0, 45, 15),
        feedback2=feedback("production", T0 + HOUR, 30, 10),
        log=[
            RolloutEvent(rollout="kai", type="phase_started", phase=1, weight=50, ts=T0),
            RolloutEvent(rollout="kai", type="phase_started", phase=2, weight=75, ts=T0 + HOUR),
            RolloutEvent(rollout="kai", type="weight_set", weight=60, ts=T0 + HOUR * 1.5),
        ],
        alerts=[
            alert(T0 + HOUR * 0.5, []),
            alert(
                T0 + HOUR * 1.5,
                [
                    Contributor(
                        dimension="rule", value="flaky", candidate=15, baseline=2, expected=4.2
                    )
                ],
                dry_run=True,
                attribution="candidate-specific",
                figures=[
                    Figure(system="production", value=0.94, low=0.91, high=0.96, samples=250),
                    Figure(system="pipeline", value=0.96, low=0.93, high=0.98, samples=90),
                ],
            ),
        ],
    )


def load(store: Store, database: str, redelivered: bool = True) -> Rollout:
    """``build()``'s events stored; ``redelivered``: 300 results twice, inserted by hand
    past the sink's ledger (only reports read ``FINAL`` count them once)."""
    data, db = build(), database
    store.insert(f"{db}.results", rows.result_columns(data.phase1 + data.phase2))
    if redelivered:
        store.insert(f"{db}.results", rows.result_columns(data.phase2[:300]))
    store.insert(f"{db}.feedback", rows.feedback_columns(data.feedback1 + data.feedback2))
    store.insert(f"{db}.rollout_events", rows.rollout_columns(data.log))
    store.insert(f"{db}.alerts", rows.alert_columns(data.alerts))
    return data
