"""Every query of docs/sql.md's cookbook, read out of the markdown, on both backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sinks import rows
from sinks.migrations import migrate
from sinks.store import Store
from tests.sinks.conftest import T0
from tests.sinks.phase_data import HOUR, Rollout, build

DOC = Path(__file__).parents[2] / "docs" / "sql.md"
TABLES = (
    r"\bphasegate\.((?:results|rules|errors|feedback)_1[mh]"
    r"|results|feedback|alerts|rollout_events)\b"
)


def doc_queries(section: str = "## Cookbook") -> list[str]:
    text = DOC.read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", body, flags=re.S)


QUERIES = doc_queries()
EVERY_SQL_BLOCK = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)


def run(store: Store, database: str, sql: str) -> list[tuple]:
    sql = re.sub(TABLES, rf"{database}.\1", sql)
    params = {"rollout": "kai", "system": "production", "since": T0, "until": T0 + 3 * HOUR}
    return store.query(sql, params).rows


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
    return data


def test_the_cookbook_has_the_queries_the_issue_asks_for() -> None:
    assert len(QUERIES) == 9


@pytest.mark.parametrize("index", range(len(EVERY_SQL_BLOCK)))
def test_every_sql_block_of_the_doc_runs(
    shared_store: Store, shared_database: str, stored, index: int
) -> None:
    sql = EVERY_SQL_BLOCK[index]
    assert run(shared_store, shared_database, sql), sql  # rows, not only no error


def test_hourly_success_and_confidence_match_the_events(
    shared_store: Store, shared_database: str, stored: Rollout
) -> None:
    got = run(shared_store, shared_database, QUERIES[0])
    events = stored.phase1 + stored.phase2
    assert len(got) == 4  # two hours, two systems
    for hour, system, n, success, confidence in got:
        mine = [r for r in events if r.system == system and r.ts.hour == hour.hour]
        assert n == len(mine)
        assert success == pytest.approx(sum(r.success for r in mine) / len(mine))
        assert confidence == pytest.approx(sum(r.confidence for r in mine) / len(mine))


def test_weight_over_time_and_worst_rule(
    shared_store: Store, shared_database: str, stored: Rollout
) -> None:
    weights = run(shared_store, shared_database, QUERIES[7])
    assert [(r[1], r[2], r[3]) for r in weights] == [
        ("phase_started", 50, 1),
        ("phase_started", 75, 2),
        ("weight_set", 60, None),
    ]
    worst = run(shared_store, shared_database, QUERIES[5])
    assert worst[0][0] == "flaky"
    grafana = run(shared_store, shared_database, QUERIES[8])
    production = [r for r in stored.phase1 + stored.phase2 if r.system == "production"]
    assert len(grafana) == 2
    assert sum(mean for _, mean in grafana) / 2 == pytest.approx(
        (sum(r.confidence for r in production[:1200]) / 1200
         + sum(r.confidence for r in production[1200:]) / 1500) / 2
    )  # fmt: skip
