"""``phasegate stack up|down|status`` and ``phasegate topics create``."""

from __future__ import annotations

import time

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from phasegate.stack.clickhouse import DEFAULT_HTTP_PORT
from phasegate.stack.errors import MissingDependency, StackError, StartFailed
from phasegate.stack.process import State
from phasegate.stack.services import Service, local_services
from phasegate.stack.topics import ensure_topics, mismatches
from schemas.settings import Settings
from sinks.store import history

stack_app = typer.Typer(no_args_is_help=True, help="Local broker and ClickHouse server.")
topics_app = typer.Typer(no_args_is_help=True, help="The contract's Kafka topics.")
console = Console(soft_wrap=True)

WITH_CLICKHOUSE = typer.Option(
    True, "--clickhouse/--no-clickhouse", help="also manage the ClickHouse server"
)


def register(app: typer.Typer) -> None:
    """Add ``stack`` and ``topics`` to the ``phasegate`` command."""
    app.add_typer(stack_app, name="stack")
    app.add_typer(topics_app, name="topics")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        console.print(f"[red]invalid settings:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _line(service: Service, text: str) -> None:
    console.print(f"{service.name:<11} {service.address:<16} {text}", highlight=False)


def _up_one(service: Service, timeout: float) -> bool:
    """Start one service; True if it is usable afterwards."""
    if service.process is None:
        usable = service.answers()
        _line(service, escape(service.note) + ("" if usable else " [red](not answering)[/red]"))
        return usable or not service.required
    status = service.process.status()
    if status.state in (State.READY, State.STARTING):
        _line(service, f"already running (pid {status.pid})")
        return True
    if status.state is State.FOREIGN:
        usable = service.answers()
        verdict = "answers: using it" if usable else "[red]does not answer: not starting[/red]"
        _line(service, f"port taken by a process we did not start ({status.detail}); {verdict}")
        return usable
    started = time.monotonic()
    try:
        status = service.process.start(timeout)
    except MissingDependency as exc:
        _line(service, f"[yellow]{escape(str(exc))}[/yellow]")
        return not service.required
    except StartFailed as exc:
        _line(service, f"[red]{escape(str(exc))}[/red]; log {service.process.log_file}")
        console.print(exc.log_tail, highlight=False, markup=False)
        return False
    _line(service, f"started (pid {status.pid}), ready in {time.monotonic() - started:.2f} s")
    return True


@stack_app.command("up")
def up(
    clickhouse: bool = WITH_CLICKHOUSE,
    clickhouse_http_port: int = typer.Option(DEFAULT_HTTP_PORT, help="ClickHouse HTTP port"),
    timeout: float = typer.Option(30.0, help="seconds to wait for each service"),
) -> None:
    """Start the local broker and ClickHouse server (harmless when running), create topics."""
    settings = _settings()
    services = local_services(settings, clickhouse, clickhouse_http_port)
    results = [_up_one(s, timeout) for s in services]
    usable = {s.name: ok for s, ok in zip(services, results, strict=True)}
    if usable["broker"]:
        _create_topics(settings)
    console.print(f"history     {history(settings)}", highlight=False)
    if not all(results):
        raise typer.Exit(1)


@stack_app.command("down")
def down(clickhouse: bool = WITH_CLICKHOUSE) -> None:
    """Stop what ``stack up`` started, and nothing else (the broker before its S3)."""
    for service in reversed(local_services(_settings(), clickhouse)):
        if service.process is None:
            _line(service, escape(service.note))
        elif (pid := service.process.pid()) is not None and service.process.stop():
            _line(service, f"stopped (pid {pid})")
        elif (status := service.process.status()).state is State.FOREIGN:
            _line(service, f"left alone: a process we did not start holds it ({status.detail})")
        else:
            _line(service, "not running")


@stack_app.command("status")
def status(clickhouse: bool = WITH_CLICKHOUSE) -> None:
    """Tell whether each service runs and answers; exit 1 unless all of them do."""
    table = Table(box=None, show_header=True, header_style="bold")
    for column in ("service", "address", "state", "pid"):
        table.add_column(column)
    usable = True
    settings = _settings()
    for service in local_services(settings, clickhouse):
        if service.process is None:
            answers = service.answers()
            state = "answers" if answers else "not answering"
            table.add_row(service.name, service.address, f"{state} ({escape(service.note)})", "")
            usable &= answers or not service.required
            continue
        st = service.process.status()
        state = {State.READY: "[green]running, ready[/green]", State.STOPPED: "stopped"}.get(
            st.state, f"[yellow]{st.state}[/yellow]"
        )
        if st.state is State.FOREIGN:
            state += f" ({st.detail}; {'answers' if service.answers() else 'not answering'})"
        table.add_row(service.name, service.address, state, str(st.pid or ""))
        usable &= st.state is State.READY or not service.required
    console.print(table)
    console.print(f"state and logs: {settings.state_dir / 'stack'}", highlight=False)
    console.print(f"history: {history(settings)}", highlight=False)
    if not usable:
        raise typer.Exit(1)


def _create_topics(settings: Settings) -> None:
    try:
        created = ensure_topics(settings)
        wrong = mismatches(settings)
    except StackError as exc:
        console.print(f"[red]topics: {escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(1) from None
    wanted, prefix = settings.topics.all(), settings.topic_prefix
    if created:
        listed = " ".join(f"{name.removeprefix(prefix)}/{wanted[name]}" for name in created)
        console.print(f"topics      created {prefix}: {listed} (name/partitions)", highlight=False)
    else:
        console.print(f"topics      all {len(wanted)} {prefix} topics exist", highlight=False)
    for name, (have, want) in wrong.items():
        console.print(
            f"[yellow]topics      {name} has {have} partitions, the contract wants {want}: "
            "delete and recreate it[/yellow]",
            highlight=False,
        )


@topics_app.command("create")
def create() -> None:
    """Create every contract topic with its partition count (existing ones are kept)."""
    _create_topics(_settings())
