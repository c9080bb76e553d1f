"""Rollups: per rollout, system and second, minute or hour, what the reports need, kept
by views.

A *family* is one question (results, rules, errors, feedback) rolled up three times: into
``{name}_1s``, ``{name}_1m`` and ``{name}_1h``, ``SummingMergeTree`` tables fed by
materialized views on
the event table. Every insert adds its rows' counts and sums (background merges add rows
of one key up later), so a rollup is read with ``sum()`` and the ``-Merge`` combinator
grouped by its key. The views count each *inserted* row: the sink's ledger inserts every
event once (``sinks.ledger``); rows that escape it are collapsed only by ``FINAL`` on
the event table (:meth:`Family.source` with ``final=True``).

:meth:`Family.source` answers for any half-open time range exactly: whole hours from
``_1h``, whole minutes at the hour edges from ``_1m`` and whole seconds at the minute
edges from ``_1s`` (:func:`pieces`), so no range reads an event row. A range's ends count
in whole seconds (:func:`whole_second`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sinks.ddl import Dialect, identifier

LATENCY_QUANTILES = "quantilesTDigest(0.5, 0.95, 0.99)"
"""The latency state every results rollup keeps; ``quantilesTDigestMerge`` reads any level
from it (:func:`latency_merge`), not only the levels its type names."""
STEPS = {1: ("1s", "toDateTime"), 60: ("1m", "toStartOfMinute"), 3600: ("1h", "toStartOfHour")}
"""Bucket seconds: the rollup's suffix and the function of ``ts`` that starts its bucket."""

GRANULARITY = 256
"""Rows per index mark of a rollup: a range's edge reads a few marks of t-digest states,
not thousands (8192, the default, costs 3x on a second rollup's edge)."""

Piece = tuple[int, datetime | None, datetime | None]
"""A bucket size in seconds (0: the event rows) and the range ``lo <= t < hi`` it covers."""


def _floor(t: datetime, step: int) -> datetime:
    epoch = t.astimezone(UTC).timestamp()
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


def _ceil(t: datetime, step: int) -> datetime:
    down = _floor(t, step)
    return down if down == t else down + timedelta(seconds=step)


def whole_second(t: datetime | None) -> datetime | None:
    """``t`` without its fraction of a second, as the store's literals have always sent it
    (clickhouse-driver's escaping), so a range ending mid-second reads what it always did."""
    return None if t is None else t.replace(microsecond=0)


def pieces(start: datetime | None, end: datetime | None, steps: tuple[int, ...]) -> list[Piece]:
    """Cut ``start <= t < end`` (None: open) into whole buckets of the coarsest step that
    fits, then of the next at the edges, and event rows (step 0) for what is left."""
    start, end = (t if t is None or t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    if start is not None and end is not None and start >= end:
        return []
    if not steps:
        return [(0, start, end)]
    step, finer = steps[0], steps[1:]
    lo = _ceil(start, step) if start is not None else None
    hi = _floor(end, step) if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        return pieces(start, end, finer)
    left = pieces(start, lo, finer) if start is not None and start < lo else []
    right = pieces(hi, end, finer) if end is not None and hi < end else []
    return [*left, (step, lo, hi), *right]


@dataclass(frozen=True)
class Column:
    """A rollup column: its type and the expression over event rows that fills it."""

    name: str
    kind: str
    expr: str


@dataclass(frozen=True)
class Family:
    """One question rolled up per minute and per hour from one event table."""

    name: str
    table: str  # the event table
    keys: tuple[Column, ...]  # besides rollout, system and bucket
    values: tuple[Column, ...]
    array_join: str = ""
    where: str = ""

    def rollup(self, step: int) -> str:
        return f"{self.name}_{STEPS[step][0]}"

    def view(self, step: int) -> str:
        return f"{self.rollup(step)}_mv"

    @property
    def columns(self) -> list[str]:
        """In the order every piece of :meth:`source` gives them."""
        return ["rollout", "system", *(c.name for c in self.keys), "bucket"] + [
            c.name for c in self.values
        ]

    def create(self, database: str, step: int, dialect: Dialect) -> str:
        label = dialect.label()
        cols = [f"rollout {label}", f"system {label}"]
        cols += [f"{c.name} {label if c.kind == 'LABEL' else c.kind}" for c in self.keys]
        cols += ["bucket DateTime('UTC')"] + [f"{c.name} {c.kind}" for c in self.values]
        key = ", ".join(["rollout", "system", *(c.name for c in self.keys), "bucket"])
        body = ",\n    ".join(cols)
        return (
            f"CREATE TABLE IF NOT EXISTS {identifier(database)}.{self.rollup(step)} (\n"
            f"    {body}\n)\nENGINE = SummingMergeTree\n"
            f"PARTITION BY toYYYYMM(bucket)\nORDER BY ({key})\n"
            f"SETTINGS index_granularity = {GRANULARITY}"
        )

    def select(self, source: str, step: int, where: str = "") -> str:
        """The aggregation of event rows from ``source`` into ``step`` buckets."""
        keys = [f"{c.expr} AS {c.name}" for c in self.keys]
        cols = ["rollout", "system", *keys, f"{STEPS[step][1]}(ts) AS bucket"]
        cols += [f"{c.expr} AS {c.name}" for c in self.values]
        conditions = " AND ".join(f"({w})" for w in (self.where, where) if w)
        group = ", ".join(["rollout", "system", *(c.name for c in self.keys), "bucket"])
        return (
            f"SELECT {', '.join(cols)} FROM {source}"
            + (f" ARRAY JOIN {self.array_join}" if self.array_join else "")
            + (f" WHERE {conditions}" if conditions else "")
            + f" GROUP BY {group}"
        )

    def create_view(self, database: str, step: int) -> str:
        db = identifier(database)
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{self.view(step)} "
            f"TO {db}.{self.rollup(step)} AS " + self.select(f"{db}.{self.table}", step)
        )

    def backfill(self, database: str, step: int) -> str:
        """Rows stored before the view existed, each event once (``FINAL``)."""
        db = identifier(database)
        return f"INSERT INTO {db}.{self.rollup(step)} " + self.select(
            f"{db}.{self.table} FINAL", step
        )

    def _in_minutes(self, rows: str) -> str:
        """``rows`` of a finer rollup with their buckets at their minute, as the event rows
        give them (the filter stays inside: an alias would shadow ``bucket`` there)."""
        cols = ["toStartOfMinute(bucket) AS bucket" if c == "bucket" else c for c in self.columns]
        return f"SELECT {', '.join(cols)} FROM ({rows})"

    def source(
        self,
        database: str,
        rollout: str,
        start: datetime | None,
        end: datetime | None,
        final: bool = False,
        group: int = 0,
    ) -> tuple[str, dict[str, object]]:
        """A subquery with :attr:`columns` covering ``rollout``'s rows in ``start <= ts <
        end`` exactly (ends in whole seconds), with minute buckets at most, and its
        parameters. ``final``: every row from the event table read
        ``FINAL`` instead (slow; collapses duplicates the ledger let through). ``group``: the
        bucket size in seconds the caller groups ``bucket`` by, so only rollups whose step
        divides it are read (0: the caller does not group by time)."""
        db = identifier(database)
        params: dict[str, object] = {"rollout": rollout}
        parts = []
        coarsest = sorted(STEPS, reverse=True)
        steps = () if final else tuple(s for s in coarsest if not group or group % s == 0)
        for i, (step, lo, hi) in enumerate(pieces(whole_second(start), whole_second(end), steps)):
            column = "bucket" if step else "ts"
            where = ["rollout = %(rollout)s"]
            for name, bound, op in ((f"lo{i}", lo, ">="), (f"hi{i}", hi, "<")):
                if bound is not None:
                    where.append(f"{column} {op} %({name})s")
                    params[name] = bound
            if step:
                rows = (
                    f"SELECT {', '.join(self.columns)} FROM {db}.{self.rollup(step)} "
                    f"WHERE {' AND '.join(where)}"
                )
                parts.append(rows if step >= 60 else self._in_minutes(rows))
            else:
                table = f"{db}.{self.table}{' FINAL' if final else ''}"
                parts.append(self.select(table, 60, " AND ".join(where)))
        if not parts:  # an empty range
            parts.append(f"SELECT {', '.join(self.columns)} FROM {db}.{self.rollup(60)} WHERE 0")
        return "(" + " UNION ALL ".join(parts) + ")", params


