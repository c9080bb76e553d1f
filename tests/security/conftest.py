"""Kafka over TLS and SASL against a real Tansu broker, with certificates made in the test.

Tansu 0.6 can neither serve TLS nor let any SASL login in (tests/security/test_kafka_sasl.py
shows both), so :class:`~tests.security.front.KafkaFront` does it in front of a real Tansu,
as stunnel or a load balancer would: Tansu listens on one port and advertises the front's,
so every connection a client makes (bootstrap and the broker it is told about) goes through
TLS, verified against the test's own CA with a client certificate required (mutual TLS),
or through a SASL PLAIN login (``SASL_SSL``).
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from phasegate.stack import ManagedProcess, ensure_topics, free_ports
from phasegate.stack.broker import tansu_binary
from phasegate.stack.errors import MissingDependency, ServiceUnavailable
from phasegate.stack.process import port_open
from schemas.settings import Settings
from tests.security.front import KafkaFront

HOST = "127.0.0.1"
LOGIN = ("phasegate", "sasl-R1ght-5e7c0a")


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA clients trust
    server: Path  # server certificate (for 127.0.0.1), signed by the CA
    server_key: Path
    client: Path  # client certificate, signed by the CA
    client_key: Path
    other_ca: Path  # a CA nobody signed with: a client trusting only it must refuse


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    )
    return cert, key


def _signed(folder: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    extfile = folder / f"{name}.ext"
    extfile.write_text(ext)
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca[0]),
        "-CAkey",
        str(ca[1]),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(extfile),
        "-out",
        str(cert),
    )
    return cert, key


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    ca = _ca(folder, "test-ca")
    server = _signed(folder, "server", ca, f"subjectAltName=IP:{HOST},DNS:localhost\n")
    client = _signed(folder, "client", ca, "extendedKeyUsage=clientAuth\n")
    return Certs(ca[0], *server, *client, _ca(folder, "other-ca")[0])


def tansu(folder: Path, listen: int, advertise: int, *extra: str) -> ManagedProcess:
    """Tansu (in memory) listening at ``listen``, telling clients to use ``advertise``."""
    try:
        binary = str(tansu_binary())
    except MissingDependency as exc:
        pytest.skip(str(exc))
    return ManagedProcess(
        name="broker",
        argv=[
            binary,
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{listen}",
            "--advertised-listener-url",
            f"tcp://{HOST}:{advertise}",
            "--storage-engine",
            "memory://tansu/",
            *extra,
        ],
        folder=folder,
        host=HOST,
        ports=[listen],
        probe=lambda: _listening(listen),
    )


def _listening(port: int) -> None:
    if not port_open(HOST, port):
        raise ServiceUnavailable(f"nothing listens at {HOST}:{port}")


def server_context(certs: Certs) -> ssl.SSLContext:
    """The broker side of mutual TLS: its certificate; clients must show one of the CA's."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.ca))
    context.load_cert_chain(str(certs.server), str(certs.server_key))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@contextlib.contextmanager
def fronted(
    folder: Path, context: ssl.SSLContext | None, login: tuple[str, str] | None
) -> Iterator[KafkaFront]:
    """A real Tansu behind a :class:`KafkaFront` (TLS and/or SASL PLAIN)."""
    listen, public = free_ports(2)
    broker = tansu(folder, listen, public)
    broker.start(timeout=30)
    front = KafkaFront(HOST, public, listen, context, login).start()
    try:
        yield front
    finally:
        front.stop()
        broker.stop(timeout=5)


@pytest.fixture(scope="session")
def tls_bootstrap(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a TLS-only Kafka endpoint (mutual TLS) in front of a real Tansu."""
    with fronted(tmp_path_factory.mktemp("tls"), server_context(certs), None) as front:
        yield f"{HOST}:{front.port}"


@pytest.fixture(scope="session")
def sasl_ssl_front(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaFront]:
    """SASL PLAIN over TLS (``SASL_SSL``) in front of a real Tansu; the login is LOGIN."""
    context = server_context(certs)
    context.verify_mode = ssl.CERT_NONE  # the login is the client's credential here
    with fronted(tmp_path_factory.mktemp("sasl-ssl"), context, LOGIN) as front:
        yield front


@pytest.fixture
def tls_settings(tls_bootstrap: str, certs: Certs, tmp_path: Path) -> Settings:
    """Settings for one test over TLS (chdb store), its topics created over TLS."""
    uid = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap_servers=tls_bootstrap,
        topic_prefix=f"tls{uid}.",
        database=f"tls{uid}",
        clickhouse_url=None,
        store_path=tmp_path / "store",
        state_dir=tmp_path,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=certs.ca,
        kafka_ssl_certfile=certs.client,
        kafka_ssl_keyfile=certs.client_key,
    )
    ensure_topics(settings)
    return settings


@pytest.fixture(scope="session")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real Tansu that requires SASL (``--authentication``)."""
    (port,) = free_ports(1)
    broker = tansu(tmp_path_factory.mktemp("sasl-broker"), port, port, "--authentication")
    broker.start(timeout=30)
    yield f"{HOST}:{port}"
    broker.stop(timeout=5)


@pytest.fixture
def sasl_settings(sasl_ssl_front: KafkaFront, certs: Certs, tmp_path: Path) -> Settings:
    """Settings for one test logging in with SASL PLAIN over TLS, its topics created."""
    uid = uuid.uuid4().hex[:8]
    settings = Settings(
        bootstrap_servers=f"{HOST}:{sasl_ssl_front.port}",
        topic_prefix=f"sasl{uid}.",
        database=f"sasl{uid}",
        clickhouse_url=None,
        store_path=tmp_path / "store",
        state_dir=tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username=LOGIN[0],
        kafka_sasl_password=LOGIN[1],
        kafka_ssl_cafile=certs.ca,
    )
    ensure_topics(settings)
    return settings
