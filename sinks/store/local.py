"""The store in-process: chdb (ClickHouse as a library) on a data folder, zero setup."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sinks.store.base import (
    Params,
    Rows,
    Store,
    StoreError,
    StoreUnavailable,
    row_count,
    substitute,
)

_DATETIME = re.compile(r"^(Nullable\()?DateTime(\(|\)|$)")
# A replay of a long history touches one partition per month: no cap (default 100).
_INSERT_SETTINGS = "SETTINGS max_partitions_per_insert_block = 0"


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
    except Exception as exc:
        raise StoreUnavailable(
            f"cannot open the local store at {path}: {exc}. One process at a time may use "
            "a data folder (is `phasegate sink` running?): stop it, or set "
            "PHASEGATE_STORE_PATH to another folder."
        ) from None


def _arrow_column(values: Sequence) -> Any:
    """An arrow array ClickHouse casts to the column's type.

    UUIDs go as strings; a column of only NULLs or only empty lists, whose element type
    pyarrow cannot infer, goes as strings too.
    """
    import pyarrow as pa

    array = pa.array([str(v) if isinstance(v, UUID) else v for v in values])
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    if pa.types.is_list(array.type) and pa.types.is_null(array.type.value_type):
        return array.cast(pa.list_(pa.string()))
    return array


class LocalStore(Store):
    """chdb session on ``path``; one process per folder, one folder per process."""

    shared = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._session = _session(self.path)
        self._lock = threading.Lock()  # one statement at a time (a sink's insert thread)

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        if self._session is None:
            raise StoreError("the local store is closed")
        try:
            with self._lock:
                return self._session.query(sql, fmt)
        except Exception as exc:
            raise StoreError(str(exc).strip()) from None

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._run(substitute(sql, params))

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        import pyarrow as pa

        count = row_count(columns)
        if count:
            batch = pa.table({name: _arrow_column(v) for name, v in columns.items()})  # noqa: F841
            names = ", ".join(columns)
            self._run(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(batch) "
                + _INSERT_SETTINGS
            )
        return count

    def query(self, sql: str, params: Params | None = None) -> Rows:
        sql = substitute(sql, params)
        table = self._run(sql, "ArrowTable")
        columns = [c.to_pylist() for c in table.columns]
        for i in self._datetime_columns(sql, table):
            columns[i] = [None if v is None else datetime.fromtimestamp(v, UTC) for v in columns[i]]
        return Rows(list(table.column_names), list(zip(*columns, strict=True)))

    def _datetime_columns(self, sql: str, table: Any) -> list[int]:
        """Columns of type DateTime, which Arrow carries as bare uint32 seconds."""
        import pyarrow as pa

        if not any(pa.types.is_uint32(field.type) for field in table.schema):
            return []
        types = self._run(f"DESCRIBE TABLE ({sql})", "ArrowTable").column("type").to_pylist()
        return [i for i, t in enumerate(types) if _DATETIME.match(t)]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
