"""The per-system report of one rollout over a time range, from the rollups.

Whole hours, minutes and seconds come from ``results_1h``, ``results_1m`` and
``results_1s`` (``sinks.rollups``): exact counts and sums, P95 from the merged t-digests.
``final=True`` reads every row from ``results FINAL`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich import box
from rich.table import Table

from schemas.metrics import METRICS
from sinks.rollups import LATENCY_MERGE, RESULTS
from sinks.store import Store

REPORT_SQL = f"""
SELECT
    system,
    sum(events),
    sum(successes) / sum(events),
    sum(confidence_sum) / sum(events),
    {LATENCY_MERGE}[2],
    sum(errors),
    sum(critical_errors),
    sum(fallbacks),
    sum(successes),
    sum(latency_sum) / sum(events),
    sum(confidence_sum),
    sum(confidence_sq_sum),
    sum(latency_sum),
    sum(latency_sq_sum)
FROM {{source}}
GROUP BY system
HAVING sum(events) > 0
ORDER BY system
"""


@dataclass(frozen=True)
class SystemReport:
    """One system's numbers for a rollout over a time range."""

    system: str
    events: int
    success_rate: float
    mean_confidence: float
    p95_latency_ms: float
    errors: int
    critical_errors: int
    fallbacks: int
    successes: int = 0
    mean_latency_ms: float = 0.0
    confidence_sum: float = 0.0
    confidence_sq_sum: float = 0.0
    latency_sum: float = 0.0
    latency_sq_sum: float = 0.0


def system_report(
    store: Store,
    database: str,
    rollout: str,
    since: datetime | None = None,
    until: datetime | None = None,
    final: bool = False,
) -> list[SystemReport]:
    """Per system: events, success, confidence, P95 latency, errors, for since <= ts < until."""
    source, params = RESULTS.source(database, rollout, since, until, final)
    rows = store.query(REPORT_SQL.format(source=source), params)
    return [SystemReport(*row) for row in rows]


_HEADERS = {
    "system": "system",
    "events": "events",
    "success_rate": "success",
    "mean_confidence": "conf",
    "p95_latency_ms": "p95 ms",
    "errors": "errors",
    "critical_errors": "critical",
    "fallbacks": "fallback",
}


def _cells(report: SystemReport) -> list[str]:
    def cell(value: Any, name: str) -> str:
        unit = METRICS[name].unit if name in METRICS else None  # a metric, in its unit
        if unit == "share":
            return f"{value:.2%}"
        if isinstance(value, float):
            return f"{value:.3f}" if unit == "score" else f"{value:.1f}"
        return str(value)

    return [cell(getattr(report, name), name) for name in _HEADERS]


def as_table(reports: list[SystemReport], title: str = "") -> Table:
    """A rich table, one row per system."""
    table = Table(title=title or None, box=box.SIMPLE_HEAD, pad_edge=False)
    for name, header in _HEADERS.items():
        table.add_column(header, justify="left" if name == "system" else "right")
    for report in reports:
        table.add_row(*_cells(report))
    return table


def as_markdown(reports: list[SystemReport]) -> str:
    """A GitHub-flavoured markdown table, one row per system."""
    lines = [
        "| " + " | ".join(_HEADERS.values()) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(_HEADERS) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in reports]
    return "\n".join(lines)
