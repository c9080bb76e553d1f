"""``phasegate backtest`` on stored history: read in batches, in event-time order, on both
stores; the command's table, JSON and HTML."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources
from uuid import uuid4

import pytest
from typer.testing import CliRunner

from phasegate.cli import app
from rollout.state import WORKER
from schemas.alert_text import why
from schemas.plan import DEFAULT_PLAN, load_plan
from schemas.settings import Settings
from sinks import ddl, rows
from sinks.backtest import backtest, batches, live_alerts
from sinks.history import Span
from sinks.migrations import migrate
from sinks.store import Store
from streams.backtest import Stored, replay
from streams.triggers import GRACE
from tests.sinks.conftest import point_cli_at
from tests.streams.conftest import T0
from tests.streams.test_backtest import CADENCE, DROP, RESUME, history, person, resuming

CADENCE_ENV = {
    "PHASEGATE_WINDOW_SECONDS": "10",
    "PHASEGATE_FLUSH_SECONDS": "1",
    "PHASEGATE_LATENESS_SECONDS": "10",
}


START = person("phase_started", -5, weight=50, phase=1)
LIVE_ROLLBACK = person("rollback", 30, weight=0, phase=0).model_copy(update={"actor": WORKER})


def _store_events(store: Store, database: str, events: list[Stored] | None = None) -> list[Stored]:
    """The synthetic history (``events``, else :func:`history`) and its log (with a
    rollback by the live worker that the backtest leaves out), stored as the sink would
    (partition, offset)."""
    migrate(store, database)
    events = history() if events is None else events
    results = [s.event for s in events]
    columns = rows.result_columns(results)
    columns["kafka_partition"] = [s.source[1] for s in events]
    columns["kafka_offset"] = list(range(len(events)))
    store.insert(f"{database}.results", columns)
    store.insert(f"{database}.rollout_events", rows.rollout_columns([START, LIVE_ROLLBACK]))
    return events


def _as_stored(store: Store, events: list[Stored]) -> list[Stored]:
    """``events`` with their time as the store keeps it (whole seconds before 20.1)."""
    if store.version >= ddl.DATETIME64:
        return events
    floor = [s.event.ts.replace(microsecond=0) for s in events]
    return [
        Stored(s.source, s.event.model_copy(update={"ts": ts}))
        for s, ts in sorted(zip(events, floor, strict=True), key=lambda p: p[1])
    ]


def _key(alert) -> tuple:
    action = alert.action and (alert.action.weight_from, alert.action.weight_to)
    return alert.alert_id, alert.kind, alert.window.start, alert.window.end, action


def test_batches_are_runs_of_whole_minutes_a_busy_minute_alone() -> None:
    at = int(T0.timestamp())
    counts = [(at, 40), (at + 60, 50), (at + 180, 500), (at + 240, 10)]
    spans = batches(counts, 100, Span(None, T0 + timedelta(seconds=250)))
    edges = [(s.start - T0, s.end - T0) for s in spans]
    minute = timedelta(seconds=60)
    assert edges == [
        (0 * minute, 2 * minute),
        (3 * minute, 4 * minute),
        (4 * minute, 250 * minute / 60),
    ]


def test_stored_history_replays_as_the_core_does(store: Store, database: str) -> None:
    events = _store_events(store, database)
    settings = Settings(database=database, window_seconds=10, flush_seconds=1.0)
    settings = settings.model_copy(update={"lateness_seconds": 10})
    plan = load_plan()
    progress: list[tuple[int, int]] = []
    findings = backtest(
        store, settings, plan, "kai", rows=2_000, on_progress=lambda *p: progress.append(p)
    )
    assert findings.events == len(events)
    assert len(progress) > 3 and progress[-1] == (len(events), len(events))
    (alert,) = [a for a in findings.alerts if a.kind == "emergency_rollback"]
    assert alert.window.start == T0 + timedelta(seconds=DROP)
    assert (alert.action.weight_from, alert.action.weight_to) == (50, 0)  # live's not folded
    core = replay(plan, "kai", [START], _as_stored(store, events), **CADENCE)
    assert [_key(a) for a in findings.alerts] == [_key(a) for a in core.alerts]


def test_since_and_until_bound_the_replay(store: Store, database: str) -> None:
    _store_events(store, database)
    settings = Settings(database=database, window_seconds=10, flush_seconds=1.0)
    since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=DROP - 10)
    findings = backtest(store, settings, load_plan(), "kai", Span(since, until))
    assert findings.events == 2 * 20 * (DROP - 20)
    assert not [a for a in findings.alerts if a.kind == "emergency_rollback"]


def test_a_range_that_ends_while_a_trigger_waits_reads_the_grace_after_it(
    store: Store, database: str
) -> None:
    """The range ends right after the candidate's trigger fired, waiting for the baseline:
    the stored events of the GRACE after the end release it as live (held: the baseline
    fails too), as the core does given them."""
    events = _as_stored(store, _store_events(store, database, resuming()))
    settings = Settings(database=database, window_seconds=10, flush_seconds=1.0)
    settings = settings.model_copy(update={"lateness_seconds": 10})
    end = T0 + timedelta(seconds=RESUME)
    findings = backtest(store, settings, load_plan(), "kai", Span(None, end))
    (alert,) = findings.alerts
    assert (alert.kind, alert.attribution, findings.actions) == ("rollback_held", "shared", [])
    within = [s for s in events if s.event.ts < end]
    assert findings.events == len(within)
    after = [s for s in events if end <= s.event.ts < end + timedelta(seconds=GRACE)]
    core = replay(load_plan(), "kai", [START], within, after, **CADENCE)
    assert [(_key(a), a.ts) for a in findings.alerts] == [(_key(a), a.ts) for a in core.alerts]

    # the live worker stored it after the end too: the report finds it by its id, but not
    # an alert the later events raised on their own
    later = alert.ts + timedelta(seconds=1)
    own = alert.model_copy(update={"alert_id": uuid4(), "kind": "critical_error"})
    stored = [a.model_copy(update={"ts": later}) for a in (alert, own)]
    store.insert(f"{database}.alerts", rows.alert_columns(stored))
    span = Span(None, end)
    assert live_alerts(store, database, "kai", span) == {}
    assert live_alerts(store, database, "kai", span, findings.alerts) == {
        alert.alert_id: "rollback_held"
    }


def test_the_command_prints_json_and_writes_html_beside_the_live_alerts(
    store: Store, database: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _store_events(store, database)
    found = replay(load_plan(), "kai", [START], events, **CADENCE).alerts
    (fired,) = [a for a in found if a.kind == "emergency_rollback"]  # and the guardrail
    gone = fired.model_copy(update={"alert_id": uuid4(), "kind": "partial_rollback"})
    store.insert(f"{database}.alerts", rows.alert_columns([fired, gone]))  # as if live
    point_cli_at(store, database, monkeypatch, tmp_path)
    for name, value in CADENCE_ENV.items():
        monkeypatch.setenv(name, value)
    plan = tmp_path / "plan.toml"
    plan.write_text((resources.files("schemas") / "plans" / DEFAULT_PLAN).read_text("utf-8"))
    html = tmp_path / "bt.html"
    args = ["backtest", "-r", "kai", "--plan", str(plan), "--html", str(html), "--json"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert [(a["kind"], a["live"]) for a in doc["alerts"]] == [
        ("emergency_rollback", True),
        ("guardrail", False),
    ]
    assert doc["live_only"] == [{"alert_id": str(gone.alert_id), "kind": "partial_rollback"}]
    assert doc["actions"][0]["weight"] == 0
    score = doc["scores"]["success-emergency"]
    assert max(s for _, s in score["points"]) == score["threshold"]
    assert datetime.fromisoformat(doc["gates"][0]["at"]) >= T0
    page = html.read_text()
    assert page.count("<svg") == len(doc["scores"]) and "success-emergency" in page

    table = CliRunner().invoke(app, ["backtest", "-r", "kai"])
    assert table.exit_code == 0, table.output
    assert "| yes | 2026-01-01 00:02:" in table.stdout
    assert "| emergency_rollback [candidate-specific] | success_rate |" in table.stdout
    assert "50 -> 0" in table.stdout and f"| {why(fired)} |" in table.stdout
    assert "The live run stored 2 alerts: 1 raised here too, 1 not; 1 raised here only." in (
        table.stdout
    )


def test_a_rollout_without_history_is_an_error(
    store: Store, database: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(store, database)
    point_cli_at(store, database, monkeypatch, tmp_path)
    done = CliRunner().invoke(app, ["backtest", "-r", "nobody"])
    assert done.exit_code == 1
    assert "no results or feedback for rollout 'nobody'" in done.output
