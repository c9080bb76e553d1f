"""The worker's live picture as JSON: windows, rolling windows and deltas per rollout."""

from __future__ import annotations

from typing import Any

from streams.aggregate import WindowStats
from streams.stats import Estimate
from streams.windows import RolloutView, to_datetime


def _estimate(e: Estimate | None) -> dict[str, float] | None:
    return None if e is None else {"value": e.value, "low": e.low, "high": e.high}


def window_json(stats: WindowStats) -> dict[str, Any]:
    """The metrics of one window as the user sees them."""
    return {
        "count": stats.count,
        "success_rate": _estimate(stats.success_rate),
        "confidence": _estimate(stats.confidence),
        "latency_ms": {
            "mean": stats.mean_latency_ms,
            "p50": stats.latency_quantile(0.50),
            "p95": stats.latency_quantile(0.95),
            "p99": stats.latency_quantile(0.99),
        },
        "errors": dict(stats.errors),
        "critical_errors": stats.critical,
        "fallback_rate": stats.fallback_rate,
        "feedback": dict(stats.feedback),
        "feedback_positive_rate": _estimate(stats.feedback_positive_rate),
        "top_rules": [{"rule": r, "uses": u, "success_rate": s} for r, u, s in stats.top_rules()],
        "late": stats.late,
    }


def _value(e: Estimate | None) -> float | None:
    return None if e is None else e.value


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def deltas(candidate: WindowStats, baseline: WindowStats) -> dict[str, float | None]:
    """Candidate minus baseline for the headline metrics (None where one side is empty)."""
    return {
        "success_rate": _minus(_value(candidate.success_rate), _value(baseline.success_rate)),
        "confidence": _minus(_value(candidate.confidence), _value(baseline.confidence)),
        "mean_latency_ms": _minus(candidate.mean_latency_ms, baseline.mean_latency_ms),
        "p95_latency_ms": _minus(candidate.latency_quantile(0.95), baseline.latency_quantile(0.95)),
        "p99_latency_ms": _minus(candidate.latency_quantile(0.99), baseline.latency_quantile(0.99)),
        "fallback_rate": _minus(candidate.fallback_rate, baseline.fallback_rate),
    }


def view_json(
    view: RolloutView, rolling: list[int], baseline: str, candidate: str
) -> dict[str, Any]:
    """Tumbling windows per system, then each rolling span with candidate-minus-baseline."""
    systems: dict[str, list[dict[str, Any]]] = {}
    for system, start, stats in view.items():
        entry = {
            "start": to_datetime(start).isoformat(),
            "end": to_datetime(start + view.window_seconds).isoformat(),
            **window_json(stats),
        }
        systems.setdefault(system, []).append(entry)
    spans = {}
    for span in rolling:
        merged = {system: view.rolling(system, span) for system in view.systems()}
        spans[str(span)] = {
            "systems": {system: window_json(stats) for system, stats in merged.items()},
            "delta": deltas(
                merged.get(candidate, WindowStats()), merged.get(baseline, WindowStats())
            ),
        }
    end = view.end
    return {
        "rollout": view.rollout,
        "window_seconds": view.window_seconds,
        "end": None if end is None else to_datetime(end).isoformat(),
        "baseline": baseline,
        "candidate": candidate,
        "systems": systems,
        "rolling": spans,
    }
