"""``phasegate evaluate --last N`` compares exactly the newest N results, on both stores."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas import Feedback, Result
from schemas.plan import Roles
from sinks import rows
from sinks.evaluate import evaluate
from sinks.migrations import migrate
from sinks.store import Store
from tests.sinks.conftest import T0, make_result

SECOND = T0 + timedelta(seconds=1)


@pytest.fixture(scope="module")
def loaded(shared_store: Store, shared_database: str) -> list[Result]:
    """1,000 pipeline results without errors in one second, then 2,000 of both systems in
    the next, four to a millisecond; the newest 100 inserted twice (past the ledger)."""
    ok = {"success": True, "error": None, "fallback": False}
    earlier = [make_result(i, "pipeline", ts=T0, **ok) for i in range(1000)]
    later = [
        make_result(
            i, ("pipeline", "production")[i % 2], ts=SECOND + timedelta(milliseconds=i // 4)
        )
        for i in range(1000, 3000)
    ]
    verdicts = [
        Feedback(rollout="kai", query_id="q2999", system="production", verdict="correct"),
        Feedback(rollout="kai", query_id="q0", system="pipeline", verdict="incorrect"),
    ]
    migrate(shared_store, shared_database)
    shared_store.insert(f"{shared_database}.results", rows.result_columns(earlier + later))
    shared_store.insert(f"{shared_database}.feedback", rows.feedback_columns(verdicts))
    shared_store.insert(f"{shared_database}.results", rows.result_columns(later[-100:]))
    return earlier + later


@pytest.mark.parametrize("last", [1, 500, 1999, 2000, 2500, 5000])
def test_the_newest_n_results_exactly(
    shared_store: Store, shared_database: str, loaded, last: int
) -> None:
    ev = evaluate(shared_store, shared_database, "kai", last, Roles())
    counts = {system: side.results.events for system, side in ev.sides.items()}
    assert sum(counts.values()) == min(last, 3000)
    if last >= 2000:  # the whole later second, and the rest from the earlier one
        assert counts == {"production": 1000, "pipeline": min(last, 3000) - 1000}
        errors = sum(e.count for e in ev.errors)
        assert errors == sum(r.error is not None for r in loaded) > 0
    assert ev.since == (SECOND if last <= 2000 else T0)
    # the feedback on the chosen results only (q0 is among them from 3,000 on, and maybe
    # from 2,001: results of one instant are chosen by event id)
    feedback = {system: side.feedback for system, side in ev.sides.items() if side.feedback}
    if last >= 2000:
        assert feedback["production"] == {"correct": 1}
    if last >= 3000:
        assert feedback["pipeline"] == {"incorrect": 1}
    elif last <= 2000:
        assert "pipeline" not in feedback
