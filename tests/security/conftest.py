"""Kafka over TLS and SASL against a real Tansu broker, with certificates made in the test.

Tansu 0.6 cannot serve TLS itself (``--cert`` and ``--key`` exclude each other and neither
alone makes the listener speak TLS: ``test_tansu_limits``), so TLS is terminated in front
of it by :class:`TlsProxy`, as a load balancer or stunnel would: Tansu listens on one port
and advertises the proxy's, so every connection a client makes (bootstrap and the broker
it is told about) goes through TLS, verified against the test's own CA, with a client
certificate required (mutual TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
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

HOST = "127.0.0.1"


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


class TlsProxy:
    """TLS at ``port``, plain TCP to ``target``: one thread running an asyncio server."""

    def __init__(self, port: int, target: int, context: ssl.SSLContext) -> None:
        self.port, self.target, self.context = port, target, context
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None

    def start(self) -> TlsProxy:
        self.thread.start()
        serve = asyncio.start_server(self._handle, HOST, self.port, ssl=self.context)
        self.server = asyncio.run_coroutine_threadsafe(serve, self.loop).result(10)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.server.wait_closed(), 2)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


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


@pytest.fixture(scope="session")
def tls_bootstrap(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a TLS-only Kafka endpoint (mutual TLS) in front of a real Tansu."""
    listen, public = free_ports(2)
    broker = tansu(tmp_path_factory.mktemp("tls-broker"), listen, public)
    broker.start(timeout=30)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.ca))
    context.load_cert_chain(str(certs.server), str(certs.server_key))
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no entry
    proxy = TlsProxy(public, listen, context).start()
    yield f"{HOST}:{public}"
    proxy.stop()
    broker.stop(timeout=5)


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
