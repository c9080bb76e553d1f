"""What a phase report reads from the store: one function per question, all ``FINAL``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.events import RolloutEvent
from schemas.rollout import fold, phase_periods
from sinks import ddl
from sinks.report import SystemReport, span_where, system_report
from sinks.store import Store


@dataclass(frozen=True)
class Span:
    """A half-open time range ``start <= ts < end`` (None: unbounded)."""

    start: datetime | None = None
    end: datetime | None = None

    def params(self, rollout: str) -> dict[str, object]:
        return {"rollout": rollout, "since": self.start, "until": self.end}

    @property
    def where(self) -> str:
        return span_where(self.start, self.end)

    def clip(self, since: datetime | None, until: datetime | None) -> Span:
        start = max(filter(None, (self.start, since)), default=None)
        end = min(filter(None, (self.end, until)), default=None)
        return Span(start, end)


@dataclass(frozen=True)
class Side:
    """One system over one span: its results' numbers and its feedback verdicts."""

    results: SystemReport | None
    feedback: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return self.results.events if self.results else 0

    @property
    def feedback_total(self) -> int:
        return sum(self.feedback.values())


def _db(database: str) -> str:
    return ddl.identifier(database)


def rollout_log(store: Store, database: str, rollout: str) -> list[RolloutEvent]:
    """The rollout's log as stored, in time order."""
    sql = (
        "SELECT event_id, ts, rollout, type, weight, phase, reason, actor "
        f"FROM {_db(database)}.rollout_events FINAL WHERE rollout = %(rollout)s "
        "ORDER BY ts, event_id"
    )
    return [
        RolloutEvent.model_validate(row) for row in store.query(sql, {"rollout": rollout}).dicts()
    ]


def phase_span(events: list[RolloutEvent], rollout: str, phase: int) -> Span | None:
    """When ``phase`` last ran (from the log's phase changes); None if it never did."""
    periods = [p for p in phase_periods(fold(events, rollout)) if p[0] == phase]
    if not periods:
        return None
    _, start, end = periods[-1]
    return Span(start, end)


def weights(events: list[RolloutEvent], rollout: str) -> list[tuple[datetime, int]]:
    """The candidate weight after each entry of the log."""
    state = fold([], rollout)
    points = []
    for event in events:
        state = state.apply(event)
        points.append((event.ts, state.weight))
    return points


def sides(store: Store, database: str, rollout: str, span: Span) -> dict[str, Side]:
    """Every system's results and feedback over ``span``."""
    reports = {r.system: r for r in system_report(store, database, rollout, span.start, span.end)}
    sql = (
        f"SELECT system, verdict, count() FROM {_db(database)}.feedback FINAL "
        f"WHERE {span.where} GROUP BY system, verdict"
    )
    feedback: dict[str, dict[str, int]] = {}
    for system, verdict, n in store.query(sql, span.params(rollout)):
        feedback.setdefault(system, {})[verdict] = int(n)
    return {
        system: Side(reports.get(system), feedback.get(system, {}))
        for system in sorted(set(reports) | set(feedback))
    }


@dataclass(frozen=True)
class ErrorType:
    system: str
    type: str
    count: int
    critical: int


def error_types(store: Store, database: str, rollout: str, span: Span) -> list[ErrorType]:
    sql = (
        "SELECT system, error_type, count() AS n, countIf(ifNull(error_critical, 0) = 1) "
        f"FROM {_db(database)}.results FINAL WHERE {span.where} AND error_type IS NOT NULL "
        "GROUP BY system, error_type ORDER BY n DESC, system, error_type"
    )
    return [ErrorType(*row) for row in store.query(sql, span.params(rollout))]


@dataclass(frozen=True)
class RuleStats:
    system: str
    rule: str
    uses: int
    successes: int
    mean_confidence: float


def rule_stats(store: Store, database: str, rollout: str, span: Span) -> list[RuleStats]:
    """Per system and rule: uses, successes, mean confidence; most used first."""
    sql = (
        "SELECT system, rule, count() AS uses, sum(success), avg(confidence) "
        f"FROM {_db(database)}.results FINAL ARRAY JOIN rules AS rule WHERE {span.where} "
        "GROUP BY system, rule ORDER BY uses DESC, system, rule"
    )
    return [RuleStats(*row) for row in store.query(sql, span.params(rollout))]


@dataclass(frozen=True)
class Point:
    system: str
    at: datetime
    events: int
    success_rate: float
    mean_confidence: float
    p95_latency_ms: float


def series(store: Store, database: str, rollout: str, span: Span, step: int) -> list[Point]:
    """Per system and ``step``-second bucket: success, confidence, P95 latency."""
    sql = (
        "SELECT system, intDiv(toUInt32(toDateTime(ts)), %(step)s) * %(step)s AS bucket, "
        "count(), avg(success), avg(confidence), quantile(0.95)(latency_ms) "
        f"FROM {_db(database)}.results FINAL WHERE {span.where} "
        "GROUP BY system, bucket ORDER BY system, bucket"
    )
    rows = store.query(sql, span.params(rollout) | {"step": int(step)})
    return [
        Point(system, datetime.fromtimestamp(int(bucket), UTC), n, success, conf, p95)
        for system, bucket, n, success, conf, p95 in rows
    ]


def time_range(store: Store, database: str, rollout: str, span: Span) -> Span:
    """The first and last result time within ``span`` (for choosing chart buckets)."""
    sql = (
        "SELECT toUInt32(toDateTime(min(ts))), toUInt32(toDateTime(max(ts))) "
        f"FROM {_db(database)}.results WHERE {span.where}"
    )
    first, last = store.query(sql, span.params(rollout)).rows[0]
    if not last:
        return span
    return Span(datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last + 1, UTC))
