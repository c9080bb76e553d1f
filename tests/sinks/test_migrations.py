"""Migrations: rerun without harm, upgrade an older schema, rollups that match the events."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Feedback, Result
from schemas.events import Alert, AlertWindow, Figure
from sinks import ddl, rollups, rows
from sinks.migrations import MIGRATIONS, migrate
from sinks.store import Store
from tests.sinks.conftest import make_result

ROLLUP_SQL = """
SELECT system, sum(events), sum(successes), sum(errors), sum(critical_errors),
       sum(confidence_sum), quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)
FROM {db}.{table} GROUP BY system ORDER BY system
"""


def expected(results: list[Result]) -> list[tuple]:
    out = []
    for system in sorted({r.system for r in results}):
        mine = [r for r in results if r.system == system]
        out.append(
            (
                system,
                len(mine),
                sum(r.success for r in mine),
                sum(r.error is not None for r in mine),
                sum(bool(r.error and r.error.critical) for r in mine),
                pytest.approx(sum(r.confidence for r in mine)),
            )
        )
    return out


def rollup(store: Store, database: str, table: str) -> list[tuple]:
    return [row[:6] for row in store.query(ROLLUP_SQL.format(db=database, table=table))]


def test_an_older_schema_is_upgraded_and_rollups_are_backfilled_once(
    store: Store, database: str
) -> None:
    assert migrate(store, database, upto=1) == [1]
    old = [make_result(i) for i in range(100)] + [make_result(i, "pipeline") for i in range(60)]
    store.insert(f"{database}.results", rows.result_columns(old))
    store.insert(f"{database}.results", rows.result_columns(old[:30]))  # redelivered

    assert migrate(store, database) == [2, 3, 4, 5, 6, 7]
    assert migrate(store, database) == []
    for migration in MIGRATIONS:  # a rerun of any step does no harm
        migration.apply(store, database, ddl.Dialect(store.version))

    columns = {name for (name, *_) in store.query(f"DESCRIBE TABLE {database}.results")}
    assert set(ddl.LEDGER_COLUMNS) <= columns
    ledger = store.query(f"SELECT DISTINCT kafka_partition, kafka_offset FROM {database}.results")
    assert ledger.rows == [(-1, -1)]
    for table in ("results_1s", "results_1m", "results_1h"):
        assert rollup(store, database, table) == expected(old)  # backfill read FINAL

    new = [make_result(i, "pipeline") for i in range(1000, 1050)]
    store.insert(f"{database}.results", rows.result_columns(new))  # through the views
    for table in ("results_1s", "results_1m", "results_1h"):
        assert rollup(store, database, table) == expected(old + new)


def test_rollup_buckets_and_quantiles_match_the_base_table(store: Store, database: str) -> None:
    migrate(store, database)
    results = [make_result(i) for i in range(0, 600, 2)]  # 10 minutes
    store.insert(f"{database}.results", rows.result_columns(results[:150]))
    store.insert(f"{database}.results", rows.result_columns(results[150:]))
    per_minute = store.query(
        f"SELECT toUInt32(bucket), sum(events), sum(successes) FROM {database}.results_1m "
        "GROUP BY bucket ORDER BY bucket"
    ).rows
    base = store.query(
        f"SELECT toUInt32(toStartOfMinute(ts)) AS m, count(), sum(success) "
        f"FROM {database}.results FINAL GROUP BY m ORDER BY m"
    ).rows
    assert per_minute == base and len(per_minute) == 10
    hour = store.query(
        f"SELECT quantilesTDigestMerge(0.5, 0.95, 0.99)(latency) FROM {database}.results_1h"
    ).scalar()
    exact = store.query(
        f"SELECT quantilesExact(0.5, 0.95, 0.99)(latency_ms) FROM {database}.results"
    ).scalar()
    for approx, want in zip(hour, exact, strict=True):
        assert approx == pytest.approx(want, rel=0.05)


def totals(store: Store, source: str, family: rollups.Family) -> list[tuple]:
    """``family``'s sums per key and bucket read from ``source`` (rollup or events)."""
    keys = ", ".join(["rollout", "system", *(c.name for c in family.keys), "bucket"])
    sums = [f"round(sum({c.name}), 6)" for c in family.values if "Aggregate" not in c.kind]
    sql = f"SELECT {keys}, {', '.join(sums)} FROM {source} GROUP BY {keys} ORDER BY {keys}"
    return store.query(sql).rows


