"""Rows read again after an insert that may not have returned: stored or not, counted by
each rollup or not.

An insert into an event table writes the table's part first, then hands the rows to each
materialized view in turn (18.16 has no atomic insert into a table and its views). An
insert that raised (the server stopped, the connection broke), or whose sink died before
its commit, may have stored all, some or none of its rows, and each view may or may not
have counted those stored. So the sink never inserts such rows blindly: :func:`reconcile`
asks the table which of them it holds (the others are inserted as usual), and compares
each rollup with the event rows over the buckets the held rows fall in. A rollup short by
exactly the held rows' count gets them (what its view would have inserted); one that
agrees is left alone; any other difference is logged, never guessed at.

It runs under the migration lock (``sinks.schema_lock``) on a shared server, with no
insert running, so the rollups and the table hold still while they are compared.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from sinks import ddl, rollups, schema_lock
from sinks.ledger import Entries, Held
from sinks.store import Store

log = logging.getLogger(__name__)

LOCK_S = 10.0
"""The longest wait for the migration lock (a migration running): then the batch is
tried again later, as on any store error."""


def ranges(entries: Entries) -> str:
    """The SQL condition on the ledger columns covering ``entries``' offsets."""
    return " OR ".join(
        f"(kafka_partition = {int(getattr(p, 'partition', p))} "
        f"AND kafka_offset BETWEEN {int(low)} AND {int(entries.highest[p])})"
        for p, low in entries.lowest.items()
    )


def held(store: Store, database: str, table: ddl.Table, where: str) -> set[Held]:
    """The (partition, offset) pairs ``table`` holds in ``where``."""
    sql = (
        f"SELECT DISTINCT kafka_partition, kafka_offset "
        f"FROM {ddl.identifier(database)}.{table.name} WHERE {where}"
    )
    return {(int(p), int(o)) for p, o in store.query(sql)}


def comparison(database: str, family: rollups.Family, step: int, where: str) -> str:
    """Three counts (the family's first value) over the buckets of the event rows in
    ``where``: those rows' own, every event row's, and the rollup's."""
    db, start = ddl.identifier(database), rollups.STEPS[step][1]
    source, count = f"{db}.{family.table}", family.values[0].name
    buckets = f"(rollout, {{}}) IN (SELECT rollout, {start}(ts) FROM {source} WHERE {where})"
    ours = family.select(source, step, where)
    every = family.select(source, step, buckets.format(f"{start}(ts)"))
    rolled = f"SELECT {count} FROM {db}.{family.rollup(step)} WHERE {buckets.format('bucket')}"
    return "SELECT " + ", ".join(f"(SELECT sum({count}) FROM ({q}))" for q in (ours, every, rolled))


def repair(store: Store, database: str, family: rollups.Family, step: int, where: str) -> None:
    """Give ``family``'s ``step`` rollup the event rows in ``where`` if it missed them."""
    counts = store.query(comparison(database, family, step, where)).rows[0]
    ours, every, rolled = (int(x or 0) for x in counts)
    if not ours or every == rolled:
        return
    db = ddl.identifier(database)
    rollup = f"{db}.{family.rollup(step)}"
    if every - rolled == ours:
        store.execute(f"INSERT INTO {rollup} {family.select(f'{db}.{family.table}', step, where)}")
        log.warning("sink: %s had missed %d rows of an insert that failed: added", rollup, ours)
        return
    log.error(
        "sink: %s counts %d where its event rows count %d, over the buckets of %d rows of an "
        "insert that failed; `phasegate replay` rebuilds it",
        rollup,
        rolled,
        every,
        ours,
    )


@contextlib.contextmanager
def _still(store: Store, database: str) -> Iterator[None]:
    """No other writer inserts meanwhile (a shared server's migration lock)."""
    if not store.shared:
        yield
        return
    with schema_lock.held(store, database, timeout=LOCK_S, poll=0.2):
        schema_lock.settled(store, database, LOCK_S)
        yield


def reconcile(store: Store, database: str, table: ddl.Table, again: Entries) -> set[Held]:
    """Of ``again`` (rows read again at or below a partition's stored offset), those
    ``table`` holds, with every rollup of ``table`` made to count them once."""
    where = ranges(again)
    with _still(store, database):
        found = held(store, database, table, where)
        if found:
            for family in rollups.FAMILIES:
                if family.table == table.name:
                    for step in rollups.ROLLUP_STEPS:
                        repair(store, database, family, step, where)
    return found
