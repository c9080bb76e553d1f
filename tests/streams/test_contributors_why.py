"""Contributors of latency and feedback alerts: slow events and complaints by value."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.alert_text import contributor_text
from schemas.events import Feedback
from schemas.internal import Partial, WindowStatsState
from schemas.metrics import metric
from schemas.plan import load_plan
from streams import slow
from streams.aggregate import WindowStats
from streams.alerts import Alerts, Firing
from streams.contributors import rank
from streams.windows import RolloutView, to_datetime
from tests.streams.conftest import T0, make_result

P95 = metric("p95_latency_ms")
COMPLAINTS = metric("complaint_rate")


def _aggregate(results) -> WindowStats:
    stats = WindowStats()
    stats.add_results(results)
    return stats


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(0.0, 60_000.0), min_size=1, max_size=300),
    st.floats(0.0, 70_000.0),
)
def test_a_value_on_every_event_is_as_slow_as_its_systems_sketch_says(latencies, limit):
    stats = _aggregate(
        [make_result(i, latency_ms=x, rules=("r",)) for i, x in enumerate(latencies)]
    )
    (slower,) = slow.above(stats.rule_latency, limit, stats.latency).values() or (0.0,)
    assert slower == pytest.approx(stats.latency.count_above(limit), abs=1e-6)


def test_a_values_bins_above_the_limits_count_whole_and_its_bin_by_the_systems_share():
    # the system: 90 events at 240 ms and 10 at 260 ms (one coarse bin), 50 at 1 s;
    # rule a holds 10 of those at 240 ms and 10 at 1 s, rule b the 10 at 260 ms
    lat = [240.0] * 90 + [260.0] * 10 + [1000.0] * 50
    rules = [("a",) if i < 10 else () for i in range(90)] + [("b",)] * 10 + [("a",)] * 10
    stats = _aggregate(
        [
            make_result(i, latency_ms=x, rules=r)
            for i, (x, r) in enumerate(zip(lat, rules + [()] * 40, strict=True))
        ]
    )
    assert slow.bin_of(240.0) == slow.bin_of(260.0) < slow.bin_of(1000.0)
    got = slow.above(stats.rule_latency, 250.0, stats.latency)
    # 1 s: whole; of the 250-ms bin the system has 10 of 100 above: a 10% share each
    assert got == {"a": pytest.approx(10 + 0.1 * 10), "b": pytest.approx(0.1 * 10)}
    assert slow.above(stats.rule_latency, 0.0, stats.latency) == {"a": 20, "b": 10}


def _traffic(system: str, slow_rule: str | None, n: int = 400) -> WindowStats:
    """``n`` results over rules r1..r4 and segments de/en at 100 ms; those with
    ``slow_rule`` at 400 ms; every 20th a timeout at 100 ms."""
    return _aggregate(
        [
            make_result(
                i,
                system=system,
                rules=(f"r{i % 4 + 1}",),
                segment="de" if i % 2 else "en",
                latency_ms=400.0 if f"r{i % 4 + 1}" == slow_rule else 100.0,
                success=i % 20 != 0,
            )
            for i in range(n)
        ]
    )


def test_a_latency_alert_ranks_where_the_candidates_slow_events_concentrate():
    candidate, baseline = _traffic("production", "r2"), _traffic("pipeline", None)
    baseline.merge(_traffic("pipeline", "r2", n=8))  # the baseline: r2 slow twice in 102
    got = [
        (c.dimension, c.value, c.candidate, c.baseline, c.expected)
        for c in rank(candidate, baseline, P95, 250.0)
    ]
    # r2: 100 uses, all above 250 ms; the baseline's r2 is slow 2 times in 102 uses
    assert got[0] == ("rule", "r2", 100, 2, pytest.approx(100 * 2 / 102))
    # r2's events are the odd ones (segment de); timeouts fall on r1 (i % 20 == 0)
    assert got[1][:3] == ("segment", "de", 100) and len(got) == 2
    assert {c.counts for c in rank(candidate, baseline, P95, 250.0)} == {"slow events (> 250 ms)"}
    assert rank(candidate, baseline, P95) == []  # no threshold: nothing is slow


def test_a_latency_contributor_by_error_type_and_its_text():
    results = _traffic("production", None).merge(
        _aggregate([make_result(i, success=False, latency_ms=2000.0) for i in range(30)])
    )
    (top, *_) = rank(results, _traffic("pipeline", None), P95, 137.5)
    assert (top.dimension, top.value, top.candidate, top.expected) == (
        "error_type",
        "Timeout",
        30,
        0.0,
    )
    assert contributor_text(top) == (
        "error_type Timeout: slow events (> 137.5 ms) 30 candidate vs 0 baseline (expected 0.0)"
    )


def _feedback(system: str, complaining: str | None, n: int = 200) -> list[Feedback]:
    """``n`` verdicts naming rules r1..r4 and segments de/en: correct, but incorrect
    for ``complaining``'s answers and every 10th; every 50th names nothing."""
    return [
        Feedback(
            ts=T0,
            rollout="kai",
            query_id=f"q{i}",
            system=system,
            verdict="incorrect" if i % 10 == 0 or f"r{i % 4 + 1}" == complaining else "correct",
            rules=[] if i % 50 == 1 else [f"r{i % 4 + 1}"],
            segment=None if i % 50 == 1 else ("de" if i % 2 else "en"),
        )
        for i in range(n)
    ]


