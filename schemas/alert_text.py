"""An alert in words: one line for terminals, logs and chat, with the reasons it carries."""

from __future__ import annotations

from schemas.events import Alert, Contributor
from schemas.metrics import METRICS

SHOWN = 3  # contributors in a one-line text


def contributor_text(c: Contributor) -> str:
    """``error_type timeout: 41 candidate vs 3 baseline (expected 2.1)`` for failures,
    ``rule r7: confidence deficit 41 candidate vs ...`` for what else it counts."""
    counts = "" if c.counts == "failures" else f"{c.counts} "
    return (
        f"{c.dimension} {c.value}: {counts}{c.candidate} candidate vs {c.baseline} baseline "
        f"(expected {c.expected:.1f})"
    )


def sample_name(alert: Alert) -> str:
    """What the alert's samples are: ``verdicts`` for a feedback metric, else ``events``."""
    meaning = METRICS.get(alert.metric)
    return meaning.sample_name if meaning is not None else "events"


def why(alert: Alert, top: int | None = SHOWN) -> str:
    """The alert's ``top`` contributors (None: all), largest excess first ("" if none)."""
    return "; ".join(contributor_text(c) for c in alert.contributors[:top])


def headline(alert: Alert) -> str:
    """What happened, the action taken and why, on one line."""
    action = ""
    if alert.action is not None:
        action = f" -> weight {alert.action.weight_from}% to {alert.action.weight_to}%"
    reasons = why(alert)
    dry = "dry-run " if alert.dry_run else ""
    cause = f" [{alert.attribution}]" if alert.attribution else ""
    return (
        f"{alert.ts:%Y-%m-%d %H:%M:%S} {alert.severity.upper():8} {dry}{alert.kind}{cause} "
        f"{alert.rollout}/{alert.system}: {alert.metric} {alert.observed:.4g} "
        f"(limit {alert.threshold:.4g}) over {alert.samples} {sample_name(alert)}{action}"
        + (f"; why: {reasons}" if reasons else "")
    )
