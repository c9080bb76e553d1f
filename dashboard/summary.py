"""What the dashboard and ``phasegate watch`` show, derived from one rollout of ``/status``.

Pure functions of the worker's JSON (``streams.status.view_json``): per-system figures of
one rolling span, the winner so far (a two-proportion test on that span), the rules
table and the per-window series of the last hour. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.metrics import METRICS
from schemas.stats import two_proportions

ALPHA = 0.05
"""Significance level of the winner test (two-sided)."""
MIN_SAMPLES = 30
"""Events each system needs in the span before a winner is named."""

Json = dict[str, Any]


def spans(view: Mapping[str, Any]) -> list[int]:
    """The rolling spans of a view, in seconds, shortest first."""
    return sorted(int(s) for s in view.get("rolling", {}))


def pick_span(view: Mapping[str, Any], wanted: int | None = None) -> int | None:
    """``wanted`` if the view has it, else its shortest span (the most live one)."""
    available = spans(view)
    if not available:
        return None
    return wanted if wanted in available else available[0]


def _successes(window: Mapping[str, Any]) -> int:
    rate = window.get("success_rate")
    return 0 if rate is None else round(rate["value"] * window["count"])


def systems_of(view: Mapping[str, Any], span: int) -> list[Json]:
    """Per system (baseline, candidate, then others): its role and figures in ``span``."""
    windows = view["rolling"][str(span)]["systems"]
    roles = {view.get("baseline"): "baseline", view.get("candidate"): "candidate"}
    order = {"baseline": 0, "candidate": 1}
    out = [
        {"system": name, "role": roles.get(name, "other"), **window}
        for name, window in windows.items()
    ]
    return sorted(out, key=lambda s: (order.get(s["role"], 2), s["system"]))


def winner(view: Mapping[str, Any], span: int | None, alpha: float = ALPHA) -> Json:
    """The system with the higher success rate, if the difference is significant.

    Candidate minus baseline, two-proportion z-test (pooled) on the span's counts; the
    difference's 95% interval is unpooled. ``decided`` is false with fewer than
    ``MIN_SAMPLES`` per system or ``p >= alpha``.
    """
    windows = view["rolling"][str(span)]["systems"] if span is not None else {}
    cand, base = view.get("candidate"), view.get("baseline")
    c, b = windows.get(cand) or {"count": 0}, windows.get(base) or {"count": 0}
    out: Json = {"decided": False, "system": None, "alpha": alpha, "p_value": None}
    n = min(c["count"], b["count"])
    test = two_proportions(_successes(c), c["count"], _successes(b), b["count"])
    if test is None or n < MIN_SAMPLES:
        return {**out, "message": f"not yet decided: {n} of {MIN_SAMPLES} events per system"}
    p, diff = test.p_two_sided, test.difference
    out.update(p_value=p, difference=diff, low=test.low, high=test.high)
    change = f"success {diff * 100:+.1f} points (candidate minus baseline), p = {p:.2g}"
    if p < alpha and diff != 0:
        leader = cand if diff > 0 else base
        return {**out, "decided": True, "system": leader, "message": f"{leader} leads: {change}"}
    return {**out, "message": f"not yet decided: {change}"}


def rules(view: Mapping[str, Any], span: int) -> list[Json]:
    """The rules table: each (rule, system) of the span's top rules, by use."""
    rows = [
        {"rule": r["rule"], "system": system, "uses": r["uses"], "success_rate": r["success_rate"]}
        for system, window in view["rolling"][str(span)]["systems"].items()
        for r in window.get("top_rules", [])
    ]
    return sorted(rows, key=lambda r: (-r["uses"], r["rule"], r["system"]))


def series(view: Mapping[str, Any]) -> dict[str, list[Json]]:
    """Per system, one point per tumbling window (the worker keeps the last hour): its
    count and every metric's value, by the registry's names."""
    out: dict[str, list[Json]] = {}
    for system, windows in view.get("systems", {}).items():
        out[system] = [
            {"start": w["start"], "end": w["end"], "count": w["count"]}
            | {name: (w.get(name) or {}).get("value") for name in METRICS}
            for w in sorted(windows, key=lambda w: w["start"])
        ]
    return out


CATALOG = [{"name": m.name, "title": m.title, "unit": m.unit} for m in METRICS.values()]
"""The metrics the page shows, in order, as the registry names and measures them."""


def summarize(
    view: Mapping[str, Any], span: int | None = None, control: Mapping[str, Any] | None = None
) -> Json:
    """Everything the page shows about one rollout of ``/status``, for one span.

    ``control`` is the rollout's entry in the status' ``control`` section (the worker's
    phase, weight, gate report and open incidents), when the worker has one.
    """
    chosen = pick_span(view, span)
    control = control or {}
    base: Json = {
        "rollout": view.get("rollout"),
        "baseline": view.get("baseline"),
        "candidate": view.get("candidate"),
        "end": view.get("end"),
        "spans": spans(view),
        "metrics": CATALOG,
        "span": chosen,
        "series": series(view),
        "gates": control.get("gates"),
        "incidents": list(control.get("incidents") or []),
    }
    if chosen is None:
        return {**base, "systems": [], "winner": winner(view, None), "rules": [], "delta": {}}
    return {
        **base,
        "systems": systems_of(view, chosen),
        "winner": winner(view, chosen),
        "rules": rules(view, chosen),
        "delta": view["rolling"][str(chosen)].get("delta", {}),
    }
