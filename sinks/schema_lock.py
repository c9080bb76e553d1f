"""One migrator at a time on a shared server: a lock table only one process can create.

``CREATE TABLE ... AS SELECT`` without ``IF NOT EXISTS`` succeeds for one caller only; that
is the lock, holding who took it (host, pid, and the process's start, boot and pid
namespace). The holder drops it when done. Others poll. A holder on this machine whose
process is gone (a crash mid-migration) is broken, one breaker at a time (a file lock on
this machine); any other holder is waited for until ``timeout``, then the waiter fails and
says how to free the lock by hand.

Writers ask ``holder()`` before each insert and hold their rows while the table exists;
the migrator then waits until no insert into the database is running (``settled``), so
none lands while a rollup is filled. chdb needs none of this: its folder is one process's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sinks import ddl
from sinks.store import Store, StoreError

log = logging.getLogger(__name__)

LOCK_TABLE = "schema_lock"
TAKEN = ("already exists", "creating or attaching right now")  # 57, and 473 on 18.x


class SchemaLocked(StoreError):
    """Another process held the migration lock for longer than the wait allowed."""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _started(pid: int) -> str:
    """A process's start in clock ticks since boot ("" where /proc has none)."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[1].split()[19] if stat else ""  # field 22 of stat(5)


def _machine() -> str:
    """This boot and pid namespace: pids mean the same process only within both."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{_read('/proc/sys/kernel/random/boot_id')}/{namespace}"


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: str  # "<start ticks>@<boot id>/<pid namespace>"

    @classmethod
    def me(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), f"{_started(os.getpid())}@{_machine()}")

    def gone(self) -> bool:
        """True only when certain: this machine, and no process with that pid and start."""
        ticks, _, machine = self.started.partition("@")
        if self.host != socket.gethostname() or not ticks or machine != _machine():
            return False
        return _started(self.pid) != ticks

    def __str__(self) -> str:
        return f"{self.host} pid {self.pid}"


UNKNOWN = Holder("(being written)", 0, "")


def _table(database: str) -> str:
    return f"{ddl.identifier(database)}.{LOCK_TABLE}"


def holder(store: Store, database: str) -> Holder | None:
    """Who is migrating ``database`` now; ``None`` when nobody is."""
    sql = "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(name)s"
    if not store.query(sql, {"db": database, "name": LOCK_TABLE}).scalar():
        return None
    try:
        rows = store.query(f"SELECT host, pid, started FROM {_table(database)}").rows
    except StoreError:
        return None  # dropped meanwhile
    return Holder(rows[0][0], int(rows[0][1]), rows[0][2]) if rows else UNKNOWN


def _claim(store: Store, database: str, me: Holder) -> bool:
    try:
        store.execute(
            f"CREATE TABLE {_table(database)} ENGINE = Log AS SELECT %(host)s AS host, "
            "toUInt32(%(pid)s) AS pid, %(started)s AS started",
            {"host": me.host, "pid": me.pid, "started": me.started},
        )
    except StoreError as exc:
        if any(text in str(exc) for text in TAKEN):
            return False
        raise
    return True


def _break(store: Store, database: str, dead: Holder) -> None:
    """Drop a dead holder's lock; one breaker per machine, so a fresh lock is never hit."""
    path = Path(tempfile.gettempdir()) / f"phasegate-schema-lock-{database}"
    with path.open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            if holder(store, database) == dead:  # still the dead one, under the file lock
                log.warning("breaking the migration lock of %s: that process is gone", dead)
                store.execute(f"DROP TABLE IF EXISTS {_table(database)}")
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _release(store: Store, database: str, me: Holder) -> None:
    """Drop the lock if it is still ``me``'s; say how to drop it if the store refuses."""
    table = _table(database)
    for attempt in range(3):
        try:
            if holder(store, database) == me:
                store.execute(f"DROP TABLE IF EXISTS {table}")
            return
        except StoreError as exc:
            if attempt == 2:
                log.error("cannot drop the migration lock (%s): DROP TABLE %s", exc, table)
            time.sleep(1)


def settled(
    store: Store,
    database: str,
    timeout: float,
    poll: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until no insert into ``database`` runs on the server (up to ``timeout`` s)."""
    sql = "SELECT count() FROM system.processes WHERE query LIKE %(insert)s"
    pattern = {"insert": f"INSERT INTO {database}.%"}
    deadline = clock() + timeout
    while store.query(sql, pattern).scalar() and clock() < deadline:
        sleep(poll)


@contextmanager
def held(
    store: Store,
    database: str,
    timeout: float = 1800.0,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold ``database``'s migration lock for the block; wait up to ``timeout`` s for it."""
    me, deadline, told = Holder.me(), clock() + timeout, False
    while not _claim(store, database, me):
        current = holder(store, database)
        if current is not None and current.gone():
            _break(store, database, current)
        elif clock() >= deadline:
            raise SchemaLocked(
                f"{database}: schema migration lock held by {current} for over {timeout:.0f} s; "
                f"if that process is gone, run DROP TABLE {_table(database)} and start again"
            )
        elif not told:
            log.info("waiting for the schema migration of %s (%s)", current, database)
            told = True
        sleep(poll)
    try:
        yield
    finally:
        _release(store, database, me)