def test_v4_builds_the_report_rollups_and_rebuilds_an_older_results_rollup(
    store: Store, database: str
) -> None:
    assert migrate(store, database, upto=3) == [1, 2, 3]
    results = [make_result(i) for i in range(0, 5400, 7)]  # 90 minutes, rules and errors
    results += [make_result(i, "pipeline", rollout="other") for i in range(0, 3000, 11)]
    verdicts = ("correct", "incorrect", "unsure")
    feedback = [
        Feedback(rollout=r.rollout, query_id=r.query_id, system=r.system, ts=r.ts, verdict=v)
        for r, v in zip(results[::3], itertools.cycle(verdicts), strict=False)
    ]
    table = f"{database}.results"
    store.insert(table, rows.result_columns(results))
    store.insert(table, rows.result_columns(results[:40]))  # copies from before the ledger
    store.insert(f"{database}.feedback", rows.feedback_columns(feedback))
    for step in (60, 3600):  # the results rollups of an older release
        old = f"{database}.{rollups.RESULTS.rollup(step)}"
        for column in ("confidence_sq_sum", "latency_sq_sum"):
            store.execute(f"ALTER TABLE {old} DROP COLUMN {column}")

    assert migrate(store, database) == [4, 5, 6, 7]
    for family in rollups.FAMILIES:
        for step in rollups.ROLLUP_STEPS:
            events = f"({family.select(f'{database}.{family.table} FINAL', step)})"
            want = totals(store, events, family)
            assert want, family.name
            assert totals(store, f"{database}.{family.rollup(step)}", family) == want


def test_the_new_contract_columns_are_added_to_an_older_database(
    store: Store, database: str
) -> None:
    """Migration 5 adds a result's segment and an alert's evidence to tables without them."""
    migrate(store, database, upto=4)
    added = {
        "results": ["segment"],
        "alerts": ["dry_run", "attribution", "figures", "contributors"],
    }
    for table, names in added.items():
        for name in names:
            store.execute(f"ALTER TABLE {database}.{table} DROP COLUMN {name}")
    assert migrate(store, database) == [5, 6, 7]
    window = AlertWindow(start="2026-01-01T00:00:00Z", end="2026-01-01T00:01:00Z")
    alert = Alert(
        rollout="r", system="production", severity="warning", kind="guardrail",
        metric="success_rate", observed=0.9, threshold=0.01, window=window, samples=10,
        dry_run=True, attribution="shared",
        figures=[Figure(system="production", value=0.9, low=0.8, high=0.95, samples=10)],
    )  # fmt: skip
    store.insert(f"{database}.alerts", rows.alert_columns([alert]))
    stored = store.query(
        f"SELECT dry_run, attribution, figures, contributors FROM {database}.alerts"
    )
    dry_run, attribution, figures, contributors = stored.rows[0]
    assert (dry_run, attribution, contributors) == (1, "shared", "[]")
    assert [Figure.model_validate(f) for f in json.loads(figures)] == alert.figures


def test_v6_fills_the_second_rollups_from_the_events_then_feeds_them(
    store: Store, database: str
) -> None:
    """Migration 6 backfills ``_1s`` rollups from the events (each once) under views."""
    migrate(store, database, upto=5)
    start = datetime(2024, 5, 31, 23, 59, tzinfo=UTC)
    results = [make_result(i, ts=start + timedelta(seconds=i * 0.7)) for i in range(300)]
    feedback = [
        Feedback(
            rollout=r.rollout, query_id=r.query_id, system=r.system, ts=r.ts, verdict="correct"
        )
        for r in results[::4]
    ]
    store.insert(f"{database}.results", rows.result_columns(results))
    store.insert(f"{database}.results", rows.result_columns(results[:25]))  # copies
    store.insert(f"{database}.feedback", rows.feedback_columns(feedback))
    assert migrate(store, database) == [6, 7]
    later = [make_result(i, "pipeline", ts=start + timedelta(seconds=i * 1.3)) for i in range(99)]
    store.insert(f"{database}.results", rows.result_columns(later))  # through the views
    for family in rollups.FAMILIES:
        events = f"({family.select(f'{database}.{family.table} FINAL', 1)})"
        want = totals(store, events, family)
        assert want, family.name
        assert totals(store, f"{database}.{family.rollup(1)}", family) == want


def test_v7_adds_the_rules_and_segment_a_feedback_names(store: Store, database: str) -> None:
    """Rows stored before migration 7 read no rules and no segment; new ones keep them."""
    migrate(store, database, upto=6)
    old = Feedback(rollout="r", query_id="q1", system="production", verdict="incorrect")
    columns = rows.feedback_columns([old])
    del columns["rules"], columns["segment"]  # a row as an older sink wrote it
    store.insert(f"{database}.feedback", columns)
    assert migrate(store, database) == [7]
    new = old.model_copy(update={"query_id": "q2", "rules": ["r7"], "segment": "de"})
    store.insert(f"{database}.feedback", rows.feedback_columns([new]))
    stored = store.query(
        f"SELECT query_id, rules, segment FROM {database}.feedback ORDER BY query_id"
    )
    assert [tuple(row) for row in stored.rows] == [("q1", [], None), ("q2", ["r7"], "de")]
