"""Contributors: the candidate's excess bad events by error type, rule and segment."""

from collections import Counter

import pytest

from schemas.alert_text import contributor_text
from schemas.internal import Partial
from schemas.metrics import metric
from schemas.plan import Roles
from streams.aggregate import WindowStats
from streams.contributors import contributors, rank
from streams.windows import RolloutView, to_datetime
from tests.streams.conftest import T0, make_result


def _stats(count, successes, errors, rules, segments) -> WindowStats:
    stats = WindowStats()
    stats.count, stats.successes, stats.errors = count, successes, Counter(errors)
    stats.rule_uses = Counter({r: uses for r, (uses, _) in rules.items()})
    stats.rule_successes = Counter({r: ok for r, (_, ok) in rules.items()})
    stats.segment_events = Counter({s: n for s, (n, _) in segments.items()})
    stats.segment_bad = Counter({s: bad for s, (_, bad) in segments.items()})
    return stats


def test_ranks_the_excess_over_the_baselines_rate_by_hand():
    candidate = _stats(
        1000,
        900,
        {"timeout": 70, "model_error": 30},
        {"r1": (500, 440), "r2": (300, 290), "r3": (20, 16), "r4": (10, 2)},
        {"de": (600, 90), "en": (400, 10)},
    )
    baseline = _stats(
        2000,
        1940,
        {"timeout": 20, "model_error": 40},
        {"r1": (1000, 980), "r2": (600, 560)},
        {"de": (1200, 30), "en": (800, 30)},
    )
    got = [
        (c.dimension, c.value, c.candidate, c.baseline, c.expected)
        for c in rank(candidate, baseline)
    ]
    assert got == [
        ("segment", "de", 90, 30, 15.0),  # 600 * 30/1200: excess 75
        ("error_type", "timeout", 70, 20, 10.0),  # 1000 * 20/2000: 60
        ("rule", "r1", 60, 20, 10.0),  # 500 * 20/1000: 50
        ("error_type", "model_error", 30, 40, 20.0),  # 10
        ("rule", "r4", 8, 0, pytest.approx(0.3)),  # unseen by the baseline: its overall 3%
    ]  # r2 (10 < 20 expected), en (10 < 15) and r3 (4 < 5 bad events) do not contribute
    assert [c.value for c in rank(candidate, baseline, top=2)] == ["de", "timeout"]


def test_without_a_baseline_every_bad_value_is_excess():
    candidate = _stats(10, 3, {"timeout": 7}, {}, {})
    (only,) = rank(candidate, WindowStats())
    assert (only.value, only.candidate, only.expected) == ("timeout", 7, 0.0)


def _partial(system: str, start: int, results) -> Partial:
    stats = WindowStats()
    for r in results:
        stats.update(r)
    return Partial(
        rollout="kai",
        system=system,
        window_start=to_datetime(start),
        window_seconds=60,
        source_topic="results",
        partition=0 if system == "production" else 1,
        first_offset=start,
        last_offset=start,
        stats=stats.to_state(),
    )


def test_counts_only_the_alerts_windows():
    t0 = int(T0.timestamp())
    view = RolloutView("kai", 60)
    bad = [make_result(i, success=False, segment="de") for i in range(6)]
    good = [make_result(i, system="pipeline", segment="de") for i in range(6)]
    for start in (t0, t0 + 60, t0 + 120):
        view.apply(_partial("production", start, bad))
        view.apply(_partial("pipeline", start, good))
    got = contributors(view, Roles(), t0 + 60, t0 + 120)
    assert [(c.dimension, c.value, c.candidate) for c in got] == [
        ("error_type", "Timeout", 12),
        ("segment", "de", 12),
    ]


def _aggregate(results) -> WindowStats:
    stats = WindowStats()
    stats.add_results(results)
    return stats


def _answers(system: str, low: str, n: int = 300) -> WindowStats:
    """``n`` successful answers over rules r1..r3 and segments de/en, confidence 0.9, but
    0.5 for those with rule ``low``."""
    results = [
        make_result(
            i,
            system=system,
            rules=(f"r{i % 3 + 1}",),
            segment="de" if i % 2 else "en",
            confidence=0.5 if f"r{i % 3 + 1}" == low else 0.9,
        )
        for i in range(n)
    ]
    return _aggregate(results)


def test_a_confidence_alert_ranks_where_the_candidates_confidence_deficit_concentrates():
    candidate, baseline = _answers("production", "r3"), _answers("pipeline", "none")
    got = [
        (c.dimension, c.value, c.candidate, c.baseline, c.counts)
        for c in rank(candidate, baseline, metric("mean_confidence"))
    ]
    # r3: 100 uses at 0.5 (deficit 50) where the baseline's r3 is at 0.9 (expected 10);
    # each segment holds half of them: 25 + 100 * 0.1 against 150 * 0.1, a smaller excess
    assert got[0] == ("rule", "r3", 50, 10, "confidence deficit")
    assert sorted(got[1:]) == [
        ("segment", "de", 35, 15, "confidence deficit"),
        ("segment", "en", 35, 15, "confidence deficit"),
    ]
    assert rank(candidate, baseline, metric("success_rate")) == []  # no failures at all


def test_a_confidence_contributor_says_what_it_counts():
    candidate, baseline = _answers("production", "r3"), _answers("pipeline", "none")
    (top, *_) = rank(candidate, baseline, metric("mean_confidence"))
    assert contributor_text(top) == (
        "rule r3: confidence deficit 50 candidate vs 10 baseline (expected 10.0)"
    )


def test_a_latency_or_feedback_alert_names_no_failures():
    candidate = _stats(1000, 900, {"timeout": 100}, {"r1": (500, 400)}, {"de": (600, 100)})
    candidate.feedback.update({"incorrect": 40, "correct": 60})
    baseline = _stats(1000, 990, {"timeout": 10}, {"r1": (500, 495)}, {"de": (600, 10)})
    for name in ("complaint_rate", "feedback_positive_rate", "p95_latency_ms"):
        assert rank(candidate, baseline, metric(name), 250.0) == []