def _sum(name: str, expr: str, kind: str = "UInt64") -> Column:
    return Column(name, kind, expr)


RESULTS = Family(
    "results",
    "results",
    keys=(),
    values=(
        _sum("events", "count()"),
        _sum("successes", "sum(success)"),
        _sum("errors", "countIf(error_type IS NOT NULL)"),
        _sum("critical_errors", "countIf(ifNull(error_critical, 0) = 1)"),
        _sum("fallbacks", "sum(fallback)"),
        _sum("confidence_sum", "sum(confidence)", "Float64"),
        _sum("confidence_sq_sum", "sum(confidence * confidence)", "Float64"),
        _sum("latency_sum", "sum(latency_ms)", "Float64"),
        _sum("latency_sq_sum", "sum(latency_ms * latency_ms)", "Float64"),
        Column(
            "latency",
            f"AggregateFunction({LATENCY_QUANTILES}, Float64)",
            LATENCY_QUANTILES.replace("(", "State(", 1) + "(latency_ms)",
        ),
    ),
)
RULES = Family(
    "rules",
    "results",
    keys=(Column("rule", "String", "rule_name"),),
    values=(
        _sum("uses", "count()"),
        _sum("successes", "sum(success)"),
        _sum("confidence_sum", "sum(confidence)", "Float64"),
    ),
    array_join="rules AS rule_name",
)
ERRORS = Family(
    "errors",
    "results",
    keys=(Column("error_type", "String", "ifNull(error_type, '')"),),
    values=(
        _sum("errors", "count()"),
        _sum("critical_errors", "countIf(ifNull(error_critical, 0) = 1)"),
    ),
    # ClickHouse lets the key's alias shadow the column here: true of either (a type is
    # never empty, see schemas.events.ErrorInfo)
    where="error_type != ''",
)
FEEDBACK = Family(
    "feedback",
    "feedback",
    keys=(Column("verdict", "LABEL", "verdict"),),
    values=(_sum("events", "count()"),),
)
FAMILIES = (RESULTS, RULES, ERRORS, FEEDBACK)
ROLLUP_STEPS = tuple(STEPS)


def drop_order() -> list[str]:
    """Every view, then every rollup table."""
    objects = [(f.view(s), f.rollup(s)) for f in FAMILIES for s in ROLLUP_STEPS]
    return [view for view, _ in objects] + [table for _, table in objects]


LATENCY_MERGE = LATENCY_QUANTILES.replace("(", "Merge(", 1) + "(latency)"
"""``[p50, p95, p99]`` of the ``latency`` states in a results rollup."""


def latency_merge(levels: list[float]) -> str:
    """The latency quantiles at ``levels`` (0..1) of the ``latency`` states in a results
    rollup: a t-digest state answers any level, whatever levels its type names."""
    return f"quantilesTDigestMerge({', '.join(repr(float(x)) for x in levels)})(latency)"
