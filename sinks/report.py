"""The per-system report of one rollout, from ``results FINAL`` (docs/sql.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich import box
from rich.table import Table

from sinks import ddl
from sinks.store import Store

REPORT_SQL = """
SELECT
    system,
    count() AS events,
    avg(success) AS success_rate,
    avg(confidence) AS mean_confidence,
    quantile(0.95)(latency_ms) AS p95_latency_ms,
    countIf(error_type IS NOT NULL) AS errors,
    countIf(error_critical = 1) AS critical_errors,
    countIf(fallback = 1) AS fallbacks,
    sum(success) AS successes,
    avg(latency_ms) AS mean_latency_ms,
    sum(confidence) AS confidence_sum,
    sum(confidence * confidence) AS confidence_sq_sum,
    sum(latency_ms) AS latency_sum,
    sum(latency_ms * latency_ms) AS latency_sq_sum
FROM {database}.results FINAL
WHERE {where}
GROUP BY system
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


def span_where(since: datetime | None, until: datetime | None) -> str:
    """``rollout = %(rollout)s`` and the half-open time range, as parameters."""
    where = ["rollout = %(rollout)s"]
    if since is not None:
        where.append("ts >= %(since)s")
    if until is not None:
        where.append("ts < %(until)s")
    return " AND ".join(where)


def report_sql(database: str, since: datetime | None, until: datetime | None) -> str:
    """The report query; values stay ``%(name)s`` parameters, only fixed text is joined."""
    return REPORT_SQL.format(database=ddl.identifier(database), where=span_where(since, until))


def system_report(
    store: Store,
    database: str,
    rollout: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SystemReport]:
    """Per system: events, success, confidence, P95 latency, errors, for since <= ts < until."""
    params = {"rollout": rollout, "since": since, "until": until}
    rows = store.query(report_sql(database, since, until), params)
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
        if name == "success_rate":
            return f"{value:.2%}"
        if isinstance(value, float):
            return f"{value:.3f}" if name == "mean_confidence" else f"{value:.1f}"
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
