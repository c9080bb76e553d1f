"""Every Kafka client over TLS with a client certificate (mutual TLS), configured with the
documented settings only: the Emitter, the sink (kafka-python) and the worker (aiokafka
through Faust's ``broker_credentials``) move events through the TLS endpoint; a broker
certificate the client does not trust is one clear error line."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phasegate.testing.processes import SinkProcess, WorkerProcess, wait_for
from producers.emitter import Emitter
from schemas.events import Result
from schemas.settings import Settings
from sinks.store.server import ServerStore
from tests.security.conftest import Certs
from tests.streams.test_worker import counted, emit, simulate

pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def server_store(settings: Settings, clickhouse_url: str) -> Iterator[Settings]:
    """``settings`` with the session's ClickHouse server; its database dropped after."""
    with_url = settings.model_copy(update={"clickhouse_url": clickhouse_url})
    yield with_url
    store = ServerStore(clickhouse_url)
    store.execute(f"DROP DATABASE IF EXISTS {with_url.database}")
    store.close()


@pytest.fixture
def with_server(tls_settings: Settings, clickhouse_url: str) -> Iterator[Settings]:
    with server_store(tls_settings, clickhouse_url) as settings:
        yield settings


def test_emitter_and_sink_move_events_over_mutual_tls(with_server: Settings, tmp_path: Path):
    emitter_and_sink_move_events(with_server, tmp_path)


def emitter_and_sink_move_events(with_server: Settings, tmp_path: Path) -> None:
    """The Emitter sends, a ``phasegate sink`` stores every event (ClickHouse server)."""
    results = [r for r in simulate(300, seed=7) if isinstance(r, Result)]
    emit(with_server, results)
    sink = SinkProcess(with_server, tmp_path / "sink.log").start()
    store = ServerStore(with_server.clickhouse_url or "")
    try:
        table = f"{with_server.database}.results"
        count = f"SELECT count() FROM {table}"
        wait_for(lambda: store.query(count).scalar() == len(results), "rows over TLS", 90, sink)
        ids = {r.event_id for r in results}
        assert {i for (i,) in store.query(f"SELECT event_id FROM {table}")} == ids
    finally:
        sink.stop()
        store.close()


def test_worker_counts_events_over_mutual_tls(tls_settings: Settings, tmp_path: Path):
    worker_counts_events(tls_settings, tmp_path)


def worker_counts_events(settings: Settings, tmp_path: Path) -> None:
    """A ``phasegate worker`` (aiokafka through Faust) counts every emitted result."""
    settings = settings.model_copy(update={"window_seconds": 3600, "flush_seconds": 0.5})
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_assigned(90)
        results = simulate(400, seed=8)
        emit(settings, results)
        worker.wait(counted(results), 90)
    finally:
        worker.stop()


def refused_delivery(settings: Settings, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Emit one event to a broker that refuses us; the Emitter's log (it never raises)."""
    emitter = Emitter(settings, error_after_s=0.5)

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.startswith("producers")]

    try:
        assert emitter.emit(simulate(1, seed=9)[0])
        deadline = time.monotonic() + 15
        while not any("delivery failing" in m for m in logged()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert emitter.stats().sent == 0
    finally:
        emitter.close(timeout=0.5)
    return logged()


def untrusting(settings: Settings, certs: Certs) -> Settings:
    """The same client, trusting only a CA that did not sign the broker's certificate."""
    return settings.model_copy(update={"kafka_ssl_cafile": certs.other_ca})


def test_emitter_reports_an_untrusted_broker_and_never_raises(tls_settings, certs, caplog):
    errors = refused_delivery(untrusting(tls_settings, certs), caplog)
    assert any("event delivery failing" in m and "certificate" in m for m in errors), errors


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``phasegate ARGS`` with ``settings`` only (a wide terminal: one message, one line)."""
    return subprocess.run(
        [sys.executable, "-m", "phasegate.cli", *args],
        env={"PATH": "/usr/bin:/bin", "PHASEGATE_CONFIG": "/no.toml", "COLUMNS": "300"}
        | settings.to_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line saying what failed (the sink's banner before it aside); no traceback."""
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip() and "Ctrl-C" not in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("command", ["sink", "worker"])
def test_commands_say_in_one_line_that_the_broker_is_not_trusted(tls_settings, certs, command):
    line = error_line(run(untrusting(tls_settings, certs), command))
    assert f"TLS with the Kafka broker at {tls_settings.bootstrap_servers} failed" in line
    assert "certificate verify failed" in line or "self-signed" in line or "issuer" in line, line
    assert "PHASEGATE_KAFKA_SSL_CAFILE" in line


@pytest.mark.parametrize("command", ["sink", "worker"])
def test_commands_say_in_one_line_that_the_client_certificate_is_missing(tls_settings, command):
    settings = tls_settings.model_copy(
        update={"kafka_ssl_certfile": None, "kafka_ssl_keyfile": None}
    )
    line = error_line(run(settings, command))
    assert tls_settings.bootstrap_servers in line and "PHASEGATE_KAFKA_SSL_CERTFILE" in line
