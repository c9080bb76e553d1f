"""What a phase report reads from the store: one method per question over a time span.

Every question is answered from its rollups per hour, minute and second
(``sinks.rollups``), or, with ``final``, from the event tables read ``FINAL``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

from rollout.state import fold, phase_periods
from schemas.events import Alert, RolloutEvent
from schemas.metrics import QUANTILES, feedback_total
from schemas.stats import Z95
from sinks import ddl
from sinks.report import REPORT_SQL, SystemReport
from sinks.rollups import ERRORS, FEEDBACK, LATENCY_MERGE, RESULTS, RULES, Family, latency_merge
from sinks.rows import model_of
from sinks.store import Rows, Store


@dataclass(frozen=True)
class Span:
    """A half-open time range ``start <= ts < end`` (None: unbounded)."""

    start: datetime | None = None
    end: datetime | None = None

    def clip(self, since: datetime | None, until: datetime | None) -> Span:
        start = max(filter(None, (self.start, since)), default=None)
        end = min(filter(None, (self.end, until)), default=None)
        return Span(start, end)

    def source(
        self, family: Family, database: str, rollout: str, final: bool, group: int = 0
    ) -> tuple[str, dict[str, object]]:
        """``family``'s rows of ``rollout`` in the span (:meth:`Family.source`)."""
        return family.source(database, rollout, self.start, self.end, final, group)


@dataclass(frozen=True)
class Newest:
    """The rollout's newest ``last`` results by ``(ts, event_id)``, each event once, and
    the feedback on them (by query id)."""

    last: int

    def results(self, database: str, final: bool) -> str:
        """The result rows, newest first (parameters ``rollout`` and ``last``)."""
        return (
            f"SELECT * FROM {ddl.identifier(database)}.results{' FINAL' if final else ''} "
            "WHERE rollout = %(rollout)s "
            "ORDER BY ts DESC, event_id DESC LIMIT 1 BY event_id LIMIT %(last)s"
        )

    def source(
        self, family: Family, database: str, rollout: str, final: bool, group: int = 0
    ) -> tuple[str, dict[str, object]]:
        """``family``'s rows of those results, in minute buckets (any ``group``)."""
        rows = self.results(database, final)
        if family.table != "results":
            table = f"{ddl.identifier(database)}.{family.table}{' FINAL' if final else ''}"
            rows = (
                f"SELECT * FROM {table} WHERE rollout = %(rollout)s "
                f"AND query_id IN (SELECT query_id FROM ({rows}))"
            )
        return f"({family.select(f'({rows})', 60)})", {"rollout": rollout, "last": self.last}


Selection = Span | Newest
"""Which of a rollout's stored events a question is asked over."""


def _total(name: str) -> property:
    return property(lambda side: getattr(side.results, name) if side.results else 0)


@dataclass(frozen=True)
class Side:
    """One system over one span: its results' numbers, its feedback verdicts and the
    latency quantiles its metrics need (by level), as :class:`schemas.metrics.Totals`."""

    results: SystemReport | None
    feedback: dict[str, int] = field(default_factory=dict)
    quantiles: dict[float, float] = field(default_factory=dict)

    events = _total("events")
    successes = _total("successes")
    fallbacks = _total("fallbacks")
    critical_errors = _total("critical_errors")
    confidence_sum = _total("confidence_sum")
    confidence_sq_sum = _total("confidence_sq_sum")
    latency_sum = _total("latency_sum")
    latency_sq_sum = _total("latency_sq_sum")

    @property
    def feedback_total(self) -> int:
        return feedback_total(self)

    def latency_quantiles(self, levels: Sequence[float]) -> list[float | None]:
        return [self.quantiles.get(x) for x in levels]


@dataclass(frozen=True)
class Sums:
    """One system's counts and sums over some minutes, as :class:`schemas.metrics.Totals`
    without latency quantiles (a minute's sketch cannot be added up here)."""

    events: int = 0
    successes: int = 0
    fallbacks: int = 0
    critical_errors: int = 0
    confidence_sum: float = 0.0
    confidence_sq_sum: float = 0.0
    latency_sum: float = 0.0
    latency_sq_sum: float = 0.0
    feedback: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Sums) -> Sums:
        sums = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "feedback"
        }
        verdicts = {v: self.feedback.get(v, 0) + other.feedback.get(v, 0) for v in {
            *self.feedback, *other.feedback
        }}  # fmt: skip
        return Sums(**sums, feedback=verdicts)

    def latency_quantiles(self, levels: Sequence[float]) -> list[float | None]:
        return [None for _ in levels]


Minutes = dict[int, dict[str, Sums]]
"""Minute start (epoch seconds) -> system -> what it served in that minute."""

_MINUTE_SQL = (
    "SELECT toUInt32(bucket) AS at, system, sum(events), sum(successes), sum(fallbacks), "
    "sum(critical_errors), sum(confidence_sum), sum(confidence_sq_sum), sum(latency_sum), "
    "sum(latency_sq_sum) FROM {source} GROUP BY at, system"
)


