"""Rows an insert that raised may have stored, with some of the rollup views skipped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from kafka import TopicPartition

from sinks import ddl, repair, rollups
from sinks.batch import entry_columns
from sinks.ledger import Entries
from sinks.migrations import migrate
from sinks.store import Store
from tests.sinks.conftest import make_result

VIEWS = [f.view(s) for f in rollups.FAMILIES if f.table == "results" for s in rollups.ROLLUP_STEPS]
P0, P1 = TopicPartition("results", 0), TopicPartition("results", 1)


@contextmanager
def views_detached(store: Store, database: str, views: Sequence[str]) -> Iterator[None]:
    """An insert meanwhile stores its rows and skips ``views``: a server stopped mid-insert."""
    for view in views:
        store.execute(f"DETACH TABLE {database}.{view}")
    try:
        yield
    finally:
        for view in views:
            store.execute(f"ATTACH TABLE {database}.{view}")


def rollups_agree(store: Store, database: str) -> dict[str, tuple[int, int]]:
    """Per rollup of the results: its count and that of the event rows under FINAL."""
    counts = {}
    for family in rollups.FAMILIES:
        if family.table == "results":
            for step in rollups.ROLLUP_STEPS:
                first = family.values[0].name
                rows = family.select(f"{database}.results FINAL", step)
                events = store.query(f"SELECT sum({first}) FROM ({rows})").scalar()
                rolled = store.query(f"SELECT sum({first}) FROM {database}.{family.rollup(step)}")
                counts[family.rollup(step)] = (int(rolled.scalar() or 0), int(events or 0))
    return counts


def test_reconcile_finds_the_stored_rows_and_gives_each_rollup_only_what_it_missed(
    store: Store, database: str
) -> None:
    migrate(store, database)
    table = f"{database}.results"
    batch = Entries.of([(P0, i, make_result(i)) for i in range(40)])
    stored = batch.subset(range(30))
    with views_detached(store, database, VIEWS[::2]):
        store.insert(table, entry_columns(ddl.RESULTS, stored))
    others = Entries.of([(P1, i, make_result(100 + i)) for i in range(20)])  # same buckets
    store.insert(table, entry_columns(ddl.RESULTS, others))
    assert any(r != e for r, e in rollups_agree(store, database).values())

    assert repair.reconcile(store, database, ddl.RESULTS, batch) == {(0, i) for i in range(30)}
    counts = rollups_agree(store, database)
    assert all(r == e for r, e in counts.values()), counts
    assert repair.reconcile(store, database, ddl.RESULTS, batch)  # again: nothing to add
    assert rollups_agree(store, database) == counts


def test_reconcile_of_rows_never_stored_holds_none_and_adds_nothing(
    store: Store, database: str
) -> None:
    migrate(store, database)
    batch = Entries.of([(P0, i, make_result(i)) for i in range(10)])
    assert repair.reconcile(store, database, ddl.RESULTS, batch) == set()
    assert all(r == e == 0 for r, e in rollups_agree(store, database).values())
