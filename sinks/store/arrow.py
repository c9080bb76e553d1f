"""chdb's side of the store: statements as SQL text, results as Arrow streams.

Shared by the store that holds a chdb folder (``local.LocalStore``) and the one that
reads through the process holding it (``endpoint.Reader``): both only differ in how a
statement reaches the folder (``_run``).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from datetime import UTC, datetime
from typing import Any

from sinks.store.base import Params, Rows, Store, StoreError, substitute

_DATETIME = re.compile(r"^(Nullable\()?DateTime(\(|\)|$)")


class ArrowStore(Store):
    """A chdb store; ``_run`` sends a statement and returns its result as an Arrow stream."""

    shared = False

    @abstractmethod
    def _run(self, sql: str) -> bytes:
        """The statement's result in ClickHouse's ``ArrowStream`` format (empty for none)."""

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._run(substitute(sql, params))

    def _table(self, sql: str) -> Any:
        import pyarrow as pa

        data = self._run(sql)
        return pa.ipc.open_stream(data).read_all() if data else pa.table({})

    def query(self, sql: str, params: Params | None = None) -> Rows:
        sql = substitute(sql, params)
        table = self._table(sql)
        columns = [c.to_pylist() for c in table.columns]
        for i in self._datetime_columns(sql, table):
            columns[i] = [None if v is None else datetime.fromtimestamp(v, UTC) for v in columns[i]]
        return Rows(list(table.column_names), list(zip(*columns, strict=True)))

    def _datetime_columns(self, sql: str, table: Any) -> list[int]:
        """Columns of type DateTime, which Arrow carries as bare uint32 seconds (none
        known for a statement that is not a SELECT)."""
        import pyarrow as pa

        if not any(pa.types.is_uint32(field.type) for field in table.schema):
            return []
        try:
            types = self._table(f"DESCRIBE TABLE ({sql})").column("type").to_pylist()
        except StoreError:
            return []
        return [i for i, t in enumerate(types) if _DATETIME.match(t)]
