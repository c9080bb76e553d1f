"""Stored verdicts judge every metric on what it means, like the worker's live gates."""

from __future__ import annotations

from datetime import timedelta

from schemas import RolloutEvent
from schemas.plan import Criterion, Phase
from sinks import rows
from sinks.migrations import migrate
from sinks.phase_report import phase_report
from sinks.store import Store
from streams.aggregate import WindowStats
from streams.gates import judge
from tests.sinks.conftest import T0, make_result
from tests.sinks.phase_data import feedback


def test_a_latency_quantile_gate_fails_in_storage_as_it_does_live(
    store: Store, database: str
) -> None:
    migrate(store, database)
    results = [make_result(i, latency_ms=900.0, success=True, error=None) for i in range(1200)]
    start = RolloutEvent(rollout="kai", type="phase_started", phase=1, weight=50, ts=T0)
    store.insert(f"{database}.results", rows.result_columns(results))
    store.insert(f"{database}.rollout_events", rows.rollout_columns([start]))
    answers = feedback("production", T0, correct=57, incorrect=3)  # what it was judged on
    store.insert(f"{database}.feedback", rows.feedback_columns(answers))
    gate = Phase(name="canary", weight=50, advance=[Criterion(metric="p99_latency_ms", max=300)])
    live = WindowStats()
    for result in results:
        live.update(result)

    stored = phase_report(store, database, "kai", 1, gate, until=T0 + timedelta(hours=1))
    (verdict,) = stored.verdicts
    (worker,) = [judge(c, gate, live) for c in gate.advance]
    assert (worker.outcome, verdict.outcome) == ("fail", "fail")
    assert abs(verdict.observed - 900) <= 9 and abs(worker.observed - 900) <= 9
