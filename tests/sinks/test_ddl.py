"""Version-aware DDL, without a server."""

from __future__ import annotations

import pytest

from sinks import ddl


def test_old_server_gets_no_low_cardinality_and_second_timestamps() -> None:
    sql = ddl.RESULTS.create("phasegate", ddl.Dialect((18, 16, 1)))
    assert "LowCardinality" not in sql
    assert "ts DateTime('UTC')" in sql
    assert "allow_experimental" not in sql


def test_current_server_gets_low_cardinality_and_milliseconds() -> None:
    sql = ddl.ALERTS.create("phasegate", ddl.Dialect((26, 9, 2)))
    assert "system LowCardinality(String)" in sql
    assert "window_start DateTime64(3, 'UTC')" in sql


@pytest.mark.parametrize("table", ddl.EVENT_TABLES, ids=lambda t: t.name)
def test_every_table_deduplicates_by_its_event_id(table: ddl.Table) -> None:
    sql = table.create("db", ddl.Dialect((18, 16, 1)))
    assert "ENGINE = ReplacingMergeTree" in sql
    assert table.order_by[-1] in ("event_id", "alert_id")


@pytest.mark.parametrize("name", ["a;DROP TABLE x", "1abc", "a.b", "", "a b"])
def test_identifiers_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        ddl.identifier(name)
