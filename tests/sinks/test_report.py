"""The rollout report against numbers computed in Python from the same rows."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from phasegate.cli import app
from schemas import Result
from sinks import rows
from sinks.migrations import migrate
from sinks.report import SystemReport, as_markdown, system_report
from sinks.store import Store
from tests.sinks.conftest import T0, fresh_database, make_result, point_cli_at


def expected(results: list[Result], system: str) -> SystemReport:
    mine = [r for r in results if r.system == system]
    latencies = [r.latency_ms for r in mine]
    return SystemReport(
        system=system,
        events=len(mine),
        success_rate=sum(r.success for r in mine) / len(mine),
        mean_confidence=statistics.fmean(r.confidence for r in mine),
        p95_latency_ms=statistics.quantiles(latencies, n=100, method="inclusive")[94],
        errors=sum(r.error is not None for r in mine),
        critical_errors=sum(bool(r.error and r.error.critical) for r in mine),
        fallbacks=sum(r.fallback for r in mine),
    )


def assert_close(got: SystemReport, want: SystemReport) -> None:
    assert (got.system, got.events, got.errors) == (want.system, want.events, want.errors)
    assert (got.critical_errors, got.fallbacks) == (want.critical_errors, want.fallbacks)
    assert got.success_rate == pytest.approx(want.success_rate)
    assert got.mean_confidence == pytest.approx(want.mean_confidence)
    # rollups keep t-digests (within ~1% here), FINAL computes it exactly
    assert got.p95_latency_ms == pytest.approx(want.p95_latency_ms, rel=0.02)


@pytest.fixture(scope="module", params=[False, True], ids=["rollups", "final"])
def final(request: pytest.FixtureRequest) -> bool:
    """Read the rollups (each event inserted once, as the sink's ledger does) or the
    event table ``FINAL`` (with copies inserted twice, which only it collapses)."""
    return request.param


@pytest.fixture(scope="module")
def shared_database(shared_store: Store, final: bool) -> Iterator[str]:
    """A database per backend and reading: the copies stored differ with ``final``."""
    with fresh_database(shared_store) as name:
        yield name


@pytest.fixture(scope="module")
def loaded(shared_store: Store, shared_database: str, final: bool) -> list[Result]:
    migrate(shared_store, shared_database)
    results = [make_result(i, "production") for i in range(300)]
    results += [make_result(i, "pipeline") for i in range(1, 200)]
    results += [make_result(i, "production", rollout="other") for i in range(40)]
    table = f"{shared_database}.results"
    shared_store.insert(table, rows.result_columns(results[:250]))
    shared_store.insert(table, rows.result_columns(results[200 if final else 250 :]))  # 50 twice
    return results


def test_report_matches_python_and_counts_duplicates_once(
    shared_store: Store, shared_database: str, loaded: list[Result], final: bool
) -> None:
    kai = [r for r in loaded if r.rollout == "kai"]
    got = system_report(shared_store, shared_database, "kai", final=final)
    assert [r.system for r in got] == ["pipeline", "production"]
    for report in got:
        assert_close(report, expected(kai, report.system))
    assert got[1].critical_errors > 0 and got[0].fallbacks > 0


def test_report_time_range_is_half_open(
    shared_store: Store, shared_database: str, loaded: list[Result], final: bool
) -> None:
    since, until = T0 + timedelta(seconds=100), T0 + timedelta(seconds=250)
    in_range = [r for r in loaded if r.rollout == "kai" and since <= r.ts < until]
    got = system_report(shared_store, shared_database, "kai", since=since, until=until, final=final)
    for report in got:
        assert_close(report, expected(in_range, report.system))


def test_report_of_an_unknown_rollout_is_empty(
    shared_store: Store, shared_database: str, loaded
) -> None:
    assert system_report(shared_store, shared_database, "nope' OR 1=1 --") == []


def test_report_of_an_empty_range_is_empty(
    shared_store: Store, shared_database: str, loaded
) -> None:
    t = T0 + timedelta(seconds=90)
    assert system_report(shared_store, shared_database, "kai", since=t, until=t) == []
    assert (
        system_report(shared_store, shared_database, "kai", since=t, until=t - timedelta(hours=2))
        == []
    )


def test_markdown_has_one_row_per_system() -> None:
    reports = [SystemReport("production", 10, 0.9, 0.8, 123.45, 1, 0, 0)]
    text = as_markdown(reports)
    lines = text.splitlines()
    assert lines[0].startswith("| system | events | success | conf | p95 ms |")
    assert len(lines) == 3
    assert lines[2] == "| production | 10 | 90.00% | 0.800 | 123.5 | 1 | 0 | 0 |"


def test_report_command_prints_both_formats(
    shared_store: Store,
    shared_database: str,
    loaded: list[Result],
    final: bool,
    tmp_path,
    monkeypatch,
) -> None:
    point_cli_at(shared_store, shared_database, monkeypatch, tmp_path)
    runner = CliRunner()
    how = ["--final"] if final else []
    md = runner.invoke(app, ["report", "--rollout", "kai", "--format", "md", *how])
    assert md.exit_code == 0, md.output
    assert "| production | 300 |" in md.output
    since = ["--since", "2024-05-01T12:02:00"]
    table = runner.invoke(app, ["report", "-r", "kai", *since, *how])
    assert table.exit_code == 0, table.output
    assert "pipeline" in table.output and "rollout kai" in table.output
    (production,) = [ln for ln in table.output.splitlines() if "production" in ln]
    assert production.split()[:2] == ["production", "180"]  # 120 s <= ts


def test_report_command_without_a_server_says_what_to_do(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PHASEGATE_CLICKHOUSE_URL", "clickhouse://default:@127.0.0.1:1")
    monkeypatch.setenv("PHASEGATE_CONFIG", str(tmp_path / "none.toml"))
    result = CliRunner().invoke(app, ["report", "--rollout", "kai"])
    assert result.exit_code == 1
    assert "not reachable" in result.output
    assert "Traceback" not in result.output
