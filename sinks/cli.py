"""``phasegate sink`` and ``phasegate report``."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

import typer
from rich.console import Console

from schemas.settings import Settings
from sinks.consumer import BrokerUnavailable, Sink
from sinks.migrations import migrate
from sinks.report import as_markdown, as_table, system_report
from sinks.store import Store, StoreError, StoreUnavailable, open_store

console = Console()
errors = Console(stderr=True)


def _open(settings: Settings) -> Store:
    try:
        store = open_store(settings)
        migrate(store, settings.database)
    except StoreError as exc:
        errors.print(f"[red]store:[/red] {exc}")
        raise typer.Exit(1) from None
    return store


FAULT_VARIABLE = "PHASEGATE_SINK_FAULT"


def _fault() -> Callable[[], None] | None:
    """``PHASEGATE_SINK_FAULT=kill-after-insert``: die by SIGKILL after the first insert,
    before its commit (the crash the ledger is for; used by the tests)."""
    if os.environ.get(FAULT_VARIABLE) == "kill-after-insert":
        return lambda: os.kill(os.getpid(), signal.SIGKILL)
    return None


def sink() -> None:
    """Consume results, feedback, alerts and rollout events into ClickHouse until Ctrl-C."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("sinks").setLevel(logging.INFO)
    settings = Settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with _open(settings) as store:
        runner = Sink(settings, store, after_insert=_fault())
        console.print(f"sink: {settings.bootstrap_servers} -> {settings.database} (Ctrl-C stops)")
        try:
            runner.run(stop)
        except BrokerUnavailable as exc:
            errors.print(f"[red]broker:[/red] {exc}")
            raise typer.Exit(1) from None
        c = runner.counters
        console.print(
            f"sink: stopped; {c.messages} messages, rows {c.rows}, {c.dead_letters} to the DLQ, "
            f"{c.duplicates} already stored (skipped)"
        )


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Format(StrEnum):
    table = "table"
    md = "md"


def report(
    rollout: str = typer.Option(..., "--rollout", "-r", help="the rollout id"),
    since: str | None = typer.Option(None, help="from this time (ISO-8601; UTC if no zone)"),
    until: str | None = typer.Option(None, help="before this time (ISO-8601; UTC if no zone)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or md (markdown)"),
) -> None:
    """Per system for a rollout: events, success rate, mean confidence, P95 latency, errors."""
    settings = Settings()
    start, end = _when(since), _when(until)
    with _open(settings) as store:
        reports = system_report(store, settings.database, rollout, start, end)
    if not reports:
        errors.print(f"no results for rollout {rollout!r} in {settings.database}")
    elif fmt is Format.md:
        console.print(as_markdown(reports), markup=False, highlight=False)
    else:
        console.print(as_table(reports, title=f"rollout {rollout}"))


__all__ = ["StoreUnavailable", "report", "sink"]
