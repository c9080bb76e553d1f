"""An alert in words: one line for terminals, logs and chat, with the reasons it carries."""

from __future__ import annotations

from schemas.events import Alert, Contributor, Figure
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


def _figure(f: Figure) -> str:
    interval = f" ({f.low:.4g}-{f.high:.4g})" if f.low is not None and f.high is not None else ""
    return f"{f.system} {f.value:.4g}{interval} over {f.samples}"


def evidence(alert: Alert) -> str:
    """The window span and both systems' figures with their 95% intervals:
    ``window 10:01:00-10:03:00: production 0.82 (0.77-0.86) over 240 events, ...``."""
    span = f"window {alert.window.start:%H:%M:%S}-{alert.window.end:%H:%M:%S}"
    if not alert.figures:
        return span
    figures = [_figure(f) for f in alert.figures]
    figures[0] += f" {sample_name(alert)}"
    return f"{span}: {', '.join(figures)}"


def kind_text(alert: Alert) -> str:
    """The alert's kind, marked ``dry-run`` before it and its attribution after it:
    ``dry-run rollback_held [shared]``."""
    dry = "dry-run " if alert.dry_run else ""
    cause = f" [{alert.attribution}]" if alert.attribution else ""
    return f"{dry}{alert.kind}{cause}"


def headline(alert: Alert) -> str:
    """What happened, the action taken, the evidence and why, on one line."""
    action = ""
    if alert.action is not None:
        action = f" -> weight {alert.action.weight_from}% to {alert.action.weight_to}%"
    reasons = why(alert)
    return (
        f"{alert.ts:%Y-%m-%d %H:%M:%S} {alert.severity.upper():8} {kind_text(alert)} "
        f"{alert.rollout}/{alert.system}: {alert.metric} {alert.observed:.4g} "
        f"(limit {alert.threshold:.4g}) over {alert.samples} {sample_name(alert)}{action}; "
        f"{evidence(alert)}" + (f"; why: {reasons}" if reasons else "")
    )
