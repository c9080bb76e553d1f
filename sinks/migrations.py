"""Versioned schema migrations, applied at start and recorded in ``schema_migrations``.

A migration is a list of statements for a dialect; each runs once per database. Statements
are idempotent too (``IF NOT EXISTS``), so two processes starting together, or a run
interrupted between a statement and its record, do no harm.
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
    statements: Callable[[str, ddl.Dialect], list[str]]


def _event_tables(database: str, dialect: ddl.Dialect) -> list[str]:
    return [table.create(database, dialect) for table in ddl.EVENT_TABLES]


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "event tables", _event_tables),)


def applied(store: Store, database: str) -> set[int]:
    """Versions recorded as applied in ``database``."""
    sql = f"SELECT DISTINCT version FROM {ddl.identifier(database)}.{ddl.MIGRATIONS_TABLE}"
    return {int(version) for (version,) in store.query(sql)}


def migrate(store: Store, database: str) -> list[int]:
    """Create ``database`` and apply the missing migrations in order; return their versions."""
    store.execute(f"CREATE DATABASE IF NOT EXISTS {ddl.identifier(database)}")
    store.execute(ddl.migrations_table(database))
    done = applied(store, database)
    dialect = ddl.Dialect(store.version)
    ran = []
    for migration in sorted(MIGRATIONS, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in migration.statements(database, dialect):
            store.execute(statement)
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
