"""Versioned schema migrations, applied at start and recorded in ``schema_migrations``.

A migration runs once per database, for the server's dialect, by one process at a time
(``sinks.schema_lock``): every phasegate process migrates before it writes, the sink holds
its rows while another process holds the lock, and the migrator waits for inserts already
running, so none lands while a rollup is filled. Each is idempotent too (``IF NOT
EXISTS``, columns added only when missing, a rollup filled only while its view does not
exist), so a run interrupted between its work and its record does no harm.

1. the event tables of design.md;
2. the ingestion ledger: ``kafka_partition`` and ``kafka_offset`` on every event table;
3. rollups per minute and per hour (``results_1m``, ``results_1h``), backfilled from
   ``results FINAL`` and then fed by materialized views;
4. the rollups the reports read (``sinks.rollups``): rules, error types and feedback,
   and sums of squares in the results rollups (a rollup of an older shape is rebuilt);
5. the columns contract v1 gained since (a result's ``segment``; an alert's ``dry_run``,
   ``attribution``, ``figures`` and ``contributors``): any column of the current event
   tables that is missing is added;
6. rollups per second (``results_1s`` and the others of ``sinks.rollups``), so a range
   whose ends are not on whole minutes reads no event row;
7. the answer's ``rules`` and ``segment`` a feedback may name (added as in 5).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sinks import ddl, rollups, schema_lock
from sinks.store import Store, StoreError

SETTLE = 1.0
"""Seconds a migration of an existing database waits after taking the lock before it looks
for running inserts: a writer that found no lock just before has started its insert."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Store, str, ddl.Dialect], None]


def _event_tables(store: Store, database: str, dialect: ddl.Dialect) -> None:
    for table in ddl.EVENT_TABLES:
        store.execute(table.create(database, dialect))


def _columns(store: Store, database: str, table: str) -> set[str]:
    sql = "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(table)s"
    return {name for (name,) in store.query(sql, {"db": database, "table": table})}


def _exists(store: Store, database: str, table: str) -> bool:
    sql = "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(table)s"
    return bool(store.query(sql, {"db": database, "table": table}).scalar())


def _ledger(store: Store, database: str, dialect: ddl.Dialect) -> None:
    for table in ddl.EVENT_TABLES:
        present = _columns(store, database, table.name)
        for name, kind in ddl.LEDGER_COLUMNS.items():
            if name not in present:
                store.execute(ddl.add_column(database, table.name, name, kind))


def _new_columns(store: Store, database: str, dialect: ddl.Dialect) -> None:
    for table in ddl.EVENT_TABLES:
        present = _columns(store, database, table.name)
        for name in table.columns:
            if name not in present:
                kind = table.column_type(name, dialect)
                store.execute(ddl.add_column(database, table.name, name, kind))


def _build(
    store: Store,
    database: str,
    dialect: ddl.Dialect,
    family: rollups.Family,
    steps: tuple[int, ...] = (60, 3600),
) -> None:
    """Create ``family``'s rollups of ``steps`` (seconds), rebuilt if their columns are not
    the current ones."""
    db = ddl.identifier(database)
    for step in steps:
        table, view = family.rollup(step), family.view(step)
        present = _columns(store, database, table)
        if present and present != set(family.columns):  # an older shape: rebuild it
            store.execute(f"DROP TABLE IF EXISTS {db}.{view}")
            store.execute(f"DROP TABLE IF EXISTS {db}.{table}")
        store.execute(family.create(database, step, dialect))
        if not _exists(store, database, view):  # no view yet: (re)fill, then feed
            store.execute(f"TRUNCATE TABLE {db}.{table}")
            store.execute(family.backfill(database, step))
            store.execute(family.create_view(database, step))


def _results_rollups(store: Store, database: str, dialect: ddl.Dialect) -> None:
    _build(store, database, dialect, rollups.RESULTS)


def _report_rollups(store: Store, database: str, dialect: ddl.Dialect) -> None:
    for family in rollups.FAMILIES:
        _build(store, database, dialect, family)


def _second_rollups(store: Store, database: str, dialect: ddl.Dialect) -> None:
    for family in rollups.FAMILIES:
        _build(store, database, dialect, family, steps=(1,))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "event tables", _event_tables),
    Migration(2, "ingestion ledger", _ledger),
    Migration(3, "rollups per minute and hour", _results_rollups),
    Migration(4, "report rollups: rules, errors, feedback, squares", _report_rollups),
    Migration(5, "result segments, alert evidence", _new_columns),
    Migration(6, "rollups per second", _second_rollups),
    Migration(7, "feedback rules and segments", _new_columns),
)


def applied(store: Store, database: str) -> set[int]:
    """Versions recorded as applied in ``database``."""
    sql = f"SELECT DISTINCT version FROM {ddl.identifier(database)}.{ddl.MIGRATIONS_TABLE}"
    return {int(version) for (version,) in store.query(sql)}


def migrate(
    store: Store, database: str, upto: int | None = None, lock_timeout: float = 1800.0
) -> list[int]:
    """Create ``database`` and apply the missing migrations in order; return their versions.

    Only one process migrates at a time (``sinks.schema_lock``): another one starting
    meanwhile waits up to ``lock_timeout`` s, then finds the versions applied and runs none.
    ``upto`` stops after that version (to build an older schema, in tests).
    """
    for sql in (f"CREATE DATABASE IF NOT EXISTS {ddl.identifier(database)}",
                ddl.migrations_table(database)):  # fmt: skip
        _setup(store, sql)
    if not _pending(store, database, upto):
        return []
    ran = []
    with _one_at_a_time(store, database, lock_timeout):
        dialect = ddl.Dialect(store.version)
        for migration in _pending(store, database, upto):  # read again under the lock
            migration.apply(store, database, dialect)
            store.insert(
                f"{database}.{ddl.MIGRATIONS_TABLE}",
                {
                    "version": [migration.version],
                    "name": [migration.name],
                    "applied_at": [datetime.now(UTC)],
                },
            )
            ran.append(migration.version)
    return ran


@contextmanager
def _one_at_a_time(store: Store, database: str, timeout: float) -> Iterator[None]:
    """The migration lock on a server, and no insert running once it is taken."""
    if not store.shared:  # chdb: this process owns the folder
        yield
        return
    with schema_lock.held(store, database, timeout=timeout):
        if applied(store, database):  # tables exist: sinks may be writing
            time.sleep(SETTLE)
            schema_lock.settled(store, database, timeout)
        yield


def _setup(store: Store, sql: str, tries: int = 20) -> None:
    """DDL that a concurrent start may be running too (18.x refuses it meanwhile)."""
    for attempt in range(tries):
        try:
            store.execute(sql)
            return
        except StoreError as exc:
            if schema_lock.TAKEN[1] not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.1)


def _pending(store: Store, database: str, upto: int | None) -> list[Migration]:
    done = applied(store, database)
    return [
        m
        for m in sorted(MIGRATIONS, key=lambda m: m.version)
        if m.version not in done and (upto is None or m.version <= upto)
    ]
