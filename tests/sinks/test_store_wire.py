"""The server store writes aware datetimes as integers, exactly as the driver would, and
one store may be used from several threads (a sink's insert thread and its owner)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from clickhouse_driver.columns.datetimecolumn import create_datetime_column

from sinks import rows
from sinks.migrations import migrate
from sinks.store import Store
from sinks.store.server import _wire
from tests.sinks.conftest import make_result

STAMPS = [
    datetime(2024, 5, 1, 12, 0, 1, 999_999, tzinfo=UTC),
    datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),
    None,
    datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
]


def driver_column(spec: str):
    """The driver's own column for ``spec`` (a server in UTC)."""
    utc = SimpleNamespace(get_timezone=lambda: "UTC")
    context = SimpleNamespace(client_settings={}, settings={}, server_info=utc)
    return create_datetime_column(spec, {"context": context})


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("DateTime('UTC')", "DateTime('UTC')"),
        ("Nullable(DateTime)", "DateTime"),
        ("DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')"),
        ("Nullable(DateTime64(6))", "DateTime64(6)"),
    ],
)
def test_datetimes_become_the_integers_the_driver_writes(kind: str, spec: str) -> None:
    driver = list(STAMPS)
    driver_column(spec).before_write_items(driver, nulls_map=[v is None for v in STAMPS])
    mine = _wire(STAMPS, kind)
    assert [m for m in mine if m is not None] == [d for d, s in zip(driver, STAMPS, strict=True)
                                                  if s is not None]  # fmt: skip
    assert mine[2] is None and all(isinstance(m, int) for m in mine if m is not None)


def test_other_columns_and_naive_datetimes_are_left_to_the_driver() -> None:
    naive = [datetime(2024, 5, 1), None]
    assert _wire(naive, "DateTime") == naive
    assert _wire(["a", None], "String") == ["a", None]
    assert _wire(STAMPS, "String") == STAMPS


def test_one_store_serves_several_threads(store: Store, database: str) -> None:
    migrate(store, database)
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(4):
                batch = [make_result(offset * 1000 + i * 10 + k) for k in range(10)]
                store.insert(f"{database}.results", rows.result_columns(batch))
                assert store.query("SELECT 1").scalar() == 1
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert store.query(f"SELECT count() FROM {database}.results").scalar() == 120
    stamps = store.query(f"SELECT min(ts) FROM {database}.results").scalar()
    assert stamps == make_result(0).ts
