"""One migrator at a time: a lock table that only one process can create.

``CREATE TABLE`` without ``IF NOT EXISTS`` succeeds for one caller only; that is the lock.
The holder writes who it is (host, pid, process start) into it and drops it when done.
Others poll. A holder on the same host whose process is gone (a crash mid-migration) is
broken; any other holder is waited for until ``timeout``, then the waiter fails and says
how to free the lock by hand.

Writers ask ``holder()`` before each insert and hold their rows while a migration runs;
the holder waits ``settle`` seconds after taking the lock, so an insert that asked just
before has landed before any rollup is filled.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sinks import ddl
from sinks.store import Store, StoreError

log = logging.getLogger(__name__)

LOCK_TABLE = "schema_lock"


class SchemaLocked(StoreError):
    """Another process held the migration lock for longer than the wait allowed."""


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" where /proc has none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of stat(5)


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: str

    @classmethod
    def me(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), _started(os.getpid()))

    def gone(self) -> bool:
        """True only when it is certain: same host, and no process with that pid and start."""
        if self.host != socket.gethostname() or not self.started:
            return False
        return _started(self.pid) != self.started

    def __str__(self) -> str:
        return f"{self.host} pid {self.pid}"


def _table(database: str) -> str:
    return f"{ddl.identifier(database)}.{LOCK_TABLE}"


def _holder(store: Store, table: str) -> Holder | None:
    """Who holds the lock in ``table``; ``None`` if nobody (or it is being created)."""
    try:
        rows = store.query(f"SELECT host, pid, started FROM {table}").rows
    except StoreError:
        return None  # dropped meanwhile
    return Holder(rows[0][0], int(rows[0][1]), rows[0][2]) if rows else None


def holder(store: Store, database: str) -> Holder | None:
    """Who is migrating ``database`` now; ``None`` when nobody is."""
    sql = "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(name)s"
    if not store.query(sql, {"db": database, "name": LOCK_TABLE}).scalar():
        return None
    return _holder(store, _table(database))


def _claim(store: Store, database: str, me: Holder) -> bool:
    try:
        store.execute(
            f"CREATE TABLE {_table(database)} (host String, pid UInt32, started String) "
            "ENGINE = Log"
        )
    except StoreError as exc:
        if "already exists" in str(exc).lower():
            return False
        raise
    store.insert(_table(database), {"host": [me.host], "pid": [me.pid], "started": [me.started]})
    return True


def _break(store: Store, database: str, dead: Holder) -> None:
    """Remove a dead holder's lock: set it aside first, so a fresh lock is never dropped."""
    aside = f"{_table(database)}_broken_{os.getpid()}"
    try:
        store.execute(f"RENAME TABLE {_table(database)} TO {aside}")
    except StoreError:
        return  # another waiter broke it first
    if _holder(store, aside) == dead:
        log.warning("broke the migration lock of %s: that process is gone", dead)
        store.execute(f"DROP TABLE IF EXISTS {aside}")
    else:  # it was taken afresh meanwhile: give it back
        store.execute(f"RENAME TABLE {aside} TO {_table(database)}")


@contextmanager
def held(
    store: Store,
    database: str,
    timeout: float = 1800.0,
    settle: float = 0.0,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold ``database``'s migration lock for the block; wait up to ``timeout`` s for it,
    then ``settle`` s for inserts begun before it was taken."""
    me, deadline, told = Holder.me(), clock() + timeout, False
    while not _claim(store, database, me):
        holder = _holder(store, _table(database))
        if holder is not None and holder.gone():
            _break(store, database, holder)
            continue
        if clock() >= deadline:
            raise SchemaLocked(
                f"{database}: schema migration lock held by {holder} for over {timeout:.0f} s; "
                f"if that process is gone, run DROP TABLE {_table(database)} and start again"
            )
        if not told:
            log.info("waiting for the schema migration of %s (%s)", holder, database)
            told = True
        sleep(poll)
    try:
        sleep(settle)
        yield
    finally:
        store.execute(f"DROP TABLE IF EXISTS {_table(database)}")