def rollout_log(store: Store, database: str, rollout: str) -> list[RolloutEvent]:
    """The rollout's log as stored, in time order."""
    sql = (
        "SELECT event_id, ts, rollout, type, weight, phase, reason, actor "
        f"FROM {ddl.identifier(database)}.rollout_events FINAL WHERE rollout = %(rollout)s "
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


@dataclass(frozen=True)
class ErrorType:
    system: str
    type: str
    count: int
    critical: int


@dataclass(frozen=True)
class RuleStats:
    system: str
    rule: str
    uses: int
    successes: int
    mean_confidence: float


@dataclass(frozen=True)
class Point:
    system: str
    at: datetime
    events: int
    success_rate: float
    mean_confidence: float
    p95_latency_ms: float


@dataclass(frozen=True)
class History:
    """One rollout's stored history. ``final``: read the event tables ``FINAL`` (slow on
    big tables; collapses duplicates that bypassed the sink's ledger)."""

    store: Store
    database: str
    rollout: str
    final: bool = False

    def _query(
        self, family: Family, sql: str, span: Selection, group: int = 0, **params: object
    ) -> Rows:
        source, bound = span.source(family, self.database, self.rollout, self.final, group)
        return self.store.query(sql.format(source=source), bound | params)

    def log(self) -> list[RolloutEvent]:
        return rollout_log(self.store, self.database, self.rollout)

    def sides(
        self, span: Selection, z: Callable[[int], float] = lambda events: Z95
    ) -> dict[str, Side]:
        """Every system's results and feedback over ``span``; ``z``: the half-width in
        standard errors of a latency quantile's interval over that many events."""
        by_system = {r[0]: SystemReport(*r) for r in self._query(RESULTS, REPORT_SQL, span)}
        sql = "SELECT system, verdict, sum(events) FROM {source} GROUP BY system, verdict"
        feedback: dict[str, dict[str, int]] = {}
        for system, verdict, n in self._query(FEEDBACK, sql, span):
            feedback.setdefault(system, {})[verdict] = int(n)
        return {
            system: Side(
                by_system.get(system),
                feedback.get(system, {}),
                self.latency_levels(span, system, by_system[system].events, z)
                if system in by_system
                else {},
            )
            for system in sorted(set(by_system) | set(feedback))
        }

    def latency_levels(
        self, span: Selection, system: str, events: int, z: Callable[[int], float]
    ) -> dict[float, float]:
        """Every level a quantile metric's estimate over ``events`` results reads, from the
        merged t-digests (they keep the whole distribution: any level can be read)."""
        levels = sorted({x for q in QUANTILES.values() for x in q.levels(events, z(events))})
        sql = f"SELECT {latency_merge(levels)} FROM {{source}} WHERE system = %(system)s"
        (values,) = self._query(RESULTS, sql, span, system=system).rows[0]
        return dict(zip(levels, values, strict=True))

    def minutes(self, span: Span) -> Minutes:
        """Every system's counts, sums and feedback verdicts per minute of ``span``."""
        out: Minutes = {}
        for at, system, *sums in self._query(RESULTS, _MINUTE_SQL, span, group=60):
            out.setdefault(int(at), {})[system] = Sums(*sums)
        sql = (
            "SELECT toUInt32(bucket) AS at, system, verdict, sum(events) FROM {source} "
            "GROUP BY at, system, verdict"
        )
        for at, system, verdict, n in self._query(FEEDBACK, sql, span, group=60):
            minute = out.setdefault(int(at), {})
            minute[system] = minute.get(system, Sums()) + Sums(feedback={verdict: int(n)})
        return out

    def error_types(self, span: Selection) -> list[ErrorType]:
        sql = (
            "SELECT system, error_type, sum(errors) AS n, sum(critical_errors) FROM {source} "
            "GROUP BY system, error_type ORDER BY n DESC, system, error_type"
        )
        return [ErrorType(*row) for row in self._query(ERRORS, sql, span)]

    def rule_stats(self, span: Selection) -> list[RuleStats]:
        """Per system and rule: uses, successes, mean confidence; most used first."""
        sql = (
            "SELECT system, rule, sum(uses) AS n, sum(successes), sum(confidence_sum) / n "
            "FROM {source} GROUP BY system, rule ORDER BY n DESC, system, rule"
        )
        return [RuleStats(*row) for row in self._query(RULES, sql, span)]

    def series(self, span: Span, step: int) -> list[Point]:
        """Per system and ``step``-second bucket (a multiple of 60): success, confidence,
        P95 latency."""
        sql = (
            "SELECT system, intDiv(toUInt32(bucket), %(step)s) * %(step)s AS at, sum(events), "
            f"sum(successes) / sum(events), sum(confidence_sum) / sum(events), {LATENCY_MERGE}[2] "
            "FROM {source} GROUP BY system, at ORDER BY system, at"
        )
        return [
            Point(system, datetime.fromtimestamp(int(at), UTC), n, success, conf, p95)
            for system, at, n, success, conf, p95 in self._query(
                RESULTS, sql, span, group=step, step=step
            )
        ]

    def alerts(self, span: Span) -> list[Alert]:
        """The rollout's alerts raised in ``span`` (by their time), oldest first."""
        where, params = ["rollout = %(rollout)s"], {"rollout": self.rollout}
        for name, bound, op in (("start", span.start, ">="), ("end", span.end, "<")):
            if bound is not None:
                where.append(f"ts {op} %({name})s")
                params[name] = bound
        sql = (
            f"SELECT * FROM {ddl.identifier(self.database)}.alerts FINAL "
            f"WHERE {' AND '.join(where)} ORDER BY ts, alert_id"
        )
        return [model_of(Alert, row) for row in self.store.query(sql, params).dicts()]

    def time_range(self, span: Span) -> Span:
        """The first and last minute with results within ``span`` (to choose chart buckets)."""
        sql = "SELECT toUInt32(min(bucket)), toUInt32(max(bucket)), count() FROM {source}"
        first, last, n = self._query(RESULTS, sql, span, group=60).rows[0]  # minute buckets
        if not n:
            return span
        return Span(datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last + 60, UTC))
