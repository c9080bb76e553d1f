"""The dashboard's figures from /status: systems, winner, rules, series (pure)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard import summary
from dashboard.service import alert_json
from tests.dashboard.test_feeds import alert
from tests.streams.status_sample import PER_SYSTEM, sample_status

VIEW = sample_status()["rollouts"]["kai-response"]


@pytest.fixture
def view() -> dict[str, Any]:
    return VIEW


def _with_counts(view: dict[str, Any], counts: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """``view`` with each system's (successes, count) replaced in the 300 s span."""
    out = copy.deepcopy(view)
    for system, (ok, n) in counts.items():
        window = out["rolling"]["300"]["systems"][system]
        window["count"] = n
        window["success_rate"] = {"value": ok / n, "low": 0.0, "high": 1.0} if n else None
    return out


def test_systems_baseline_first_with_roles(view: dict[str, Any]) -> None:
    data = summary.summarize(view)
    assert data["span"] == 300, "the shortest span is the default"
    assert [(s["system"], s["role"]) for s in data["systems"]] == [
        ("pipeline", "baseline"),
        ("production", "candidate"),
    ]
    assert data["systems"][1]["count"] == view["rolling"]["300"]["systems"]["production"]["count"]
    assert summary.summarize(view, 900)["systems"][0]["count"] == PER_SYSTEM
    assert summary.summarize(view, 123)["span"] == 300, "an unknown span falls back"


def test_a_clear_difference_names_the_winner(view: dict[str, Any]) -> None:
    w = summary.winner(view, 900)  # baseline 97% against candidate 88%, 400 events each
    assert w["decided"] and w["system"] == "pipeline"
    assert w["p_value"] < 1e-4
    assert w["low"] < w["difference"] < w["high"] < 0
    assert w["message"].startswith("pipeline leads: success -9.0 points")


def test_a_small_difference_is_not_yet_decided(view: dict[str, Any]) -> None:
    close = _with_counts(view, {"pipeline": (194, 200), "production": (192, 200)})
    w = summary.winner(close, 300)
    assert not w["decided"] and w["system"] is None
    assert 0.5 < w["p_value"] < 1
    assert w["message"].startswith("not yet decided: success -1.0 points")


def test_too_few_events_is_not_yet_decided(view: dict[str, Any]) -> None:
    few = _with_counts(view, {"pipeline": (29, 29), "production": (0, 29)})
    w = summary.winner(few, 300)
    assert not w["decided"] and w["p_value"] is None
    assert w["message"] == "not yet decided: 29 of 30 events per system"
    empty = summary.summarize({"rollout": "r", "rolling": {}, "systems": {}})
    assert empty["winner"]["message"] == "not yet decided: 0 of 30 events per system"


@given(st.integers(30, 5000), st.integers(30, 5000), st.floats(0, 1), st.floats(0, 1))
def test_swapping_the_systems_swaps_the_winner(n_a: int, n_b: int, r_a: float, r_b: float) -> None:
    base = VIEW
    a, b = (round(r_a * n_a), n_a), (round(r_b * n_b), n_b)
    w1 = summary.winner(_with_counts(base, {"production": a, "pipeline": b}), 300)
    w2 = summary.winner(_with_counts(base, {"production": b, "pipeline": a}), 300)
    assert w1["decided"] == w2["decided"]
    assert w1["p_value"] == pytest.approx(w2["p_value"])
    if w1["decided"]:
        flip = {"production": "pipeline", "pipeline": "production"}
        assert w2["system"] == flip[w1["system"]]
    if a[0] * b[1] == b[0] * a[1]:  # equal rates: never a winner
        assert not w1["decided"]


def test_rules_by_use_then_name(view: dict[str, Any]) -> None:
    rows = summary.rules(view, 900)
    assert rows[:2] == [
        {"rule": "greeting", "system": "pipeline", "uses": 400, "success_rate": 0.97},
        {"rule": "greeting", "system": "production", "uses": 400, "success_rate": 0.88},
    ]
    assert [r["uses"] for r in rows] == sorted((r["uses"] for r in rows), reverse=True)
    assert len(rows) == 6


def test_series_has_one_point_per_window_in_order(view: dict[str, Any]) -> None:
    series = summary.series(view)
    assert set(series) == {"pipeline", "production"}
    points = series["production"]
    assert len(points) == 10
    assert [p["start"] for p in points] == sorted(p["start"] for p in points)
    assert sum(p["count"] for p in points) == PER_SYSTEM
    first = view["systems"]["production"][0]
    assert points[0]["p95_latency_ms"] == first["p95_latency_ms"]["value"]
    assert points[0]["success_rate"] == first["success_rate"]["value"]


@pytest.mark.parametrize(
    ("metric", "counted"), [("success_rate", "events"), ("complaint_rate", "verdicts")]
)
def test_an_alert_says_what_its_samples_are(metric: str, counted: str) -> None:
    shown = alert_json(alert().model_copy(update={"metric": metric}))
    assert shown["counted"] == counted
