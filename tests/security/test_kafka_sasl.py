"""SASL: every client logs in with the documented settings (SASL PLAIN over TLS, served by
the test's KafkaFront before a real Tansu) and moves events; a wrong password is one line
naming the user, never the password. And what Tansu 0.6 cannot do itself.

Tansu 0.6 offers SCRAM-SHA-256/512 only (PLAIN: "no shared mechanism") and creates users
over an authenticated connection only, so a broker that requires SASL can never get its
first user; a user created on a broker without ``--authentication`` is kept in that
process's memory (not in ``s3://`` storage: after a restart it is an unknown user). No
login can succeed against it: the refused SCRAM logins below use that. TLS cannot be
served by Tansu 0.6 either.
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from pydantic import SecretStr

from phasegate.stack import free_ports
from phasegate.stack.broker import tansu_binary
from schemas.settings import Settings
from tests.security.conftest import HOST, Certs, tansu
from tests.security.front import KafkaFront
from tests.security.test_kafka_tls import (
    emitter_and_sink_move_events,
    error_line,
    refused_delivery,
    run,
    server_store,
    worker_counts_events,
)

PASSWORD = "sasl-Pa55-3b9e1f"

pytestmark = pytest.mark.timeout(120)


def sasl(bootstrap: str, tmp_path: Path, mechanism: str) -> Settings:
    return Settings(
        bootstrap_servers=bootstrap,
        state_dir=tmp_path,
        store_path=tmp_path / "store",
        clickhouse_url=None,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="alice",
        kafka_sasl_password=PASSWORD,
    )


def admin(settings: Settings) -> None:
    KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        bootstrap_timeout_ms=2000,
        request_timeout_ms=2000,
        **settings.kafka_options(),
    ).close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_tansu_lets_no_sasl_login_in(sasl_bootstrap, tmp_path, mechanism):
    tansu_cli = str(tansu_binary())
    create = subprocess.run(
        [tansu_cli, "user", "create", "--broker", f"tcp://{sasl_bootstrap}", "alice", PASSWORD],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert create.returncode != 0  # NotAuthenticated: users need a user first
    with pytest.raises(KafkaError):
        admin(sasl(sasl_bootstrap, tmp_path, mechanism))


def test_tansu_cannot_serve_tls(certs: Certs, tmp_path: Path):
    tansu_cli = str(tansu_binary())
    both = subprocess.run(
        [tansu_cli, "broker", "--cert", str(certs.server), "--key", str(certs.server_key)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert both.returncode != 0 and "cannot be used with" in both.stderr
    combined = tmp_path / "combined.pem"
    combined.write_text(certs.server.read_text() + certs.server_key.read_text())
    (port,) = free_ports(1)
    broker = tansu(tmp_path, port, port, "--cert", str(combined))
    broker.start(timeout=30)
    try:
        context = ssl.create_default_context(cafile=str(certs.ca))
        with socket.create_connection((HOST, port), 5) as raw:
            raw.settimeout(2)
            with pytest.raises((TimeoutError, ssl.SSLError, ConnectionError)):
                context.wrap_socket(raw, server_hostname=HOST)  # plain Kafka, no TLS
    finally:
        broker.stop(timeout=5)


def test_emitter_names_the_refused_login_never_the_password(sasl_bootstrap, tmp_path, caplog):
    messages = refused_delivery(sasl(sasl_bootstrap, tmp_path, "SCRAM-SHA-256"), caplog)
    assert any("SASL SCRAM-SHA-256 login of user 'alice'" in m for m in messages), messages
    assert all(PASSWORD not in m for m in messages)


@pytest.mark.parametrize("command", ["sink", "worker"])
def test_commands_say_in_one_line_that_the_login_was_refused(sasl_bootstrap, tmp_path, command):
    done = run(sasl(sasl_bootstrap, tmp_path, "SCRAM-SHA-512"), command)
    line = error_line(done)
    assert f"the Kafka broker at {sasl_bootstrap} did not accept the SASL SCRAM-SHA-512" in line
    assert "user 'alice'" in line
    assert PASSWORD not in done.stdout + done.stderr


def test_emitter_and_sink_log_in_with_sasl_over_tls(sasl_settings, clickhouse_url, tmp_path):
    with server_store(sasl_settings, clickhouse_url) as settings:
        emitter_and_sink_move_events(settings, tmp_path)


def test_worker_logs_in_with_sasl_over_tls(sasl_settings: Settings, tmp_path: Path):
    worker_counts_events(sasl_settings, tmp_path)


@pytest.mark.parametrize("command", ["sink", "worker"])
def test_a_wrong_password_is_one_line_without_it(
    sasl_settings: Settings, sasl_ssl_front: KafkaFront, command: str
):
    refused = sasl_ssl_front.refused
    wrong = sasl_settings.model_copy(update={"kafka_sasl_password": SecretStr(PASSWORD)})
    done = run(wrong, command)
    line = error_line(done)
    assert "did not accept the SASL PLAIN login of user 'phasegate'" in line
    assert PASSWORD not in done.stdout + done.stderr
    assert sasl_ssl_front.refused > refused  # the front saw the login and refused it


def test_kafka_debug_logs_never_carry_the_password(sasl_settings: Settings, caplog):
    """kafka-python's admin client logs its configuration at DEBUG, password included."""
    password = sasl_settings.kafka_sasl_password.get_secret_value()  # type: ignore[union-attr]
    with caplog.at_level(logging.DEBUG, logger="kafka"):
        admin(sasl_settings)
    assert "'sasl_plain_password': '**********'" in caplog.text
    assert password not in caplog.text
