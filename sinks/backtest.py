"""``phasegate backtest``: a plan judged on a rollout's stored history.

The results and feedback of the rollout are read from the store in event-time order, a
batch of whole minutes at a time (about ``rows`` events each, counted first), and
replayed through the worker's stages (``streams.backtest``) with the rollout log as
stored. The findings are shown as a table, a self-contained HTML page with one chart
per trigger (its score against its threshold), or JSON.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from schemas.alert_text import kind_text, why
from schemas.events import Alert, ErrorInfo, Feedback, Result
from schemas.plan import Plan
from schemas.settings import Settings
from sinks import ddl, svg
from sinks.history import Span, rollout_log
from sinks.render import Block, Figure, Grid, Heading, Text, html, markdown
from sinks.store import Store
from streams.backtest import Findings, Replay, Stored
from streams.triggers import GRACE

ROWS = 50_000  # events per read: the replay holds one batch in memory
_RESULT_COLUMNS = (
    "event_id, ts, rollout, system, query_id, unit_id, success, confidence, latency_ms, "
    "error_type, error_message, error_critical, rules, fallback, weight, segment"
)
_FEEDBACK_COLUMNS = "event_id, ts, rollout, query_id, system, verdict, comment, rules, segment"


def _where(span: Span) -> str:
    bounds = ["rollout = %(rollout)s"]
    if span.start is not None:
        bounds.append("ts >= %(start)s")
    if span.end is not None:
        bounds.append("ts < %(end)s")
    return " AND ".join(bounds)


def _params(rollout: str, span: Span) -> dict[str, object]:
    return {"rollout": rollout, "start": span.start, "end": span.end}


def minutes(store: Store, database: str, rollout: str, span: Span) -> list[tuple[int, int]]:
    """(minute, events) of the rollout's results and feedback in ``span``, in time order."""
    db = ddl.identifier(database)
    parts = [
        f"SELECT toUInt32(toStartOfMinute(ts)) AS minute, count() AS n FROM {db}.{table} "
        f"WHERE {_where(span)} GROUP BY minute"
        for table in ("results", "feedback")
    ]
    sql = (
        f"SELECT minute, sum(n) FROM ({' UNION ALL '.join(parts)}) GROUP BY minute ORDER BY minute"
    )
    return [(int(m), int(n)) for m, n in store.query(sql, _params(rollout, span))]


def batches(counts: list[tuple[int, int]], rows: int, span: Span) -> list[Span]:
    """Runs of whole minutes holding about ``rows`` events each (a busier minute alone),
    clipped to ``span``."""
    out: list[Span] = []
    first, held = None, 0
    for i, (minute, n) in enumerate(counts):
        if first is None:
            first, held = minute, 0
        held += n
        last = i == len(counts) - 1
        if last or held + counts[i + 1][1] > rows:
            start, end = _at(first), _at(minute + 60)
            out.append(Span(start, end).clip(span.start, span.end))
            first = None
    return out


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _result(row: dict[str, Any]) -> Result:
    error_type = row.pop("error_type")
    message, critical = row.pop("error_message"), row.pop("error_critical")
    if error_type is not None:
        row["error"] = ErrorInfo(type=error_type, message=message or "", critical=bool(critical))
    return Result.model_validate(row)


def read(store: Store, database: str, rollout: str, span: Span) -> Iterator[Stored]:
    """The rollout's results and feedback in ``span``, in event-time order (each
    partition's in its offset order)."""
    db, params = ddl.identifier(database), _params(rollout, span)
    order = "ORDER BY ts, kafka_partition, kafka_offset"

    def rows(table: str, columns: str) -> list[dict[str, Any]]:
        sql = f"SELECT {columns}, kafka_partition FROM {db}.{table} WHERE {_where(span)} {order}"
        return store.query(sql, params).dicts()

    results = (
        Stored(("results", row.pop("kafka_partition")), _result(row))
        for row in rows("results", _RESULT_COLUMNS)
    )
    feedback = (
        Stored(("feedback", row.pop("kafka_partition")), Feedback.model_validate(row))
        for row in rows("feedback", _FEEDBACK_COLUMNS)
    )
    yield from heapq.merge(results, feedback, key=lambda s: s.event.ts)


