"""The go/no-go report of a simulated rollout, against values computed from its events."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from phasegate.cli import app
from schemas import Feedback, Result, RolloutEvent
from schemas.confseq import cs_z
from schemas.plan import load_plan
from schemas.stats import wilson
from sinks import render, rows
from sinks.history import History, Span
from sinks.migrations import migrate
from sinks.phase_report import NoSuchPhase, blocks, phase_report, worst_rules
from sinks.rollups import whole_second
from sinks.store import Store
from tests.sinks.conftest import T0, fresh_database, make_result, point_cli_at
from tests.sinks.phase_data import HOUR, Rollout, load

PLAN = load_plan()  # the default plan: the seed's four phases


@pytest.fixture(scope="module", params=[False, True], ids=["rollups", "final"])
def final(request: pytest.FixtureRequest) -> bool:
    """Read the rollups, or the event tables ``FINAL`` (then with copies stored by hand)."""
    return request.param


@pytest.fixture(scope="module")
def shared_database(shared_store: Store, final: bool) -> Iterator[str]:
    """A database per backend and reading: the copies stored differ with ``final``."""
    with fresh_database(shared_store) as name:
        yield name


@pytest.fixture
def store(shared_store: Store) -> Store:
    """The module's store (chdb opens one folder per process: every test here shares it)."""
    return shared_store


@pytest.fixture
def database(shared_store: Store) -> Iterator[str]:
    """A fresh database on the module's store, for a test that writes its own rows."""
    with fresh_database(shared_store) as name:
        yield name


@pytest.fixture(scope="module")
def rollout(shared_store: Store, shared_database: str, final: bool) -> Rollout:
    migrate(shared_store, shared_database)
    return load(shared_store, shared_database, redelivered=final)


def outcomes(report) -> dict[str, str]:
    return {v.criterion: v.outcome for v in report.verdicts}


def test_phase_1_passes_every_criterion_at_a_loose_alpha(
    shared_store: Store, shared_database: str, rollout: Rollout, final: bool
) -> None:
    """1,200 events at 97%: a pass at alpha 0.5; at the default 0.05 the confidence
    sequence does not yet clear 95% nor the 1-point margin (inconclusive, not fail)."""
    report = phase_report(
        shared_store, shared_database, "kai", 1, PLAN.phase(1), final=final, alpha=0.5
    )
    assert (report.span.start, report.span.end) == (T0, T0 + HOUR)
    assert outcomes(report) == {
        "success_rate >= 0.95": "pass",
        "no critical errors": "pass",
        "feedback_positive_rate >= 0.5": "pass",
        "success_rate not worse than the baseline (margin 0.01)": "pass",
    }
    mine = [r for r in rollout.phase1 if r.system == "production"]  # 20 a minute
    success = report.verdicts[0]
    assert (success.observed, success.samples) == (pytest.approx(0.97), 1200)
    # the intersection of the looks at each minute's end: within the first full look's
    first = wilson(sum(r.success for r in mine[:1000]), 1000, cs_z(1000, 1000, 0.5))
    assert first.low <= success.low and success.high <= first.high
    assert 0.95 <= success.low < 0.97 < success.high
    assert report.verdicts[2].observed == pytest.approx(45 / 60)
    assert report.verdicts[3].observed == pytest.approx(0.97 - 0.96)
    assert report.outcome == "pass"
    strict = phase_report(shared_store, shared_database, "kai", 1, PLAN.phase(1), final=final)
    assert outcomes(strict) == outcomes(report) | {
        "success_rate >= 0.95": "inconclusive",
        "success_rate not worse than the baseline (margin 0.01)": "inconclusive",
    }


def test_phase_2_fails_on_success_and_regression(
    shared_store: Store, shared_database: str, rollout: Rollout, final: bool
) -> None:
    report = phase_report(shared_store, shared_database, "kai", 2, PLAN.phase(2), final=final)
    assert report.span.start == T0 + HOUR and report.span.end is None
    assert outcomes(report) == {
        "success_rate >= 0.96": "fail",
        "mean_latency_ms <= 200": "pass",
        # -3 points over 1,500 vs 1,200 events: a fixed 95% interval excluded -1 point,
        # the confidence sequence does not yet
        "success_rate not worse than the previous phase (margin 0.01)": "inconclusive",
        "mean_latency_ms not worse than the previous phase (margin 20)": "pass",
        "complaint_rate <= 0.05": "inconclusive",  # 40 verdicts, 50 needed
    }
    now = [r for r in rollout.phase2 if r.system == "production"]
    before = [r for r in rollout.phase1 if r.system == "production"]
    by_name = {v.criterion: v for v in report.verdicts}
    assert by_name["success_rate >= 0.96"].samples == len(now) == 1500  # duplicates once
    assert by_name["mean_latency_ms <= 200"].observed == pytest.approx(
        statistics.fmean(r.latency_ms for r in now)
    )
    regression = by_name["success_rate not worse than the previous phase (margin 0.01)"]
    assert regression.observed == pytest.approx(0.94 - 0.97)
    assert regression.p_value < 0.05
    assert by_name["complaint_rate <= 0.05"].observed == pytest.approx(10 / 40)
    assert report.previous["production"].events == len(before)
    assert report.outcome == "fail"

    assert {(e.system, e.type) for e in report.errors} >= {("production", "timeout")}
    assert sum(e.count for e in report.errors if e.system == "production") == 90
    uses = [r.uses for r in report.rules]
    assert uses == sorted(uses, reverse=True) and report.rules[0].uses == 1500
    assert worst_rules(report) == {("production", "flaky"), ("pipeline", "flaky")}
    assert report.alerts == rollout.alerts[1:]  # the phase's own, read back whole


