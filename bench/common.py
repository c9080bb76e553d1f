"""Shared pieces of the benchmarks: a private Tansu broker, topics, a results table."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from phasegate.stack import ensure_topics, free_port
from phasegate.stack.broker import broker_process
from schemas.settings import Settings

__all__ = [
    "PeakMemory",
    "create_topics",
    "free_port",
    "median",
    "print_table",
    "proc_status_kb",
    "process_cpu",
    "tansu",
]


@contextmanager
def tansu() -> Iterator[str]:
    """A memory-backed Tansu broker on a free loopback port, for one benchmark run."""
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(
            bootstrap_servers=f"127.0.0.1:{free_port()}",
            broker_storage="memory://tansu/",
            state_dir=Path(state),
        )
        proc = broker_process(settings)
        proc.start(timeout=30)
        try:
            yield f"127.0.0.1:{proc.ports[0]}"
        finally:
            proc.stop()


def create_topics(settings: Settings) -> None:
    ensure_topics(settings)


class PeakMemory:
    """The growth of this process's peak resident memory since it was made, in MB (Linux:
    the kernel's high-water mark, ``VmHWM``, reset through ``/proc/self/clear_refs``)."""

    def __init__(self) -> None:
        Path("/proc/self/clear_refs").write_text("5")
        self.start = proc_status_kb("VmRSS")

    def growth(self) -> float:
        return (proc_status_kb("VmHWM") - self.start) / 1024


def proc_status_kb(field: str, pid: int | str = "self") -> int:
    """A kB figure of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(x for x in lines if x.startswith(field + ":")).split()[1])


def process_cpu(pid: int | None = None) -> float:
    """CPU seconds of this process (all threads), or of process ``pid`` (user and system)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(
    title: str, columns: list[str], rows: list[list[str]], width: int | None = None
) -> None:
    """``width``: the console's (a wide table in a log; default: the terminal's)."""
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right" if c != columns[0] else "left")
    for row in rows:
        table.add_row(*row)
    Console(width=width).print(table)
