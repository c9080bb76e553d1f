"""Versioned schema migrations, applied at start and recorded in ``schema_migrations``.

A migration runs once per database, for the server's dialect. Each is idempotent too
(``IF NOT EXISTS``, columns added only when missing, a rollup backfilled only while its
view does not exist), so a run interrupted between its work and its record does no harm.

1. the event tables of design.md;
2. the ingestion ledger: ``kafka_partition`` and ``kafka_offset`` on every event table;
3. rollups per minute and per hour (``results_1m``, ``results_1h``), backfilled from
   ``results FINAL`` and then fed by materialized views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sinks import ddl
from sinks.store import Store


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


def _rollups(store: Store, database: str, dialect: ddl.Dialect) -> None:
    for rollup in ddl.ROLLUPS:
        store.execute(rollup.create(database, dialect))
        if not _exists(store, database, rollup.view):  # no view yet: (re)fill, then feed
            store.execute(f"TRUNCATE TABLE {ddl.identifier(database)}.{rollup.name}")
            store.execute(rollup.backfill(database))
            store.execute(rollup.create_view(database))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "event tables", _event_tables),
    Migration(2, "ingestion ledger", _ledger),
    Migration(3, "rollups per minute and hour", _rollups),
)


def applied(store: Store, database: str) -> set[int]:
    """Versions recorded as applied in ``database``."""
    sql = f"SELECT DISTINCT version FROM {ddl.identifier(database)}.{ddl.MIGRATIONS_TABLE}"
    return {int(version) for (version,) in store.query(sql)}


def migrate(store: Store, database: str, upto: int | None = None) -> list[int]:
    """Create ``database`` and apply the missing migrations in order; return their versions.

    ``upto`` stops after that version (to build an older schema, in tests).
    """
    store.execute(f"CREATE DATABASE IF NOT EXISTS {ddl.identifier(database)}")
    store.execute(ddl.migrations_table(database))
    done = applied(store, database)
    dialect = ddl.Dialect(store.version)
    ran = []
    for migration in sorted(MIGRATIONS, key=lambda m: m.version):
        if migration.version in done or (upto is not None and migration.version > upto):
            continue
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