def test_a_time_range_is_needed_without_a_phase_in_the_log(
    shared_store: Store, shared_database: str, rollout: Rollout, final: bool
) -> None:
    with pytest.raises(NoSuchPhase, match="phase 3"):
        phase_report(shared_store, shared_database, "kai", 3, PLAN.phase(3), final=final)
    report = phase_report(
        shared_store, shared_database, "kai", 3, PLAN.phase(3), since=T0 + HOUR, final=final
    )
    assert report.side("production").events == 1500


def test_markdown_and_html_render_every_section(
    shared_store: Store, shared_database: str, rollout: Rollout, final: bool
) -> None:
    report = phase_report(shared_store, shared_database, "kai", 2, PLAN.phase(2), final=final)
    md = render.markdown(blocks(report))
    for heading in ("## Criteria", "## Alerts", "## production vs pipeline",
                    "## Against phase 1", "## Error types", "## Feedback",
                    "## Rules by use"):  # fmt: skip
        assert heading in md
    assert (
        "| dry-run partial_rollback [candidate-specific] | success_rate | 0.94 | 0.95 | 250 | - "
        "| window 13:20:00-13:30:00: production 0.94 (0.91-0.96) over 250 events, "
        "pipeline 0.96 (0.93-0.98) over 90 |"
    ) in md
    assert "| rule flaky: 15 candidate vs 2 baseline (expected 4.2) |" in md
    assert "| success_rate >= 0.96 | 94.00% |" in md
    assert "| production | flaky |" in md and "| worst |" in md
    page = render.html(blocks(report, charts=True), "report")
    assert page.count("<svg") == 4
    assert "<script" not in page
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}
    assert '<td class="fail">fail</td>' in page


def test_report_and_evaluate_commands(
    shared_store: Store, shared_database: str, rollout: Rollout, final: bool, tmp_path, monkeypatch
) -> None:
    point_cli_at(shared_store, shared_database, monkeypatch, tmp_path)
    runner = CliRunner()
    how = ["--final"] if final else []
    md = runner.invoke(app, ["report", "-r", "kai", "--phase", "1", "--format", "md", *how])
    assert md.exit_code == 0, md.output
    assert "# Rollout kai: phase 1 go/no-go" in md.output
    assert "Decision: INCONCLUSIVE." in md.output  # 1,200 events: see the test above
    page = tmp_path / "phase2.html"
    html = runner.invoke(
        app, ["report", "-r", "kai", "-p", "2", "--format", "html", "-o", str(page), *how]
    )
    assert html.exit_code == 0, html.output
    assert page.read_text().count("<svg") == 4 and "Decision: FAIL." in page.read_text()
    missing = runner.invoke(app, ["report", "-r", "kai", "-p", "3"])
    assert missing.exit_code == 1 and "--since/--until" in missing.output

    text = tmp_path / "week3_report.txt"
    ev = runner.invoke(app, ["evaluate", "--last", "2000", "--report", str(text), *how])
    assert ev.exit_code == 0, ev.output
    report = text.read_text()
    # the newest 2000 results are phase 2: production 1500 at 94%, pipeline 500 at 96%
    rows = {line.split()[0]: line.split()[1:3] for line in report.splitlines()[3:5]}
    assert rows == {"pipeline": ["500", "96.00%"], "production": ["1500", "94.00%"]}
    assert "Winner: production" in report  # success not significantly lower, 28 ms faster
    assert "production: success rate 94.0% is below 95%" in report
    assert "rule flaky" in report


