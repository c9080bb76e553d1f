"""The worker's live picture as JSON: windows, rolling windows and deltas per rollout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.metrics import METRICS
from schemas.stats import Estimate
from streams.aggregate import WindowStats
from streams.stage2 import Stage2, control_json
from streams.windows import RolloutView, to_datetime


def _estimate(e: Estimate | None) -> dict[str, float] | None:
    return None if e is None else {"value": e.value, "low": e.low, "high": e.high}


def window_json(stats: WindowStats) -> dict[str, Any]:
    """The metrics of one window as the user sees them: every metric of the registry
    (``schemas.metrics``) by its name, with its 95% interval, and the raw counts."""
    return {
        "count": stats.count,
        **{name: _estimate(m.estimate(stats)) for name, m in METRICS.items()},
        "errors": dict(stats.errors),
        "feedback": dict(stats.feedback),
        "top_rules": [{"rule": r, "uses": u, "success_rate": s} for r, u, s in stats.top_rules()],
        "late": stats.late,
    }


def _value(window: Mapping[str, Any] | None, name: str) -> float | None:
    return ((window or {}).get(name) or {}).get("value")


def deltas(
    candidate: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None
) -> dict[str, float | None]:
    """Candidate minus baseline of every metric (of two :func:`window_json`; None where
    one side has no data)."""
    out = {}
    for name in METRICS:
        c, b = _value(candidate, name), _value(baseline, name)
        out[name] = None if c is None or b is None else c - b
    return out


def view_json(
    view: RolloutView, rolling: list[int], baseline: str, candidate: str, *, windows: bool = True
) -> dict[str, Any]:
    """Tumbling windows per system (``systems``; left out unless ``windows``: /metrics
    exports only the rolling ones), then each rolling span with candidate-minus-baseline."""
    systems: dict[str, list[dict[str, Any]]] = {}
    for system, start, stats in view.items() if windows else ():
        entry = {
            "start": to_datetime(start).isoformat(),
            "end": to_datetime(start + view.window_seconds).isoformat(),
            **window_json(stats),
        }
        systems.setdefault(system, []).append(entry)
    spans = {}
    for span in rolling:
        merged = {system: window_json(view.rolling(system, span)) for system in view.systems()}
        spans[str(span)] = {
            "systems": merged,
            "delta": deltas(merged.get(candidate), merged.get(baseline)),
        }
    end = view.end
    return {
        "rollout": view.rollout,
        "window_seconds": view.window_seconds,
        "end": None if end is None else to_datetime(end).isoformat(),
        "baseline": baseline,
        "candidate": candidate,
        **({"systems": systems} if windows else {}),
        "rolling": spans,
    }


def status_json(
    stage2: Stage2,
    rollout: str | None,
    roles: tuple[list[int], str, str],
    worker: Mapping[str, Any],
) -> tuple[dict[str, Any], int]:
    """``GET /status`` and its HTTP status: the ``worker`` sections, then the views and
    control of every rollout, or of ``rollout`` only (404 with an ``error`` if the worker
    has seen no partial of it)."""
    if rollout is None:
        names = sorted(stage2.views)
    else:
        names = [rollout] if rollout in stage2.views else []
    body = {
        **worker,
        "rollouts": {r: view_json(stage2.views[r], *roles) for r in names},
        "control": {r: control_json(stage2, r) for r in names},
    }
    if rollout is not None and not names:
        return {**body, "error": f"the worker has seen no events of rollout {rollout!r}"}, 404
    return body, 200
