"""The local ClickHouse server (Debian's 18.16 or newer), run from its own state folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from phasegate.stack.errors import MissingDependency, ServiceUnavailable
from phasegate.stack.process import ManagedProcess, port_open
from schemas.settings import Settings

INSTALL_HINT = (
    "clickhouse-server is not installed: install it with "
    "`apt-get install -y clickhouse-server clickhouse-client` (as root), or set "
    "PHASEGATE_CLICKHOUSE_URL to a server; without one phasegate uses the in-process chdb store"
)
USERS_XML = Path("/etc/clickhouse-server/users.xml")
DEFAULT_TCP_PORT = 9000
DEFAULT_HTTP_PORT = 8123
URL_FILE = "url"
"""In the server's state folder: its URL, for the commands that read and write history."""


def server_binary() -> Path | None:
    """``clickhouse-server`` on PATH or in the usual system folders, or None."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/usr/local/bin"])
    found = shutil.which("clickhouse-server", path=path)
    return Path(found) if found else None


def server_address(settings: Settings) -> tuple[str, int]:
    """Host and native port from ``clickhouse_url``, else 127.0.0.1:9000."""
    if not settings.clickhouse_url:
        return "127.0.0.1", DEFAULT_TCP_PORT
    parts = urlsplit(settings.clickhouse_url)
    return parts.hostname or "127.0.0.1", parts.port or DEFAULT_TCP_PORT


def server_url(host: str, tcp_port: int) -> str:
    return f"clickhouse://default:@{host}:{tcp_port}"


def config_xml(
    folder: Path, host: str, tcp_port: int, http_port: int, users: Path = USERS_XML
) -> str:
    """A server config keeping every file under ``folder``; its users from ``users``."""
    return f"""<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{folder}/logs/clickhouse-server.log</log>
        <errorlog>{folder}/logs/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>{host}</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <path>{folder}/data/</path>
    <tmp_path>{folder}/tmp/</tmp_path>
    <user_files_path>{folder}/user_files/</user_files_path>
    <format_schema_path>{folder}/format_schemas/</format_schema_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>536870912</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mlock_executable>false</mlock_executable>
</yandex>
"""


def probe(host: str, port: int) -> None:
    """Return once ``SELECT 1`` answers over the native protocol; raise otherwise."""
    from clickhouse_driver import Client

    if not port_open(host, port):  # fail quietly: the driver logs a traceback per refusal
        raise ServiceUnavailable(f"nothing listens at {host}:{port}")
    client = Client(host, port=port, connect_timeout=1, send_receive_timeout=3)
    try:
        client.execute("SELECT 1")
    finally:
        client.disconnect()


def clickhouse_process(
    folder: Path,
    host: str = "127.0.0.1",
    tcp_port: int = DEFAULT_TCP_PORT,
    http_port: int = DEFAULT_HTTP_PORT,
    users: Path = USERS_XML,
) -> ManagedProcess:
    """clickhouse-server with its config, data and logs under ``folder``; users from ``users``
    (the probe connects as ``default`` without a password)."""
    folder = folder.absolute()
    config = folder / "config.xml"
    binary = server_binary()

    def prepare() -> None:
        if binary is None:
            raise MissingDependency(INSTALL_HINT)
        config.write_text(config_xml(folder, host, tcp_port, http_port, users))
        (folder / URL_FILE).write_text(server_url(host, tcp_port) + "\n")

    return ManagedProcess(
        name="clickhouse",
        argv=[str(binary or "clickhouse-server"), f"--config-file={config}"],
        folder=folder,
        host=host,
        ports=[tcp_port, http_port],
        probe=lambda: probe(host, tcp_port),
        prepare=prepare,
    )


def stack_folder(settings: Settings) -> Path:
    """Where ``phasegate stack up`` keeps its ClickHouse server."""
    return settings.state_dir / "stack" / "clickhouse"


def stack_server_url(settings: Settings) -> str | None:
    """The URL of the ClickHouse server ``phasegate stack up`` started, while it runs."""
    folder = stack_folder(settings)
    if clickhouse_process(folder).pid() is None:
        return None
    try:
        return (folder / URL_FILE).read_text().strip() or None
    except OSError:
        return None
