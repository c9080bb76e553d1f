"""The migration lock: one migrator at a time, a dead holder broken, a live one waited for."""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from sinks import rollups, rows, schema_lock
from sinks.migrations import migrate
from sinks.schema_lock import Holder, SchemaLocked
from sinks.store import Store
from tests.fakes import FakeClock
from tests.sinks.conftest import make_result
from tests.sinks.test_migrations import totals


def lock_table(database: str) -> str:
    return f"{database}.{schema_lock.LOCK_TABLE}"


def hold(store: Store, database: str, holder: Holder) -> None:
    """Leave a lock behind as ``holder`` would (as a crash mid-migration does)."""
    store.execute(
        f"CREATE TABLE {lock_table(database)} (host String, pid UInt32, started String) "
        "ENGINE = Log"
    )
    columns = {"host": [holder.host], "pid": [holder.pid], "started": [holder.started]}
    store.insert(lock_table(database), columns)


def exists(store: Store, table: str) -> bool:
    db, name = table.split(".")
    sql = "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(name)s"
    return bool(store.query(sql, {"db": db, "name": name}).scalar())


def test_the_lock_is_dropped_after_the_block_even_when_it_fails(
    store: Store, database: str
) -> None:
    migrate(store, database)
    with pytest.raises(ValueError), schema_lock.held(store, database):
        assert exists(store, lock_table(database))
        raise ValueError("a migration failed")
    assert not exists(store, lock_table(database))


def test_a_live_holder_is_waited_for_then_named(store: Store, database: str) -> None:
    migrate(store, database)
    hold(store, database, Holder("elsewhere", 4242, "17"))  # another host: never broken
    clock = FakeClock()
    waiting = schema_lock.held(store, database, timeout=30, clock=clock, sleep=clock.sleep)
    with pytest.raises(SchemaLocked, match=r"elsewhere pid 4242 .* DROP TABLE"), waiting:
        pytest.fail("the lock was taken from a live holder")
    assert clock.now == pytest.approx(130)
    assert exists(store, lock_table(database))  # still theirs


def test_a_dead_holder_on_this_host_is_broken(store: Store, database: str) -> None:
    migrate(store, database)
    child = subprocess.run(
        [sys.executable, "-c", "from sinks.schema_lock import Holder; print(Holder.me())"],
        capture_output=True,
        text=True,
        check=True,
    )
    me = Holder.me()
    pid = int(child.stdout.split()[-1])
    dead = Holder(me.host, pid, schema_lock._started(pid) or "1")  # start of a gone process
    assert dead.gone() and not me.gone()
    hold(store, database, dead)
    clock = FakeClock()
    with schema_lock.held(store, database, timeout=30, clock=clock, sleep=clock.sleep):
        assert schema_lock._holder(store, lock_table(database)) == me
    assert clock.now == 100


def test_concurrent_migrations_build_each_rollup_once(clickhouse_url: str) -> None:
    """Three processes upgrade the same v3 database at once: one migrates, two wait."""
    from sinks.store.server import ServerStore

    database = f"t_{uuid.uuid4().hex[:12]}"
    with ServerStore(clickhouse_url) as store:
        assert migrate(store, database, upto=3) == [1, 2, 3]
        results = [make_result(i) for i in range(0, 20_000, 3)]
        store.insert(f"{database}.results", rows.result_columns(results))

    def upgrade(_: int) -> list[int]:
        with ServerStore(clickhouse_url) as mine:
            return migrate(mine, database)

    with ThreadPoolExecutor(3) as pool:
        ran = sorted(pool.map(upgrade, range(3)))
    assert ran == [[], [], [4]]
    with ServerStore(clickhouse_url) as store:
        for family in rollups.FAMILIES:
            for step in rollups.ROLLUP_STEPS:
                events = f"({family.select(f'{database}.{family.table} FINAL', step)})"
                rollup = f"{database}.{family.rollup(step)}"
                assert totals(store, rollup, family) == totals(store, events, family)
        assert not exists(store, lock_table(database))
        store.execute(f"DROP DATABASE {database}")
