"""The migration lock: one migrator at a time, a dead holder broken, a live one waited for."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from sinks import rollups, rows, schema_lock
from sinks.migrations import migrate
from sinks.schema_lock import Holder, SchemaLocked
from sinks.store import Store
from tests.fakes import FakeClock
from tests.sinks.conftest import make_result
from tests.sinks.test_migrations import totals


def hold(store: Store, database: str, holder: Holder) -> None:
    """Leave a lock behind as ``holder`` would (as a crash mid-migration does)."""
    schema_lock._claim(store, database, holder)


def locked(store: Store, database: str) -> bool:
    return schema_lock.holder(store, database) is not None


def test_the_lock_is_dropped_after_the_block_even_when_it_fails(
    store: Store, database: str
) -> None:
    migrate(store, database)
    with pytest.raises(ValueError), schema_lock.held(store, database):
        assert locked(store, database)
        raise ValueError("a migration failed")
    assert not locked(store, database)


def test_a_live_holder_is_waited_for_then_named(store: Store, database: str) -> None:
    migrate(store, database)
    hold(store, database, Holder("elsewhere", 4242, "17"))  # another host: never broken
    clock = FakeClock()
    waiting = schema_lock.held(store, database, timeout=30, clock=clock, sleep=clock.sleep)
    with pytest.raises(SchemaLocked, match=r"elsewhere pid 4242 .* DROP TABLE"), waiting:
        pytest.fail("the lock was taken from a live holder")
    assert clock.now == pytest.approx(130)
    assert locked(store, database)  # still theirs


def test_a_dead_holder_on_this_machine_is_broken(store: Store, database: str) -> None:
    migrate(store, database)
    me = Holder.me()
    machine = me.started.partition("@")[2]
    dead = Holder(me.host, me.pid, f"0@{machine}")  # this pid, an earlier process
    in_a_container = Holder(me.host, 4242, f"0@another-boot/{machine}")
    assert dead.gone() and not me.gone() and not in_a_container.gone()
    hold(store, database, dead)
    clock = FakeClock()
    with schema_lock.held(store, database, timeout=30, clock=clock, sleep=clock.sleep):
        assert schema_lock.holder(store, database) == me
    assert clock.now == pytest.approx(101)  # one poll, then taken


MIGRATE = """
import sys
from sinks.migrations import migrate
from sinks.store.server import ServerStore
with ServerStore(sys.argv[1]) as store:
    print(migrate(store, sys.argv[2]))
"""


def migrate_at_once(url: str, database: str, processes: int = 3) -> list[str]:
    """``processes`` phasegate processes starting at the same moment; what each migrated."""
    started = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, url, database], stdout=subprocess.PIPE)
        for _ in range(processes)
    ]
    out = [p.communicate(timeout=120)[0].decode().strip() for p in started]
    assert [p.returncode for p in started] == [0] * processes
    return sorted(out)


def assert_rollups_match_events(store: Store, database: str) -> None:
    for family in rollups.FAMILIES:
        for step in rollups.ROLLUP_STEPS:
            events = f"({family.select(f'{database}.{family.table} FINAL', step)})"
            rollup = f"{database}.{family.rollup(step)}"
            assert totals(store, rollup, family) == totals(store, events, family), rollup


@pytest.fixture
def server_database(clickhouse_url: str) -> Iterator[tuple[Store, str]]:
    from sinks.store.server import ServerStore

    database = f"t_{uuid.uuid4().hex[:12]}"
    with ServerStore(clickhouse_url) as store:
        yield store, database
        store.execute(f"DROP DATABASE IF EXISTS {database}")


def test_processes_starting_together_on_a_new_database_migrate_it_once(
    clickhouse_url: str, server_database: tuple[Store, str]
) -> None:
    store, database = server_database
    assert migrate_at_once(clickhouse_url, database) == ["[1, 2, 3, 4, 5, 6, 7]", "[]", "[]"]
    assert not locked(store, database)


def test_processes_upgrading_together_build_each_rollup_once(
    clickhouse_url: str, server_database: tuple[Store, str]
) -> None:
    store, database = server_database
    assert migrate(store, database, upto=3) == [1, 2, 3]
    store.insert(f"{database}.results", rows.result_columns(make_results(0, 6000)))
    assert migrate_at_once(clickhouse_url, database) == ["[4, 5, 6, 7]", "[]", "[]"]
    assert_rollups_match_events(store, database)
    assert not locked(store, database)


def make_results(start: int, stop: int) -> list:
    return [make_result(i) for i in range(start, stop)]


def test_an_upgrade_while_a_writer_inserts_counts_every_row_once(
    clickhouse_url: str, server_database: tuple[Store, str]
) -> None:
    """A writer that asks for the lock before each insert, as the sink does, never stops."""
    from sinks.store.server import ServerStore

    store, database = server_database
    assert migrate(store, database, upto=3) == [1, 2, 3]
    store.insert(f"{database}.results", rows.result_columns(make_results(0, 20_000)))
    stop, inserted, held_back = threading.Event(), [0], [0]

    def write() -> None:
        with ServerStore(clickhouse_url) as mine:
            for n in itertools.count(1):
                if stop.is_set():
                    return
                batch = rows.result_columns(make_results(n * 100_000, n * 100_000 + 500))
                if schema_lock.holder(mine, database) is None:
                    mine.insert(f"{database}.results", batch)
                    inserted[0] += 1
                else:
                    held_back[0] += 1
                    time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.5)
        assert migrate(store, database) == [4, 5, 6, 7]
        before = inserted[0]
        time.sleep(0.5)
    finally:
        stop.set()
        writer.join()
    assert held_back[0] > 0 and inserted[0] > before > 0  # it wrote before, waited, wrote after
    assert_rollups_match_events(store, database)
