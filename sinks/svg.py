"""Line charts as inline SVG, drawn here: no script, no library, no network."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
Series = Mapping[str, Sequence[tuple[datetime, float]]]


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    return [low + (high - low) * i / count for i in range(count + 1)]


def line_chart(
    title: str,
    series: Series,
    y_format: Callable[[float], str] = lambda v: f"{v:.2f}",
    step: bool = False,
    width: int = 680,
    height: int = 230,
) -> str:
    """One polyline per series over a shared time axis; ``step`` draws a step function."""
    points = [p for values in series.values() for p in values]
    left, right, top, bottom = 64, 130, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{html.escape(title)}</text>',
    ]
    if not points:
        out.append(f'<text x="{left}" y="{top + plot_h / 2}">no data</text></svg>')
        return "".join(out)
    t0 = min(t for t, _ in points).timestamp()
    t1 = max(t for t, _ in points).timestamp()
    y0, y1 = min(v for _, v in points), max(v for _, v in points)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    span_t = (t1 - t0) or 1.0

    def x(t: datetime) -> float:
        return left + (t.timestamp() - t0) / span_t * plot_w

    def y(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * plot_h

    for tick in _ticks(y0, y1):
        yy = y(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{html.escape(y_format(tick))}</text>"
        )
    for stamp, anchor in ((t0, "start"), (t1, "end")):
        label = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")
        xx = left + (stamp - t0) / span_t * plot_w
        out.append(
            f'<text x="{xx:.1f}" y="{height - 12}" text-anchor="{anchor}">{label} UTC</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
    )
    for i, (name, values) in enumerate(sorted(series.items())):
        color = COLORS[i % len(COLORS)]
        coords: list[str] = []
        previous: float | None = None
        for t, v in sorted(values):
            if step and previous is not None:
                coords.append(f"{x(t):.1f},{y(previous):.1f}")
            coords.append(f"{x(t):.1f},{y(v):.1f}")
            previous = v
        if step and values:
            coords.append(f"{left + plot_w:.1f},{y(previous or 0):.1f}")
        out.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.8" '
            f'points="{" ".join(coords)}"/>'
        )
        if len(values) == 1:
            t, v = values[0]
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"/>')
        ly = top + 14 + 16 * i
        out.append(
            f'<line x1="{left + plot_w + 10}" x2="{left + plot_w + 28}" y1="{ly - 4}" '
            f'y2="{ly - 4}" stroke="{color}" stroke-width="3"/>'
            f'<text x="{left + plot_w + 32}" y="{ly}">{html.escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
