"""Report parameters are never spliced into SQL: injection attempts through the commands
find nothing and change nothing, on both backends."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from phasegate.cli import app
from sinks import rows
from sinks.migrations import migrate
from sinks.store import Store
from tests.sinks.conftest import make_result, point_cli_at

ATTEMPTS = [
    "x' OR 1=1 --",
    "kai' OR '1'='1",
    "kai'; DROP TABLE results; --",
    "kai\\' OR 1=1 --",
    "kai%(x)s",
]


@pytest.fixture(scope="module")
def loaded(shared_store: Store, shared_database: str) -> None:
    migrate(shared_store, shared_database)
    shared_store.insert(
        f"{shared_database}.results", rows.result_columns(make_result(i) for i in range(50))
    )


@pytest.fixture
def cli(shared_store: Store, shared_database: str, loaded, monkeypatch, tmp_path) -> CliRunner:
    point_cli_at(shared_store, shared_database, monkeypatch, tmp_path)
    return CliRunner()


def count(store: Store, database: str) -> int:
    return store.query(f"SELECT count() FROM {database}.results").scalar()


@pytest.mark.parametrize("rollout", ATTEMPTS)
def test_report_rollout(
    cli: CliRunner, shared_store: Store, shared_database: str, rollout: str
) -> None:
    result = cli.invoke(app, ["report", "--rollout", rollout])
    assert result.exit_code == 0, result.output
    assert "no results for rollout" in result.output and "production" not in result.output
    assert count(shared_store, shared_database) == 50


@pytest.mark.parametrize("rollout", ATTEMPTS[:3])
def test_phase_report_and_evaluate(
    cli: CliRunner, shared_store: Store, shared_database: str, rollout
) -> None:
    phase = cli.invoke(app, ["report", "--rollout", rollout, "--phase", "1", "--format", "md"])
    assert phase.exit_code == 1 and "has no phase_started event" in phase.output, phase.output
    evaluate = cli.invoke(app, ["evaluate", "--rollout", rollout, "--last", "10"])
    assert evaluate.exit_code == 0, evaluate.output
    assert "(since -)" in evaluate.output and "\nproduction  " not in evaluate.output
    assert count(shared_store, shared_database) == 50
    assert cli.invoke(app, ["report", "--rollout", "kai"]).output.count("production") == 1


def test_a_time_that_is_not_a_time_is_refused(cli: CliRunner) -> None:
    result = cli.invoke(app, ["report", "--rollout", "kai", "--since", "2024' OR 1=1 --"])
    assert result.exit_code == 2 and "not an ISO-8601 time" in result.output
