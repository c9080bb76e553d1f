"""Stored verdicts judge every metric on what it means, like the worker's live gates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from phasegate.cli import app
from schemas import RolloutEvent
from schemas.metrics import METRICS
from schemas.plan import Criterion, Phase
from schemas.verdict import judge
from sinks import render, rows
from sinks.history import History, Span
from sinks.migrations import migrate
from sinks.phase_report import blocks, phase_report
from sinks.rollups import FEEDBACK, RESULTS
from sinks.store import Store
from streams.aggregate import WindowStats
from tests.sinks.conftest import T0, make_result, point_cli_at
from tests.sinks.phase_data import HOUR, feedback, load


def test_a_latency_quantile_gate_fails_in_storage_as_it_does_live(
    store: Store, database: str, tmp_path, monkeypatch
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

    point_cli_at(store, database, monkeypatch, tmp_path)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[[phases]]\nname = "canary"\nweight = 50\n'
        'advance = [{ metric = "p99_latency_ms", max = 300 }]\n'
    )
    monkeypatch.setenv("PHASEGATE_PLAN", str(plan))
    md = CliRunner().invoke(app, ["report", "-r", "kai", "--phase", "1", "--format", "md"])
    assert md.exit_code == 0, md.output
    assert "Decision: FAIL." in md.output
    assert f"| p99_latency_ms <= 300 | {verdict.observed:.1f} |" in md.output


def test_every_metric_sql_reads_what_the_stored_verdict_observes(
    store: Store, database: str
) -> None:
    migrate(store, database)
    load(store, database, redelivered=False)
    stored = History(store, database, "kai")
    span = Span(T0, T0 + HOUR)
    side = stored.sides(span)["production"]
    for name, m in METRICS.items():
        family = FEEDBACK if m.feedback else RESULTS
        source, params = family.source(database, "kai", span.start, span.end)
        sql = f"SELECT {m.sql} FROM {source} WHERE system = 'production'"
        (value,) = store.query(sql, params).rows[0]
        assert value == pytest.approx(m.estimate(side).value, rel=1e-9), name


def test_a_report_waits_for_min_duration_and_marks_a_dry_run(store: Store, database: str) -> None:
    """Phase 1's stored hour: a pass held back by a 2-hour min_duration, with the time
    left; a failing dry-run criterion shown, marked and not counted."""
    migrate(store, database)
    load(store, database, redelivered=False)
    gate = Phase(
        name="a",
        weight=50,
        min_samples=1000,
        min_duration="2h",
        advance=[
            Criterion(metric="success_rate", min=0.9),
            Criterion(metric="success_rate", min=0.99, dry_run=True),
        ],
    )
    report = phase_report(store, database, "kai", 1, gate)
    bound, dry = report.verdicts
    assert (bound.outcome, bound.note) == ("inconclusive", "1h left of min_duration")
    assert (dry.outcome, dry.dry_run, dry.note) == ("fail", True, "dry-run")
    assert report.outcome == "inconclusive"
    md = render.markdown(blocks(report))
    assert "| dry-run |" in md and "1h left of min_duration" in md
    later = phase_report(store, database, "kai", 1, gate.model_copy(update={"min_duration": 3600}))
    assert later.outcome == "pass"  # the dry run's fail does not count
