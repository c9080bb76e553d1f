"""The tables of design.md, as DDL that fits the ClickHouse version it runs on.

One row per event, columns named as the contract fields (nested ones flattened with an
underscore: ``error_type``, ``window_start``, ``action_weight_from``). Every table is a
ReplacingMergeTree whose sorting key ends with the event's id, so a message delivered
twice is one row when read with ``FINAL`` (docs/sql.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

LOW_CARDINALITY = (19, 3)
"""LowCardinality without ``allow_experimental_low_cardinality_type`` (a setting later
ClickHouse rejects as unknown)."""
DATETIME64 = (20, 1)
"""DateTime64: millisecond timestamps; older servers keep whole seconds."""


def identifier(name: str) -> str:
    """``name`` if it is a plain SQL identifier, else ``ValueError`` (no quoting games)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


@dataclass(frozen=True)
class Dialect:
    """Type names for one server version."""

    version: tuple[int, ...]

    def label(self) -> str:
        """A short repeated string (system, rollout, kind): dictionary-encoded if allowed."""
        return "LowCardinality(String)" if self.version >= LOW_CARDINALITY else "String"

    def timestamp(self) -> str:
        return "DateTime64(3, 'UTC')" if self.version >= DATETIME64 else "DateTime('UTC')"


@dataclass(frozen=True)
class Table:
    """One event table: its columns (name -> type, given a dialect) and its sorting key."""

    name: str
    columns: dict[str, str]
    order_by: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def column_type(self, name: str, dialect: Dialect) -> str:
        """Column ``name``'s SQL type on ``dialect``'s server."""
        kind = self.columns[name]
        kinds = {"LABEL": dialect.label(), "TS": dialect.timestamp(), "JSON": JSON_TYPE}
        return kinds.get(kind, kind)

    @property
    def json_columns(self) -> frozenset[str]:
        return frozenset(name for name, kind in self.columns.items() if kind == "JSON")

    def create(self, database: str, dialect: Dialect) -> str:
        cols = ",\n    ".join(f"{name} {self.column_type(name, dialect)}" for name in self.columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {identifier(database)}.{self.name} (\n    {cols}\n)\n"
            "ENGINE = ReplacingMergeTree\n"
            "PARTITION BY toYYYYMM(ts)\n"
            f"ORDER BY ({', '.join(self.order_by)})"
        )


JSON_TYPE = "String DEFAULT '[]'"
"""A list of nested models (an alert's figures), stored as its JSON text."""


# Types: "LABEL" and "TS" are resolved by the Dialect, "JSON" is a list of nested models
# stored as JSON text; anything else is literal.
RESULTS = Table(
    "results",
    {
        "event_id": "UUID",
        "ts": "TS",
        "rollout": "LABEL",
        "system": "LABEL",
        "query_id": "String",
        "unit_id": "String",
        "success": "UInt8",
        "confidence": "Float64",
        "latency_ms": "Float64",
        "error_type": "Nullable(String)",
        "error_message": "Nullable(String)",
        "error_critical": "Nullable(UInt8)",
        "rules": "Array(String)",
        "fallback": "UInt8",
        "weight": "UInt8",
        "segment": "Nullable(String)",
    },
    ("rollout", "system", "event_id"),
)
FEEDBACK = Table(
    "feedback",
    {
        "event_id": "UUID",
        "ts": "TS",
        "rollout": "LABEL",
        "query_id": "String",
        "system": "LABEL",
        "verdict": "LABEL",
        "comment": "Nullable(String)",
        "rules": "Array(String)",
        "segment": "Nullable(String)",
    },
    ("rollout", "system", "event_id"),
)
ALERTS = Table(
    "alerts",
    {
        "alert_id": "UUID",
        "ts": "TS",
        "rollout": "LABEL",
        "system": "LABEL",
        "severity": "LABEL",
        "kind": "LABEL",
        "metric": "LABEL",
        "observed": "Float64",
        "threshold": "Float64",
        "window_start": "TS",
        "window_end": "TS",
        "samples": "UInt64",
        "action_weight_from": "Nullable(UInt8)",
        "action_weight_to": "Nullable(UInt8)",
        "dry_run": "UInt8 DEFAULT 0",
        "attribution": "Nullable(String)",
        "figures": "JSON",
        "contributors": "JSON",
    },
    ("rollout", "system", "alert_id"),
)
ROLLOUT_EVENTS = Table(
    "rollout_events",
    {
        "event_id": "UUID",
        "ts": "TS",
        "rollout": "LABEL",
        "type": "LABEL",
        "weight": "Nullable(UInt8)",
        "phase": "Nullable(UInt32)",
        "reason": "String",
        "actor": "String",
    },
    ("rollout", "event_id"),
)
EVENT_TABLES = (RESULTS, FEEDBACK, ALERTS, ROLLOUT_EVENTS)

MIGRATIONS_TABLE = "schema_migrations"


def migrations_table(database: str) -> str:
    """The table that records which migrations ran (one row per applied version)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {identifier(database)}.{MIGRATIONS_TABLE} "
        "(version UInt32, name String, applied_at DateTime('UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )


# -- version 2: the ingestion ledger ---------------------------------------------------

LEDGER_COLUMNS = {"kafka_partition": "Int32 DEFAULT -1", "kafka_offset": "Int64 DEFAULT -1"}
"""Where each row came from in its topic (-1: not written by the sink). The sink reads the
highest stored offset per partition when it is assigned one, and skips what is already
there: a redelivery after a crash between insert and commit is not inserted again."""


def add_column(database: str, table: str, name: str, kind: str) -> str:
    return f"ALTER TABLE {identifier(database)}.{identifier(table)} ADD COLUMN {name} {kind}"