def _verdicts(feedback: list[Feedback]) -> WindowStats:
    stats = WindowStats()
    stats.add_feedback(feedback)
    return stats


def test_a_complaint_alert_ranks_the_rules_and_segments_complaints_concentrate_on():
    candidate = _verdicts(_feedback("production", "r4"))
    baseline = _verdicts(_feedback("pipeline", None))
    got = [
        (c.dimension, c.value, c.candidate, c.baseline, c.expected, c.counts)
        for c in rank(candidate, baseline, COMPLAINTS)
    ]
    # r4 (i % 4 == 3: odd, segment de): 50 verdicts, 48 naming it, all incorrect; the
    # baseline's complaints (every 10th i: even) are on r1, r3 and en alone, as the
    # candidate's other complaints: none above the expected
    assert got == [
        ("rule", "r4", 48, 0, 0.0, "complaints"),
        ("segment", "de", 48, 0, 0.0, "complaints"),
    ]
    assert contributor_text(rank(candidate, baseline, COMPLAINTS)[0]) == (
        "rule r4: complaints 48 candidate vs 0 baseline (expected 0.0)"
    )
    positive = rank(candidate, baseline, metric("feedback_positive_rate"))
    assert positive[0].counts == "verdicts not correct"


def test_feedback_that_names_no_rule_or_segment_gives_no_contributor():
    candidate = _verdicts(
        [f.model_copy(update={"rules": [], "segment": None}) for f in _feedback("production", "r4")]
    )
    assert rank(candidate, _verdicts(_feedback("pipeline", None)), COMPLAINTS) == []


def test_feedback_counts_by_rule_and_segment_in_batches_as_one_by_one():
    feedback = _feedback("production", "r4", n=120)
    batched, single = WindowStats(), WindowStats()
    for start in range(0, len(feedback), 7):
        batched.add_feedback(feedback[start : start + 7])
    for f in feedback:
        single.update_feedback(f)
    state = batched.to_state()
    assert state == single.to_state()
    assert state.rules["r4"].feedback == {"incorrect": 29}
    assert state.rules["r4"].uses == 0 and state.segments["de"].events == 0
    assert WindowStats.from_state(state).to_state() == state


def test_an_older_workers_partial_merges_as_no_slow_event_and_no_complaint():
    """A partial without the new fields (a worker before the upgrade) adds nothing to
    them; the newer one's counts stay."""
    old = WindowStatsState.model_validate(
        {
            "count": 3,
            "successes": 3,
            "rules": {"r2": {"uses": 3, "successes": 3, "confidence": 2.7}},
            "segments": {"de": {"events": 3, "bad": 0, "confidence": 2.7}},
            "feedback": {"incorrect": 1},
        }
    )
    new = _traffic("production", "r2")
    new.add_feedback(_feedback("production", "r4"))
    merged = WindowStats.from_state(new.to_state()).merge(WindowStats.from_state(old))
    assert merged.rule_uses["r2"] == new.rule_uses["r2"] + 3
    assert merged.rule_latency == new.rule_latency
    assert merged.rule_feedback == new.rule_feedback
    slower = slow.above(merged.rule_latency, 250.0, merged.latency)["r2"]
    assert slower == pytest.approx(100.0)
    assert math.isclose(merged.rule_confidence["r2"], new.rule_confidence["r2"] + 2.7)


def test_a_latency_guardrails_alert_counts_the_events_slower_than_its_own_threshold():
    plan = load_plan()
    (guardrail,) = [t for t in plan.rollback if t.guardrail and t.metric == "p95_latency_ms"]
    view, start = RolloutView("kai", 60), int(T0.timestamp())
    for system, stats in (
        ("production", _traffic("production", "r2")),
        ("pipeline", _traffic("pipeline", None)),
    ):
        view.apply(
            Partial(
                rollout="kai", system=system, window_start=to_datetime(start), window_seconds=60,
                source_topic="results", partition=0 if system == "production" else 1,
                first_offset=0, last_offset=0, stats=stats.to_state(),
            )
        )  # fmt: skip
    firing = Firing(guardrail, start, start, observed=400.0, samples=400, threshold=105.0)
    alerts = Alerts("kai", plan, 60)
    alert = alerts.fired(view, firing, guardrail.name, "candidate-specific", True, False, None)
    assert alert.threshold == 105.0
    (top, *_) = alert.contributors
    assert (top.dimension, top.value, top.candidate, top.counts) == (
        "rule", "r2", 100, "slow events (> 105 ms)"
    )  # fmt: skip
