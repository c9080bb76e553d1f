from streams.aggregate import WindowStats
from streams.status import deltas, view_json, window_json
from streams.windows import PartitionAccumulator, RolloutView
from tests.streams.conftest import T0, make_result


def _stats(system: str, n: int, ok: int, latency: float) -> WindowStats:
    stats = WindowStats()
    for i in range(n):
        stats.update(make_result(i, system=system, success=i < ok, latency_ms=latency))
    return stats


def test_deltas_are_candidate_minus_baseline():
    candidate = window_json(_stats("production", 100, 90, 120.0))
    baseline = window_json(_stats("pipeline", 100, 97, 100.0))
    d = deltas(candidate, baseline)
    assert round(d["success_rate"], 6) == -0.07
    assert round(d["mean_latency_ms"], 6) == 20.0
    p95 = candidate["p95_latency_ms"]["value"] - baseline["p95_latency_ms"]["value"]
    assert d["p95_latency_ms"] == p95 and 19 < p95 < 21
    empty = window_json(WindowStats())
    assert deltas(empty, baseline)["success_rate"] is None
    assert deltas(None, baseline)["success_rate"] is None


def test_view_json_has_windows_rolling_spans_and_deltas():
    acc = PartitionAccumulator("results", 0, window_seconds=60, lateness=600)
    now = T0.timestamp() + 3600
    for i in range(600):
        system = "production" if i % 2 else "pipeline"
        acc.add(i, make_result(i, system=system, seconds=i, success=i % 10 != 1), now)
    view = RolloutView("kai", 60)
    for p in acc.drain():
        view.apply(p)
    data = view_json(view, [120, 600], baseline="pipeline", candidate="production")
    assert len(data["systems"]["production"]) == 10
    assert data["rolling"]["600"]["systems"]["production"]["count"] == 300
    assert data["rolling"]["120"]["systems"]["pipeline"]["count"] == 60
    assert round(data["rolling"]["600"]["delta"]["success_rate"], 9) == -0.2  # 80% vs 100%
    assert data["end"] == "2026-01-01T00:10:00+00:00"
