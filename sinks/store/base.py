"""The store interface both backends implement, and the pieces they share."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Generic, Self, TypeVar

from clickhouse_driver.util.escape import escape_params

Params = Mapping[str, Any]
C = TypeVar("C")


class StoreError(RuntimeError):
    """A statement the store refused (bad SQL, wrong types, missing table)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or opened at all; the message says what to do."""


@dataclass(frozen=True)
class Rows:
    """A query's result: column names and rows as tuples."""

    columns: list[str]
    rows: list[tuple]

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row (``None`` for no rows)."""
        return self.rows[0][0] if self.rows else None


def utc_params(params: Params | None) -> dict[str, Any] | None:
    """Aware datetimes become naive UTC, so both backends send the same literal."""
    if params is None:
        return None
    return {
        k: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v
        for k, v in params.items()
    }


_UTC_CONTEXT = SimpleNamespace(server_info=SimpleNamespace(get_timezone=lambda: "UTC"))


def substitute(sql: str, params: Params | None) -> str:
    """Fill ``%(name)s`` placeholders exactly as clickhouse-driver does (escaped literals)."""
    if params is None:
        return sql
    return sql % escape_params(utc_params(params), _UTC_CONTEXT)


def parse_version(text: str) -> tuple[int, ...]:
    """``"18.16.1"`` -> ``(18, 16, 1)``."""
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


class Store(ABC):
    """A ClickHouse: a server (``server.ServerStore``) or in-process chdb (``local.LocalStore``).

    ``query`` and ``execute`` take ``%(name)s`` parameters, escaped the same way on both
    backends; ``insert`` takes columns (name -> values), never SQL literals.
    """

    _version: tuple[int, ...] | None = None
    shared = True
    """Other processes may use the same databases (a server; not chdb's own folder)."""
    inserts_at_once = 1
    """Inserts that may run at once, each on its own thread."""

    @abstractmethod
    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing (DDL)."""

    @abstractmethod
    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        """Insert rows given column by column; return the row count."""

    @abstractmethod
    def query(self, sql: str, params: Params | None = None) -> Rows:
        """Run a SELECT; return its rows and column names."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection or the data folder."""

    @property
    def version(self) -> tuple[int, ...]:
        """The ClickHouse version, e.g. ``(18, 16, 1)``."""
        if self._version is None:
            self._version = parse_version(str(self.query("SELECT version()").scalar()))
        return self._version

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def row_count(columns: Mapping[str, Sequence]) -> int:
    """The common length of the columns; a ``StoreError`` if they differ."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise StoreError(f"columns of different lengths: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


class Pool(Generic[C]):
    """A store's connections (clients, sessions), each used by one thread at a time: a
    thread borrows an idle one, or a new one from ``connect`` if all are busy; ``release``
    closes one."""

    def __init__(self, connect: Callable[[], C], release: Callable[[C], object]) -> None:
        self._connect, self._release = connect, release
        self._lock = threading.Lock()  # guards the list only, never held while connecting
        self._idle: list[C] = []
        self._closed = False

    @contextlib.contextmanager
    def borrow(self) -> Iterator[C]:
        """A connection no other thread uses meanwhile."""
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        finally:
            with self._lock:
                kept = not self._closed
                if kept:
                    self._idle.append(connection)
            if not kept:
                self._release(connection)  # closed meanwhile

    def close(self) -> None:
        """Release the idle connections now, the lent ones when returned; borrowing is
        refused from now on."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            self._release(connection)
