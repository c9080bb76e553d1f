"""The local stack as a list of services, each managed here or external."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from phasegate.stack import broker, clickhouse, s3
from phasegate.stack.process import ManagedProcess, Probe
from schemas.settings import Settings


def is_local(host: str) -> bool:
    """Whether ``host`` is this machine's loopback (a service ``stack up`` may start)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


EXTERNAL = "external: not started or stopped here"


@dataclass(frozen=True)
class Service:
    """One service: ``process`` when the stack manages it, else ``note`` says why not.

    ``required``: phasegate cannot work without it (ClickHouse is optional while
    ``clickhouse_url`` is unset: the chdb store is used).
    """

    name: str
    address: str
    probe: Probe
    process: ManagedProcess | None = None
    note: str = ""
    required: bool = True

    def answers(self) -> bool:
        try:
            self.probe()
        except Exception:
            return False
        return True


def local_services(
    settings: Settings,
    with_clickhouse: bool = True,
    clickhouse_http_port: int = clickhouse.DEFAULT_HTTP_PORT,
) -> list[Service]:
    """The broker and (optionally) the ClickHouse server the settings point at."""
    host, port = broker.broker_address(settings)
    bootstrap = f"{host}:{port}"
    managed = broker.broker_process(settings) if is_local(host) else None
    services = []
    if managed is not None and s3.is_durable(settings):
        s3_host, s3_port = s3.endpoint(settings)
        s3_managed = s3.s3_process(settings) if is_local(s3_host) else None
        services.append(
            Service(
                "s3",
                f"{s3_host}:{s3_port}",
                lambda: s3.probe(settings.s3_endpoint),
                s3_managed,
                "" if s3_managed else EXTERNAL,
            )
        )
    services.append(
        Service(
            "broker",
            bootstrap,
            lambda: broker.probe(bootstrap),
            managed,
            "" if managed else EXTERNAL,
        )
    )
    if not with_clickhouse:
        return services
    host, port = clickhouse.server_address(settings)
    address = f"{host}:{port}"
    required = settings.clickhouse_url is not None

    def probe() -> None:
        clickhouse.probe(host, port)

    if not is_local(host):
        services.append(Service("clickhouse", address, probe, None, EXTERNAL, required))
    elif clickhouse.server_binary() is None:
        services.append(
            Service("clickhouse", address, probe, None, clickhouse.INSTALL_HINT, required)
        )
    else:
        folder = clickhouse.stack_folder(settings)
        process = clickhouse.clickhouse_process(folder, host, port, clickhouse_http_port)
        services.append(Service("clickhouse", address, probe, process, "", required))
    return services
