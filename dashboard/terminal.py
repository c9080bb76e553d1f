"""``phasegate watch``: the dashboard's figures in the terminal, from the worker's /status.

:func:`render` is pure (a status dict -> a rich renderable); :func:`watch` polls the
worker and redraws with ``rich.live.Live``. When the worker does not answer, the screen
says so and keeps retrying.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dashboard import summary
from dashboard.worker_client import WorkerUnavailable, fetch_status
from schemas.metrics import METRICS, Metric, Unit
from schemas.settings import Settings

DASH = "-"


def pct(v: float | None) -> str:
    return DASH if v is None else f"{v * 100:.1f}%"


def ms(v: float | None) -> str:
    return DASH if v is None else f"{v:.0f} ms"


def counts(d: Mapping[str, int] | None) -> str:
    items = sorted((d or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {n}" for k, n in items) or "none"


def fixed3(v: float | None) -> str:
    return DASH if v is None else f"{v:.3f}"


def whole(v: float | None) -> str:
    return DASH if v is None else f"{v:.0f}"


FIGURE: dict[Unit, Callable[[float | None], str]] = {
    "share": pct,
    "ms": ms,
    "score": fixed3,
    "count": whole,
}
"""How a value of each unit of the metric registry is shown."""


def _figure(m: Metric) -> Callable[[Mapping[str, Any]], str]:
    return lambda s: FIGURE[m.unit]((s.get(m.name) or {}).get("value"))


ROWS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("queries", lambda s: f"{s['count']:,}"),
    *((m.title, _figure(m)) for m in METRICS.values()),
    ("errors by type", lambda s: counts(s["errors"])),
    ("feedback", lambda s: counts(s["feedback"])),
)


def systems_table(data: Mapping[str, Any]) -> Table:
    table = Table(title=f"{data['rollout']}: last {data['span'] // 60} min", title_justify="left")
    table.add_column("")
    for s in data["systems"]:
        table.add_column(f"{s['system']} ({s['role']})", justify="right")
    for label, fmt in ROWS:
        table.add_row(label, *(fmt(s) for s in data["systems"]))
    return table


def rules_table(rules: list[Mapping[str, Any]], top: int = 10) -> Table:
    table = Table(title="rules by use", title_justify="left")
    for col in ("rule", "system", "uses", "success rate"):
        table.add_column(col, justify="right" if col in ("uses", "success rate") else "left")
    for r in rules[:top]:
        table.add_row(r["rule"], r["system"], f"{r['uses']:,}", pct(r["success_rate"]))
    return table


def gate_table(gates: Mapping[str, Any]) -> Table:
    """The gates of one phase: criterion, verdict, observed value, interval, threshold."""
    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
    table = Table(
        title=f"gates of phase {gates['phase']} ({gates['phase_name']}): "
        f"[{colour[gates['outcome']]}]{gates['outcome']}[/]"
    )
    for col in ("criterion", "verdict", "observed", "interval", "threshold", "samples"):
        table.add_column(col, justify="left" if col in ("criterion", "verdict") else "right")

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    for v in gates["verdicts"]:
        samples = str(v["samples"])
        if v.get("reference_samples") is not None:
            samples += f" vs {v['reference_samples']}"
        table.add_row(
            v["criterion"],
            f"[{colour[v['outcome']]}]{v['outcome']}[/]" + (f" ({v['note']})" if v["note"] else ""),
            num(v["observed"]),
            "-" if v["low"] is None else f"{num(v['low'])} .. {num(v['high'])}",
            num(v["threshold"]),
            samples,
        )
    return table


def render_rollout(
    view: Mapping[str, Any], span: int | None = None, control: Mapping[str, Any] | None = None
) -> RenderableType:
    """One rollout of /status: systems, winner, the worker's phase and gates, rules."""
    data = summary.summarize(view, span, control)
    if data["span"] is None:
        return Text(f"{data['rollout']}: no events yet")
    w = data["winner"]
    parts: list[RenderableType] = [
        systems_table(data),
        Text(f"winner so far: {w['message']}", style="bold green" if w["decided"] else "yellow"),
    ]
    if control and control.get("phase") is not None:
        incidents = ", ".join(data["incidents"]) or "none"
        where = f"phase {control['phase']}, weight {control['weight']}%"
        parts.append(Text(f"worker: {where}; open incidents: {incidents}"))
    if data["gates"]:
        parts.append(gate_table(data["gates"]))
    parts.append(rules_table(data["rules"]))
    return Group(*parts)


def render(
    status: Mapping[str, Any], rollout: str | None = None, span: int | None = None
) -> RenderableType:
    """The whole screen for one /status snapshot (one rollout, or all of them)."""
    views = status.get("rollouts") or {}
    shown = [rollout] if rollout else sorted(views)
    counters = status.get("counters") or {}
    footer = Text("worker: " + ", ".join(f"{k} {v:,}" for k, v in counters.items()), style="dim")
    if not views or (rollout and rollout not in views):
        what = f"rollout {rollout!r}" if rollout else "any rollout"
        return Group(Text(f"The worker has seen no events of {what} yet."), footer)
    controls = status.get("control") or {}
    return Group(
        *(render_rollout(views[n], span, controls.get(n)) for n in shown if n in views), footer
    )


def unavailable(message: str) -> RenderableType:
    return Text(message, style="red")


def screen(
    settings: Settings, rollout: str | None, span: int | None
) -> tuple[RenderableType, bool]:
    """The screen now, and whether the worker answered."""
    try:
        return render(fetch_status(settings, rollout), rollout, span), True
    except WorkerUnavailable as exc:
        return unavailable(str(exc)), False


def watch(
    settings: Settings,
    *,
    rollout: str | None = None,
    span: int | None = None,
    interval: float = 5.0,
    once: bool = False,
    console: Console | None = None,
) -> bool:
    """Redraw every ``interval`` seconds until Ctrl-C (``once``: print one screen).

    Returns whether the worker answered the last time it was asked.
    """
    console = console or Console()
    shown, ok = screen(settings, rollout, span)
    if once:
        console.print(shown)
        return ok
    with Live(shown, console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                shown, ok = screen(settings, rollout, span)
                live.update(shown, refresh=True)
        except KeyboardInterrupt:
            pass
    return ok
