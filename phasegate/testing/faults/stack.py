"""The stack the fault scenarios run on: a Tansu broker and a ClickHouse 18.16 server.

Durable (Tansu on ``s3://`` at the stack's local s3rver with conditional writes, so a
restart keeps the log) or in memory, on free ports; a service may be stopped, restarted or
frozen while a scenario runs.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from phasegate.stack import ManagedProcess, free_port, free_ports
from phasegate.stack.clickhouse import server_url
from phasegate.stack.services import local_services
from schemas.settings import Settings

LOCAL = "127.0.0.1"


def freeze(pids: list[int], seconds: float) -> None:
    """Stop the processes ``pids`` (SIGSTOP) for ``seconds``, then let them run on."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


class Stack:
    """A Tansu broker (``durable``: on s3rver) and a ClickHouse server under ``root``."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        tcp, http = free_ports(2)
        self.durable = durable
        self.settings = Settings(
            bootstrap_servers=f"{LOCAL}:{free_port()}",
            broker_storage="s3://tansu/" if durable else "memory://tansu/",
            s3_endpoint=f"http://{LOCAL}:{free_port()}",
            clickhouse_url=server_url(LOCAL, tcp),
            state_dir=root,
        )
        services = local_services(self.settings, True, http)
        self.processes: dict[str, ManagedProcess] = {
            s.name: s.process for s in services if s.process is not None
        }
        expected = ["s3", "broker", "clickhouse"] if durable else ["broker", "clickhouse"]
        assert list(self.processes) == expected, services

    def start(self) -> Stack:
        for process in self.processes.values():
            process.start(timeout=120)  # the first start installs s3rver with npm
        return self

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            process.stop(timeout=10)

    def bounce(self, name: str, down_s: float) -> float:
        """Stop ``name``, wait ``down_s``, start it again; return when it answered."""
        process = self.processes[name]
        process.stop(timeout=10)
        time.sleep(down_s)
        process.start(timeout=60)
        return time.monotonic()

    def hang(self, name: str, hang_s: float) -> float:
        """Freeze ``name`` (connections stay open, nothing answers) for ``hang_s``, then let
        it run on; return when it runs again."""
        pid = self.processes[name].pid()
        assert pid is not None, f"{name} is not running"
        freeze([pid], hang_s)
        return time.monotonic()

    def pids(self) -> dict[str, int | None]:
        return {name: p.pid() for name, p in self.processes.items()}
