"""A realistic ``/status`` dict built through the real stage 1 and stage 2 code (no broker).

Used by the tests of everything that reads ``/status``: ``/metrics``, ``phasegate watch``
and the dashboard. Two systems over ten one-minute windows: the baseline succeeds 97% of
the time, the candidate 88% (with one critical error), both with rules and feedback; the worker's
control section judges phase 1 of the default plan on them (the real gate code).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rollout.state import RolloutState
from schemas.events import ErrorInfo, Feedback, Result, RolloutEvent
from schemas.plan import Criterion, Plan, load_plan
from streams.gates import evaluate
from streams.status import view_json
from streams.windows import PartitionAccumulator, RolloutView
from tests.streams.conftest import T0

PER_SYSTEM = 400
RULES = ("greeting", "billing", "escalate")


def _result(i: int, system: str, rollout: str) -> Result:
    bad = (i % 100) < (3 if system == "pipeline" else 12)
    kind = ("timeout", "model_error")[i % 2]
    return Result(
        rollout=rollout,
        system=system,
        query_id=f"{system}-{i}",
        unit_id=f"u{i}",
        ts=T0 + timedelta(seconds=i * 600 / PER_SYSTEM),
        success=not bad,
        confidence=0.8 if system == "pipeline" else 0.9,
        latency_ms=100.0 + (i % 50) * (2 if system == "pipeline" else 3),
        error=ErrorInfo(type=kind, critical=system == "production" and i == 11) if bad else None,
        rules=list(RULES[: 1 + i % 3]),
        weight=50,
    )


def trial_plan() -> Plan:
    """The default plan whose phase 1 must last 14 days, with one easy criterion (a pass
    that waits for ``min_duration``) and one tried as a dry run (it fails)."""
    plan = load_plan()
    easy = Criterion(metric="success_rate", min=0.5)
    tried = Criterion(metric="success_rate", min=0.999, dry_run=True)
    changes = {"min_duration": 14 * 86400, "min_samples": 100, "advance": [easy, tried]}
    first = plan.phases[0].model_copy(update=changes)
    return plan.model_copy(update={"phases": [first, *plan.phases[1:]]})


def sample_status(
    rollout: str = "kai-response", spans: tuple[int, ...] = (300, 900), plan: Plan | None = None
) -> dict[str, Any]:
    """``GET /status`` of a worker with ``plan`` (default: the packaged one) that has seen
    the sample traffic of ``rollout``."""
    acc = PartitionAccumulator("results", 0, window_seconds=60, lateness=3600)
    now = T0.timestamp() + 600
    offset = 0
    for system in ("pipeline", "production"):
        for i in range(PER_SYSTEM):
            acc.add(offset, _result(i, system, rollout), now)
            offset += 1
            if i % 10 == 0:
                verdict = "correct" if i % 30 else "incorrect"
                fb = Feedback(
                    rollout=rollout,
                    query_id=f"{system}-{i}",
                    system=system,
                    verdict=verdict,
                    ts=T0 + timedelta(seconds=i),
                )
                acc.add(offset, fb, now)
                offset += 1
    view = RolloutView(rollout, 60)
    for partial in acc.drain():
        view.apply(partial)
    state = RolloutState(rollout).apply(
        RolloutEvent(rollout=rollout, type="phase_started", phase=1, weight=50, ts=T0)
    )
    report, _ = evaluate(plan or load_plan(), view, state)
    assert report is not None
    return {
        "counters": {
            "results": 2 * PER_SYSTEM,
            "feedback": 80,
            "dead_letters": 1,
            "partials": 40,
            "alerts": 2,
        },
        "assignment": ["t.results:0", "t.results:1"],
        "rollouts": {rollout: view_json(view, list(spans), "pipeline", "production")},
        "control": {
            rollout: {
                "phase": 1,
                "weight": 50,
                "gates": report.to_json(),
                "incidents": ["critical-error"],
                "evidence": {"success-emergency": {"score": 2.5, "threshold": 18.4, "run": 400}},
            }
        },
    }
