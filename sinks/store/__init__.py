"""Where history lives: a ClickHouse server, or chdb in-process when none is configured."""

from __future__ import annotations

from schemas.settings import Settings
from sinks.store.base import Rows, Store, StoreError, StoreUnavailable


def open_store(settings: Settings) -> Store:
    """The server at ``settings.clickhouse_url`` if set, else chdb at ``settings.store_path``."""
    if settings.clickhouse_url:
        from sinks.store.server import ServerStore

        return ServerStore(settings.clickhouse_url)
    from sinks.store.local import LocalStore

    return LocalStore(settings.store_path)


__all__ = ["Rows", "Store", "StoreError", "StoreUnavailable", "open_store"]
