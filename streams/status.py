"""The worker's live picture as JSON: windows per rollout and system."""

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


def view_json(view: RolloutView) -> dict[str, Any]:
    systems: dict[str, list[dict[str, Any]]] = {}
    for system, start, stats in view.items():
        entry = {
            "start": to_datetime(start).isoformat(),
            "end": to_datetime(start + view.window_seconds).isoformat(),
            **window_json(stats),
        }
        systems.setdefault(system, []).append(entry)
    return {"rollout": view.rollout, "window_seconds": view.window_seconds, "systems": systems}