def backtest(
    store: Store,
    settings: Settings,
    plan: Plan,
    rollout: str,
    span: Span = Span(),
    rows: int = ROWS,
    on_progress: Callable[[int, int], None] | None = None,
) -> Findings:
    """Replay the rollout's stored events in ``span`` with ``plan`` in the worker's
    cadence; ``on_progress`` gets the events replayed and the total, per batch."""
    counts = minutes(store, settings.database, rollout, span)
    total = sum(n for _, n in counts)
    step = max(settings.window_seconds, (counts[-1][0] - counts[0][0]) // 600 if counts else 0)
    run = Replay(
        plan,
        rollout,
        rollout_log(store, settings.database, rollout),
        window_seconds=settings.window_seconds,
        flush_seconds=settings.flush_seconds,
        lateness=settings.lateness_seconds,
        retention=settings.retention_seconds,
        chart_step=step,
    )
    for batch in batches(counts, rows, span):
        for stored in read(store, settings.database, rollout, batch):
            run.add(stored)
        if on_progress is not None:
            on_progress(run.findings.events, total)
    return run.finish(_after(store, settings.database, rollout, span))


def _after(store: Store, database: str, rollout: str, span: Span) -> Iterator[Stored]:
    """The events of the :data:`GRACE` after ``span``'s end: what releases a trigger
    waiting there (read only if one waits)."""
    if span.end is not None:
        grace = Span(span.end, span.end + timedelta(seconds=GRACE))
        yield from read(store, database, rollout, grace)


def live_alerts(
    store: Store, database: str, rollout: str, span: Span, raised: Iterable[Alert] = ()
) -> dict[UUID, str]:
    """The alerts the live worker stored for the rollout in ``span``, and those with the id
    of one ``raised`` here whenever stored (one released after the span's end): id -> kind."""
    ids, where = tuple(str(a.alert_id) for a in raised), _where(span)
    if ids:
        where = f"({where}) OR (rollout = %(rollout)s AND toString(alert_id) IN %(ids)s)"
    sql = f"SELECT alert_id, kind FROM {ddl.identifier(database)}.alerts FINAL WHERE {where}"
    found = store.query(sql, _params(rollout, span) | {"ids": ids})
    return {UUID(str(i)): kind for i, kind in found}


# -- what the user sees ----------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A backtest's findings beside the live run's stored alerts (id -> kind)."""

    rollout: str
    plan: Plan
    findings: Findings
    live: dict[UUID, str]

    @property
    def matched(self) -> int:
        return sum(a.alert_id in self.live for a in self.findings.alerts)

    def summary(self) -> str:
        f, matched = self.findings, self.matched
        return (
            f"{f.events:,} stored events replayed; {_count(len(f.alerts), 'alert')}, "
            f"{_count(len(f.actions), 'rollout change')} by the plan. The live run stored "
            f"{_count(len(self.live), 'alert')}: {matched} raised here too, "
            f"{len(self.live) - matched} not; {len(f.alerts) - matched} raised here only."
        )


def _time(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _alert_row(alert: Alert, live: dict[UUID, str]) -> list[str]:
    action = alert.action
    return [
        "yes" if alert.alert_id in live else "no",
        _time(alert.ts),
        kind_text(alert),
        alert.metric,
        f"{_time(alert.window.start)} - {alert.window.end.strftime('%H:%M:%S')}",
        f"{alert.observed:.4g}",
        f"{alert.threshold:g}",
        f"{alert.samples:,}",
        f"{action.weight_from} -> {action.weight_to}" if action else "-",
        why(alert, top=None) or "-",
    ]


def blocks(report: Report, charts: bool = False) -> list[Block]:
    """The report: what would have fired, the gates' changes and (``charts``) the scores."""
    findings = report.findings
    out: list[Block] = [
        Heading(f"Backtest of {report.rollout} with plan {report.plan.name!r}", 1),
        Text(report.summary()),
        Heading("Alerts"),
        Text("live: whether the live worker raised the same alert (same id)."),
        Grid(
            [
                *("live", "at", "kind", "metric", "window", "observed", "threshold", "events"),
                *("weight", "why"),
            ],
            [_alert_row(a, report.live) for a in findings.alerts],
            left=frozenset({0, 1, 2, 3, 4, 9}),
        ),
        Heading("Gates"),
        Grid(
            ["from", "phase", "outcome", "criteria"],
            [
                [
                    _time(g.at),
                    f"{g.phase} {g.phase_name}",
                    g.outcome,
                    "; ".join(f"{v['criterion']}: {v['outcome']}" for v in g.verdicts),
                ]
                for g in findings.gates
            ],
            left=frozenset({0, 1, 2, 3}),
        ),
    ]
    if charts:
        out.append(Heading("Trigger scores"))
        for name, chart in sorted(findings.charts.items()):
            points = [(_at(t), s) for t, s in sorted(chart.points.items())]
            edges = [points[0][0], points[-1][0]] if points else []
            series = {"score": points, "threshold": [(t, chart.threshold) for t in edges]}
            caption = f"{name}: the highest score per {chart.step} s; it fires at the threshold"
            out.append(Figure(svg.line_chart(name, series), caption))
    return out


def as_text(report: Report) -> str:
    return markdown(blocks(report))


def as_html(report: Report) -> str:
    return html(blocks(report, charts=True), f"backtest {report.rollout}")


def as_json(report: Report) -> str:
    """Everything the report shows, for scripts."""
    findings = report.findings
    raised = {a.alert_id for a in findings.alerts}
    doc = {
        "rollout": report.rollout,
        "plan": report.plan.name,
        "events": findings.events,
        "alerts": [
            a.model_dump(mode="json") | {"live": a.alert_id in report.live} for a in findings.alerts
        ],
        "live_only": [
            {"alert_id": str(i), "kind": kind} for i, kind in report.live.items() if i not in raised
        ],
        "actions": [e.model_dump(mode="json") for e in findings.actions],
        "gates": [
            {
                "at": g.at.isoformat(),
                "phase": g.phase,
                "phase_name": g.phase_name,
                "outcome": g.outcome,
                "verdicts": list(g.verdicts),
            }
            for g in findings.gates
        ],
        "scores": {
            name: {
                "threshold": c.threshold,
                "step_seconds": c.step,
                "points": [[_at(t).isoformat(), s] for t, s in sorted(c.points.items())],
            }
            for name, c in sorted(findings.charts.items())
        },
    }
    return json.dumps(doc, indent=2) + "\n"
