"""Where history lives: ``clickhouse_url``, else the server ``phasegate stack up`` started
while it runs, else chdb; the commands say which when it is not the one set."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from clickhouse_driver import Client

from phasegate.stack import free_ports
from phasegate.stack.clickhouse import clickhouse_process, server_binary, server_url, stack_folder
from schemas.settings import Settings
from sinks.store import History, history
from tests.sinks.test_local_readers import phasegate


@pytest.mark.service  # starts a ClickHouse server
@pytest.mark.skipif(server_binary() is None, reason="no clickhouse-server")
def test_the_stack_s_server_holds_history_while_it_runs(tmp_path: Path) -> None:
    settings = Settings(
        clickhouse_url=None,
        state_dir=tmp_path,
        store_path=tmp_path / "store",
        database=f"t{uuid.uuid4().hex[:8]}",
    )
    assert history(settings) == History(None, settings.store_path)
    tcp, http = free_ports(2)
    server = clickhouse_process(stack_folder(settings), "127.0.0.1", tcp, http)
    server.start(timeout=30)
    url = server_url("127.0.0.1", tcp)
    try:
        assert history(settings) == History(url, settings.store_path, from_stack=True)
        explicit = settings.model_copy(update={"clickhouse_url": "clickhouse://h:9000"})
        assert history(explicit) == History(
            "clickhouse://h:9000", settings.store_path
        )  # a setting comes first

        done = phasegate(settings, "sql", "--format", "csv", "SELECT 1 AS one")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "one\n1\n"
        said = f"history: ClickHouse server 127.0.0.1:{tcp} (started by `phasegate stack up`)"
        assert said in done.stderr
        databases = Client.from_url(url).execute("SELECT name FROM system.databases")
        assert (settings.database,) in databases  # migrated on the server, not in chdb
        assert not settings.store_path.exists()
        status = phasegate(settings, "stack", "status", "--no-clickhouse")
        assert said in status.stdout, status.stdout
    finally:
        Client.from_url(url).execute(f"DROP DATABASE IF EXISTS {settings.database}")
        server.stop(timeout=10)
    assert history(settings) == History(None, settings.store_path)  # stopped: back to chdb
