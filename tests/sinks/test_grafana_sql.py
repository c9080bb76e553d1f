"""Every SQL query of the Grafana dashboard runs, with rows, on ClickHouse 18.16 and chdb.

Grafana's macros are replaced as the ClickHouse plugin expands them
(``$__timeFilter(c)`` -> ``c >= toDateTime(from) AND c <= toDateTime(to)``), the rollout
variable by a literal, and the tables are qualified with the test's database.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest

from schemas.events import Alert, AlertWindow
from sinks import rows
from sinks.migrations import migrate
from sinks.store import Store
from tests.deploy.test_grafana import load_dashboard, panel_queries
from tests.sinks.conftest import T0
from tests.sinks.phase_data import HOUR, Rollout, build

FROM, TO = T0, T0 + 3 * HOUR
TABLE = (
    r"\b(FROM|JOIN)\s+((?:results|rules|errors|feedback)_1[mh]"
    r"|results|feedback|alerts|rollout_events)\b"
)
QUERIES = panel_queries(load_dashboard())


def expand(sql: str, database: str) -> str:
    """The SQL the plugin would send for the rollout ``kai`` over [FROM, TO]."""
    start, end = f"toDateTime({int(FROM.timestamp())})", f"toDateTime({int(TO.timestamp())})"
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= {start} AND \1 <= {end}", sql)
    sql = sql.replace("$__fromTime", start).replace("$__toTime", end)
    sql = sql.replace("${rollout:sqlstring}", "'kai'")
    assert "$" not in sql, f"a macro or variable the test does not expand: {sql}"
    return re.sub(TABLE, rf"\1 {database}.\2", sql)


@pytest.fixture(scope="module")
def stored(shared_store: Store, shared_database: str) -> Rollout:
    migrate(shared_store, shared_database)
    data = build()
    shared_store.insert(
        f"{shared_database}.results", rows.result_columns(data.phase1 + data.phase2)
    )
    shared_store.insert(
        f"{shared_database}.feedback", rows.feedback_columns(data.feedback1 + data.feedback2)
    )
    shared_store.insert(f"{shared_database}.rollout_events", rows.rollout_columns(data.log))
    alert = Alert(
        alert_id=uuid.uuid4(),
        ts=T0 + HOUR * 1.5,
        rollout="kai",
        system="production",
        severity="critical",
        kind="emergency_rollback",
        metric="success_rate",
        observed=0.85,
        threshold=0.9,
        window=AlertWindow(start=T0 + HOUR, end=T0 + HOUR + timedelta(minutes=5)),
        samples=300,
    )
    shared_store.insert(f"{shared_database}.alerts", rows.alert_columns([alert]))
    return data


def test_the_dashboard_has_every_query() -> None:
    assert len(QUERIES) == 14  # 12 panels, the rollout-log annotation, the rollout variable


@pytest.mark.parametrize(("title", "sql"), QUERIES, ids=[t for t, _ in QUERIES])
def test_every_query_runs_and_returns_rows(
    shared_store: Store, shared_database: str, stored: Rollout, title: str, sql: str
) -> None:
    assert shared_store.query(expand(sql, shared_database)).rows, title


def test_queries_per_system_weight_and_rules_match_the_events(
    shared_store: Store, shared_database: str, stored: Rollout
) -> None:
    sql = dict(QUERIES)
    events = stored.phase1 + stored.phase2
    per_system = shared_store.query(expand(sql["Queries per system"], shared_database)).rows
    assert [(s, int(n)) for s, n in per_system] == [
        (system, sum(r.system == system for r in events)) for system in ("pipeline", "production")
    ]
    weights = shared_store.query(expand(sql["Candidate weight"], shared_database)).rows
    assert [w for _, w in weights] == [50, 75, 60]
    rules = shared_store.query(expand(sql["Top 10 rules"], shared_database)).rows
    assert [r[0] for r in rules] == ["greeting", "lookup", "flaky"]
    assert rules[0][1] == len(events)
    success = shared_store.query(expand(sql["Success rate"], shared_database)).rows
    assert all(0 <= rate <= 1 for *_, rate in success)
    assert shared_store.query(expand(sql["rollout"], shared_database)).rows == [("kai",)]
