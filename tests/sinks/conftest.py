"""Store fixtures: the same tests run on a ClickHouse 18.16 server and on chdb."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import ErrorInfo, Result
from sinks.store import Store

BACKENDS = ["server", "chdb"]


@contextmanager
def _opened(request: pytest.FixtureRequest, folder: Path) -> Iterator[Store]:
    """The store on ``request.param``'s backend (the server skips where none is installed)."""
    if request.param == "server":
        from sinks.store.server import ServerStore

        opened: Store = ServerStore(request.getfixturevalue("clickhouse_url"))
    else:
        pytest.importorskip("chdb")
        from sinks.store.local import LocalStore

        opened = LocalStore(folder)
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def fresh_database(store: Store) -> Iterator[str]:
    """A fresh database name on ``store``, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        store.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    """An open store on each backend (the server fixture skips where none is installed)."""
    with _opened(request, tmp_path / "chdb") as opened:
        yield opened


@pytest.fixture
def database(store: Store) -> Iterator[str]:
    """A fresh database name on ``store``, dropped afterwards."""
    with fresh_database(store) as name:
        yield name


@pytest.fixture(scope="module", params=BACKENDS)
def shared_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """``store``, once per test module and backend: for a module whose tests only read
    what it loads once. Use it in every test of that module (chdb opens one folder per
    process), with ``shared_database``."""
    with _opened(request, tmp_path_factory.mktemp("chdb")) as opened:
        yield opened


@pytest.fixture(scope="module")
def shared_database(shared_store: Store) -> Iterator[str]:
    """A fresh database on ``shared_store`` for the module, dropped after it."""
    with fresh_database(shared_store) as name:
        yield name


T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_result(i: int, system: str = "production", rollout: str = "kai", **fields) -> Result:
    """A deterministic result: every 7th fails with an error, every 21st critically."""
    failed = i % 7 == 0
    values = {
        "rollout": rollout,
        "system": system,
        "ts": T0 + timedelta(seconds=i),
        "query_id": f"q{i}",
        "unit_id": f"u{i % 13}",
        "success": not failed,
        "confidence": (i % 10) / 10,
        "latency_ms": float(10 + (i * 37) % 500),
        "error": ErrorInfo(type="timeout", message="slow", critical=i % 21 == 0)
        if failed
        else None,
        "rules": ["r1", "r2"][: i % 3],
        "fallback": failed and system == "pipeline",
        "weight": 50,
    }
    return Result(**(values | fields))


def point_cli_at(store: Store, database: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Make ``phasegate`` commands in this process use ``store`` and ``database``."""
    from sinks.store.server import ServerStore

    if isinstance(store, ServerStore):
        monkeypatch.setenv("PHASEGATE_CLICKHOUSE_URL", store.url)
    else:  # the command opens the same chdb folder (allowed within one process)
        monkeypatch.setenv("PHASEGATE_STORE_PATH", str(store.path))  # type: ignore[attr-defined]
        monkeypatch.delenv("PHASEGATE_CLICKHOUSE_URL", raising=False)
    monkeypatch.setenv("PHASEGATE_DATABASE", database)
    monkeypatch.setenv("PHASEGATE_CONFIG", str(tmp_path / "none.toml"))