@pytest.mark.parametrize("step", [60, 600, 3600, 7200])
def test_chart_series_counts_each_event_in_its_bucket(
    shared_store: Store, shared_database: str, rollout: Rollout, final: bool, step: int
) -> None:
    span = Span(T0 + timedelta(seconds=90), T0 + 3 * HOUR)  # 18.16 stores whole seconds
    got = History(shared_store, shared_database, "kai", final).series(span, step)
    want = Counter(
        (r.system, int(r.ts.timestamp()) // step * step)
        for r in rollout.phase1 + rollout.phase2
        if span.start <= r.ts < span.end
    )
    assert {(p.system, int(p.at.timestamp())): p.events for p in got} == want


START = datetime(2024, 5, 31, 22, 59, tzinfo=UTC)
EDGES = [
    Span(START + timedelta(seconds=59.25), START + timedelta(hours=2, minutes=2, seconds=30.5)),
    Span(START + timedelta(seconds=7), START + timedelta(seconds=38, milliseconds=999)),
    Span(START + timedelta(hours=1, minutes=1, milliseconds=1), START + timedelta(hours=1.5)),
    Span(START + timedelta(seconds=3.3), START + timedelta(seconds=3.9)),  # one second
    Span(None, START + timedelta(hours=1, seconds=3.7)),  # across the month, open start
    Span(START + timedelta(minutes=59, seconds=59.999), None),
]


def months_edge(store: Store, database: str) -> list[Result]:
    """Results every 3.7 s of two systems from 22:59 on May 31 into June, with feedback."""
    migrate(store, database)
    results = [
        make_result(i, system, ts=START + timedelta(seconds=i * 3.7))
        for i in range(2000)
        for system in ("production", "pipeline")
    ]
    verdicts = itertools.cycle(("correct", "incorrect", "unsure"))
    feedback = [
        Feedback(rollout=r.rollout, query_id=r.query_id, system=r.system, ts=r.ts, verdict=v)
        for r, v in zip(results[::5], verdicts, strict=False)
    ]
    store.insert(f"{database}.results", rows.result_columns(results))
    store.insert(f"{database}.feedback", rows.feedback_columns(feedback))
    log = [
        RolloutEvent(rollout="kai", type="phase_started", phase=1, weight=50, ts=EDGES[0].start),
        RolloutEvent(rollout="kai", type="phase_started", phase=2, weight=75, ts=EDGES[4].end),
    ]
    store.insert(f"{database}.rollout_events", rows.rollout_columns(log))
    return results


def comparable(history: History, span: Span) -> tuple[tuple, list[float]]:
    """What the report reads over ``span``: counts, and the sums (added in another order)."""
    sides = history.sides(span)
    rules = history.rule_stats(span)
    counts = (
        {s: (x.events, x.successes, x.critical_errors, x.fallbacks, x.feedback)
         for s, x in sides.items()},
        history.error_types(span),
        [(r.system, r.rule, r.uses, r.successes) for r in rules],
        [(p.system, p.at, p.events) for step in (60, 300) for p in history.series(span, step)],
        history.time_range(span),
    )  # fmt: skip
    sums = [x.confidence_sum for x in sides.values()] + [x.latency_sq_sum for x in sides.values()]
    return counts, sums + [r.mean_confidence for r in rules]


@pytest.mark.parametrize("span", EDGES, ids=range(len(EDGES)))
def test_ends_anywhere_read_what_the_event_rows_hold(
    store: Store, database: str, span: Span
) -> None:
    """Ends at odd seconds and milliseconds, across a month: the rollups give the numbers
    of the event rows (``final``), every event with ``whole_second(start) <= ts <
    whole_second(end)``, as the store's literals always had it."""
    results = months_edge(store, database)
    rollups, events = History(store, database, "kai"), History(store, database, "kai", True)
    (counts, sums), (want_counts, want_sums) = (comparable(h, span) for h in (rollups, events))
    assert counts == want_counts and sums == pytest.approx(want_sums, rel=1e-9)
    lo, hi = (whole_second(t) for t in (span.start, span.end))
    want = Counter(
        r.system for r in results if (lo is None or lo <= r.ts) and (hi is None or r.ts < hi)
    )
    assert {s: side.events for s, side in rollups.sides(span).items() if side.events} == want


def test_a_phase_between_odd_milliseconds(store: Store, database: str) -> None:
    months_edge(store, database)
    for phase in (1, 2):
        fast, slow = (
            phase_report(store, database, "kai", phase, PLAN.phase(phase), final=final)
            for final in (False, True)
        )
        assert [(v.criterion, v.outcome, v.samples) for v in fast.verdicts] == [
            (v.criterion, v.outcome, v.samples) for v in slow.verdicts
        ]
        assert {s: x.events for s, x in fast.sides.items()} == {
            s: x.events for s, x in slow.sides.items()
        }
        assert [(p.system, p.at, p.events) for p in fast.points] == [
            (p.system, p.at, p.events) for p in slow.points
        ]
