"""The store in-process: chdb (ClickHouse as a library) on a data folder, zero setup.

chdb lets one process at a time open a folder. The process holding it serves statements
on it to this user's other processes (``sinks.store.endpoint``), so ``phasegate report``,
``evaluate`` and ``sql`` read while ``phasegate sink`` writes; a writer needs the folder.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from sinks.store import endpoint
from sinks.store.arrow import ArrowStore
from sinks.store.base import Pool, Store, StoreError, StoreUnavailable, row_count

_WHAT_TO_DO = (
    "stop the process holding it, or set PHASEGATE_STORE_PATH to another folder (or "
    "PHASEGATE_CLICKHOUSE_URL to a ClickHouse server)."
)
WAIT = 10.0
"""Seconds an opener waits for a folder another process holds (a report holds it briefly)."""


def _session(path: Path) -> Any:
    try:
        from chdb import session
    except ImportError:
        raise StoreUnavailable(
            "chdb is not installed: `pip install 'phasegate[local]'` for the local store, "
            "or set PHASEGATE_CLICKHOUSE_URL to a ClickHouse server."
        ) from None
    path.mkdir(parents=True, exist_ok=True)
    try:
        return session.Session(str(path))
    except Exception as exc:  # chdb 4 says little more than "Error initializing EmbeddedServer"
        raise StoreUnavailable(
            f"cannot open the local store at {path}: {str(exc).strip()}. chdb opens one folder "
            f"per process, and a folder in one process at a time: {_WHAT_TO_DO}"
        ) from None


def _arrow_column(values: Sequence) -> Any:
    """An arrow array ClickHouse casts to the column's type.

    UUIDs go as their 32 hex digits (what ClickHouse reads fastest of the text forms
    Python gives fastest); a column of only NULLs or only empty lists, whose element type
    pyarrow cannot infer, goes as strings. A column's values are of one type (the first
    not NULL says which).
    """
    import pyarrow as pa

    first = next((v for v in values if v is not None), None)
    if isinstance(first, UUID):
        values = [None if v is None else v.hex for v in values]
    array = pa.array(values)
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    if pa.types.is_list(array.type) and pa.types.is_null(array.type.value_type):
        return array.cast(pa.list_(pa.string()))
    return array


class _Session:
    """A chdb session on the folder, one statement at a time."""

    def __init__(self, path: Path) -> None:
        self._session = _session(path)
        self._lock = threading.Lock()

    def run(self, sql: str) -> bytes:
        if self._session is None:
            raise StoreError("the local store is closed")
        try:
            with self._lock:
                return self._session.query(sql, "ArrowStream").bytes()
        except Exception as exc:
            raise StoreError(str(exc).strip()) from None

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


class LocalStore(ArrowStore):
    """chdb on ``path``, held by this process and served to this user's others.

    A session per thread at a time: readers do not wait for the sink's inserts, and two
    inserts overlap one's Arrow building with the other's engine work.
    """

    inserts_at_once = 2
    insert_settings = (
        "SETTINGS max_partitions_per_insert_block = 0, optimize_on_insert = 0, max_threads = 1"
    )
    """A replay of a long history touches a partition per month: no cap (default 100).
    No merge of a block's duplicates on insert (every read sums rollups or uses FINAL, as
    on 18.16, which never merges on insert), and one engine thread an insert (two run at
    once): docs/design.md, "The sink's loop"."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._sessions = Pool(lambda: _Session(self.path), _Session.close)
        with self._sessions.borrow():
            pass  # the first session: a folder chdb cannot open fails here
        self._endpoint = endpoint.Endpoint.start(self.path, _Session(self.path))

    def _run(self, sql: str) -> bytes:
        with self._sessions.borrow() as session:
            return session.run(sql)

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        import pyarrow as pa

        count = row_count(columns)
        if count:
            batch = pa.table({name: _arrow_column(v) for name, v in columns.items()})  # noqa: F841
            names = ", ".join(columns)
            self._run(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(batch) "
                + self.insert_settings
            )
        return count

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None
        self._sessions.close()


def open_local(path: Path, reading: bool = False, wait: float = WAIT) -> Store:
    """chdb at ``path``: held by this process, or (``reading``) read through the one that
    holds it. A writer waits up to ``wait`` s for another holder to let go."""
    deadline = time.monotonic() + wait
    while True:
        reader = endpoint.connect(path)
        if reader is None or reader.pid == os.getpid():
            if reader is not None:
                reader.close()
            try:
                return LocalStore(path)
            except StoreUnavailable as exc:  # taken meanwhile, or not a folder chdb can open
                problem = str(exc)
        elif reading:
            return reader
        else:
            reader.close()
            problem = (
                f"the local store at {path} is held by another process (pid {reader.pid}, "
                f"e.g. `phasegate sink`), which serves reads; writing needs the folder: "
                + _WHAT_TO_DO
            )
        if time.monotonic() > deadline:
            raise StoreUnavailable(problem)
        time.sleep(0.1)
