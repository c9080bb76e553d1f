"""The simulator: a reproducible pure core whose scenarios say what they promise."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest

from phasegate.testing.topics import read_values
from producers import live
from producers.simulator import SCENARIOS, generate, virtual_clock
from schemas.codec import decode
from schemas.events import Feedback, Result


def results(scenario: str, n: int = 20_000, **kw) -> list[Result]:
    return [e for e in generate(scenario, n, **kw) if isinstance(e, Result)]


def rate(rs: list[Result]) -> float:
    return sum(r.success for r in rs) / len(rs)


def p95(rs: list[Result]) -> float:
    return statistics.quantiles([r.latency_ms for r in rs], n=20)[-1]


def split(rs: list[Result], system: str, n: int) -> tuple[list[Result], list[Result]]:
    """The system's results before and after the halfway onset."""
    before = [r for r in rs if r.system == system and int(r.query_id.split("-")[1]) < n // 2]
    after = [r for r in rs if r.system == system and int(r.query_id.split("-")[1]) >= n // 2]
    return before, after


def test_same_seed_same_traffic_other_seed_other_traffic():
    def key(events):
        return [(e.unit_id, e.system, e.success, e.latency_ms) for e in events]

    clock = datetime(2025, 1, 1, tzinfo=UTC)
    a = results("healthy", 500, seed=1, clock=virtual_clock(clock))
    b = results("healthy", 500, seed=1, clock=virtual_clock(clock))
    assert key(a) == key(b) and [r.ts for r in a] == [r.ts for r in b]
    assert key(a) != key(results("healthy", 500, seed=2))


def test_injected_clock_stamps_the_events():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rs = results("healthy", 100, clock=virtual_clock(start, rate=10))
    assert rs[0].ts == start and rs[-1].ts == start + timedelta(seconds=9.9)


def test_weight_routes_with_the_sticky_hash():
    rs = results("healthy", 10_000, weight=75)
    share = sum(r.system == "production" for r in rs) / len(rs)
    assert 0.72 < share < 0.78
    by_unit: dict[str, set[str]] = {}
    for r in rs:
        by_unit.setdefault(r.unit_id, set()).add(r.system)
    assert all(len(s) == 1 for s in by_unit.values())  # sticky


def test_degrade_drops_candidate_success_after_the_onset():
    n = 40_000
    rs = results("degrade", n)
    before, after = split(rs, "production", n)
    assert rate(before) > 0.96 and rate(after) < 0.87
    base_before, base_after = split(rs, "pipeline", n)
    assert abs(rate(base_before) - rate(base_after)) < 0.01


def test_degrade_concentrates_on_de_timeouts_and_segments_are_sticky():
    n = 40_000
    rs = results("degrade", n)
    _, after = split(rs, "production", n)
    de = [r for r in after if r.segment == "de"]
    en = [r for r in after if r.segment == "en"]
    assert 0.55 < len(de) / len(after) < 0.65
    assert rate(de) < 0.81 and rate(en) > 0.94
    timeouts = sum(r.error.type == "timeout" for r in after if r.error)
    assert timeouts > 0.75 * sum(1 for r in after if r.error)
    by_unit: dict[str, set] = {}
    for r in rs:
        by_unit.setdefault(r.unit_id, set()).add(r.segment)
    assert all(len(s) == 1 for s in by_unit.values())


def test_latency_scenario_raises_candidate_p95_by_half():
    n = 40_000
    before, after = split(results("latency", n), "production", n)
    assert 1.4 < p95(after) / p95(before) < 1.6


def test_critical_burst_is_critical_and_short():
    n = 40_000
    rs = results("critical-burst", n)
    critical = [int(r.query_id.split("-")[1]) for r in rs if r.error and r.error.critical]
    assert len(critical) > 50
    assert all(n * 0.5 <= i < n * 0.55 for i in critical)
    assert all(r.system == "production" for r in rs if r.error and r.error.critical)


def test_outage_fails_every_candidate_request_slowly_after_the_onset():
    n = 20_000
    cand = [r for r in results("outage", n) if r.system == "production"]
    before = [r for r in cand if int(r.query_id.split("-")[1]) < 0.3 * n]
    after = [r for r in cand if int(r.query_id.split("-")[1]) >= 0.3 * n]
    assert rate(before) > 0.96 and rate(after) == 0.0
    assert all(r.latency_ms == pytest.approx(2000.0) for r in after)
    assert {r.error.type for r in after if r.error} == {"timeout"}


def test_aa_systems_are_indistinguishable():
    rs = results("aa", 40_000)
    cand = [r for r in rs if r.system == "production"]
    base = [r for r in rs if r.system == "pipeline"]
    assert abs(rate(cand) - rate(base)) < 0.008
    assert abs(p95(cand) / p95(base) - 1) < 0.05


def test_rules_are_zipf_like_and_feedback_follows_success():
    events = list(generate("healthy", 20_000))
    counts: dict[str, int] = {}
    for r in (e for e in events if isinstance(e, Result)):
        for rule in r.rules:
            counts[rule] = counts.get(rule, 0) + 1
    assert counts["rule-001"] > 5 * counts["rule-030"]
    feedback = [e for e in events if isinstance(e, Feedback)]
    assert 0.08 < len(feedback) / 20_000 < 0.12
    assert sum(f.verdict == "correct" for f in feedback) / len(feedback) > 0.8
    answers = {e.query_id: e for e in events if isinstance(e, Result)}
    assert all(
        (f.rules, f.segment) == (answers[f.query_id].rules, answers[f.query_id].segment)
        for f in feedback
    )  # a verdict names the answer's rules and segment
    assert set(SCENARIOS) == {"healthy", "degrade", "latency", "critical-burst", "outage", "aa"}


def test_live_run_through_router_and_emitter(kafka_settings):
    summary = live.run(kafka_settings, "healthy", events=2000, set_weight=50, seed=4)
    assert summary.weight == 50 and summary.generations == 2000
    assert 900 < summary.per_system["production"] < 1100
    stats = summary.emitter
    assert stats.sent == 2000 + summary.feedback + 1 and stats.dropped == 0  # + weight_set
    values = read_values(kafka_settings.bootstrap_servers, kafka_settings.topics.results, 2000)
    got = [decode(v, Result) for v in values]
    assert len(got) == 2000 and {r.weight for r in got} == {50}


def test_simulate_command(kafka_settings, monkeypatch):
    from typer.testing import CliRunner

    from phasegate.cli import app

    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("PHASEGATE_TOPIC_PREFIX", kafka_settings.topic_prefix)
    out = CliRunner().invoke(app, ["simulate", "--scenario", "aa", "-n", "300", "--seed", "1"])
    assert out.exit_code == 0, out.output
    assert "pipeline" in out.output and "dropped 0" in out.output

    monkeypatch.setenv("PHASEGATE_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    out = CliRunner().invoke(app, ["simulate", "-n", "10"])
    assert out.exit_code == 1 and "No Kafka broker at 127.0.0.1:1" in out.output
