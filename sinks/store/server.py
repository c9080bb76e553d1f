"""The store on a ClickHouse server, over the native protocol (clickhouse-driver)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clickhouse_driver import Client, errors

from sinks.store.base import (
    Params,
    Pool,
    Rows,
    Store,
    StoreError,
    StoreUnavailable,
    row_count,
    utc_params,
)

_DEFAULTS = {"connect_timeout": "3", "send_receive_timeout": "30"}
_NETWORK = (errors.NetworkError, errors.SocketTimeoutError, EOFError, OSError)
# UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD (18.16); AUTHENTICATION_FAILED (newer)
_REFUSED = {192: "unknown user", 193: "wrong password", 194: "password required", 516: ""}
# A replay of a long history touches a partition per month; a current server refuses more
# than 100 per insert by default (18.16 has no such limit, nor the setting).
_CAP = "max_partitions_per_insert_block"


_TIME = re.compile(r"^(?:Nullable\()?DateTime(?:64\((\d+))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _wire(values: Sequence, kind: str) -> list:
    """A column as the driver writes it fastest: aware datetimes as the integers a
    ``DateTime`` (seconds) or ``DateTime64(s)`` (ticks) column holds, as the driver computes
    them for times since 1970 (it would go through pytz row by row): the ticks since the
    epoch, rounded down, in one C operation a row."""
    time = _TIME.match(kind)
    if not time:
        return list(values)
    first = next((v for v in values if v is not None), None)
    if not isinstance(first, datetime) or first.tzinfo is None:
        return list(values)
    tick = timedelta(microseconds=10 ** (6 - int(time.group(1) or 0)))
    if None in values:
        return [v if v is None else (v - _EPOCH) // tick for v in values]
    if tick == _SECOND:  # the float's whole seconds: a little faster
        return list(map(int, map(datetime.timestamp, values)))
    return [(v - _EPOCH) // tick for v in values]


def _with_defaults(url: str) -> str:
    parts = urlsplit(url)
    query = dict(_DEFAULTS) | dict(parse_qsl(parts.query))
    return urlunsplit(parts._replace(query=urlencode(query)))


def address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 9000}"


def _message(exc: errors.Error) -> str:
    """The server's message without the stack trace 18.16 appends to every error."""
    return str(exc).split(" Stack trace:", 1)[0].strip()


def _refused(url: str, exc: errors.ServerException) -> StoreUnavailable:
    """One line naming the server and the user, never the password."""
    user = urlsplit(url).username or "default"
    reason = _REFUSED[exc.code] or "wrong password or unknown user"
    return StoreUnavailable(
        f"ClickHouse at {address(url)} refused user {user}: {reason} (code {exc.code}). Fix the "
        "user and password in PHASEGATE_CLICKHOUSE_URL."
    )


class ServerStore(Store):
    """ClickHouse server at ``url`` (``clickhouse://user:password@host:port``)."""

    inserts_at_once = 2
    """A client a thread (clickhouse-driver's is not thread-safe): two sink inserts
    overlap the driver's serializing with the server's work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._uncapped: dict[str, int] | None = None  # insert settings, once asked
        self._kinds: dict[str, dict[str, str]] = {}
        self._clients = Pool(lambda: Client.from_url(_with_defaults(url)), Client.disconnect)

    def _run(self, client: Client, sql: str, *args: object, **kwargs: object) -> object:
        if sql.startswith("INSERT") and self._uncapped is None:
            known = self._run(
                client, "SELECT count() FROM system.settings WHERE name = %(n)s", {"n": _CAP}
            )
            self._uncapped = {_CAP: 0} if known[0][0] else {}  # type: ignore[index]
        if sql.startswith("INSERT") and self._uncapped:
            kwargs["settings"] = self._uncapped
        try:
            return client.execute(sql, *args, **kwargs)
        except _NETWORK as exc:
            client.disconnect()
            raise StoreUnavailable(
                f"ClickHouse server at {address(self.url)} is not reachable ({exc}). Start it "
                "(`phasegate stack up`), fix PHASEGATE_CLICKHOUSE_URL, or unset it to use "
                "the local chdb store."
            ) from None
        except errors.ServerException as exc:
            if exc.code in _REFUSED:
                client.disconnect()
                raise _refused(self.url, exc) from None
            raise StoreError(_message(exc)) from None
        except errors.Error as exc:
            raise StoreError(_message(exc)) from None

    def execute(self, sql: str, params: Params | None = None) -> None:
        with self._clients.borrow() as client:
            self._run(client, sql, utc_params(params))

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        count = row_count(columns)
        if count:
            names = ", ".join(columns)
            with self._clients.borrow() as client:
                kinds = self._column_types(client, table)
                data = [_wire(values, kinds.get(name, "")) for name, values in columns.items()]
                self._run(client, f"INSERT INTO {table} ({names}) VALUES", data, columnar=True)
        return count

    def _column_types(self, client: Client, table: str) -> dict[str, str]:
        """``table``'s column types, asked once."""
        if table not in self._kinds:
            described = self._run(client, f"DESCRIBE TABLE {table}")
            self._kinds[table] = {row[0]: row[1] for row in described}  # type: ignore[attr-defined]
        return self._kinds[table]

    def query(self, sql: str, params: Params | None = None) -> Rows:
        with self._clients.borrow() as client:
            rows, types = self._run(client, sql, utc_params(params), with_column_types=True)
        return Rows([name for name, _ in types], [tuple(r) for r in rows])

    def close(self) -> None:
        self._clients.close()
