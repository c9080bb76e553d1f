"""Where history lives, in this order: the ClickHouse server at ``clickhouse_url``; else
the server ``phasegate stack up`` started, while it runs; else chdb in-process at
``store_path`` (zero setup), read through the process holding it while one does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.settings import Settings
from sinks.store.base import Rows, Store, StoreError, StoreUnavailable


@dataclass(frozen=True)
class History:
    """Where the settings put history: a server ``url``, else chdb at ``path``."""

    url: str | None
    path: Path
    from_stack: bool = False

    def __str__(self) -> str:
        if self.from_stack:
            return f"ClickHouse server {_address(self.url)} (started by `phasegate stack up`)"
        if self.url:
            return f"ClickHouse server {_address(self.url)}"
        return f"chdb at {self.path}"


def _address(url: str | None) -> str:
    from sinks.store.server import address

    return address(url or "")


def history(settings: Settings) -> History:
    """``clickhouse_url`` if set, else the running stack's server, else chdb."""
    if settings.clickhouse_url:
        return History(settings.clickhouse_url, settings.store_path)
    from phasegate.stack.clickhouse import stack_server_url

    url = stack_server_url(settings)
    return History(url, settings.store_path, from_stack=url is not None)


def open_store(settings: Settings, reading: bool = False) -> Store:
    """The store ``history`` names. On chdb, a command that only reads (``reading``) goes
    through the process holding the folder, if one does (``phasegate sink``)."""
    url = history(settings).url
    if url:
        from sinks.store.server import ServerStore

        return ServerStore(url)
    from sinks.store.local import open_local

    return open_local(settings.store_path, reading)


__all__ = ["History", "Rows", "Store", "StoreError", "StoreUnavailable", "history", "open_store"]
