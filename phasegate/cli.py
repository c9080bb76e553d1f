"""The ``phasegate`` command: one typer app, one sub-app per part."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperOption

from dashboard import cli as dashboard_cli
from phasegate import allocator, memtrace, rollout_cli
from phasegate.stack import cli as stack_cli
from producers import cli as producers_cli
from schemas import export as schema_export
from sinks import cli as sinks_cli
from sinks import sql as sinks_sql


def _declared_metavar(param: TyperArgument | TyperOption, ctx: object) -> str:
    """What help shows after a parameter's names: its declared ``metavar``, if any."""
    return param.metavar or ""


# typer (0.29) writes each parameter's Python type into help (``--help <bool>``, ``--last
# <int range>``), flags included, and has no setting against it: names and help only.
TyperArgument.display_type_rich = TyperOption.display_type_rich = _declared_metavar  # type: ignore[method-assign]

app = typer.Typer(no_args_is_help=True, help="Watch and steer a gradual traffic migration.")
schema_app = typer.Typer(no_args_is_help=True, help="The event contract (v1).")
app.add_typer(schema_app, name="schema")
app.command("sink")(sinks_cli.sink)
app.command("report")(sinks_cli.report)
app.command("evaluate")(sinks_cli.evaluate)
app.command("replay")(sinks_cli.replay)
app.command("backtest")(sinks_cli.backtest)
app.command("sql")(sinks_sql.sql)
app.command("simulate")(producers_cli.simulate)
stack_cli.register(app)
dashboard_cli.register(app)
rollout_cli.register(app)

console = Console(soft_wrap=True)


LONG_RUNNING = {"worker", "sink", "notify", "dashboard", "simulate", "demo"}


@app.callback()
def _every_command(ctx: typer.Context) -> None:
    """Watch and steer a gradual traffic migration."""
    if ctx.invoked_subcommand in LONG_RUNNING:
        allocator.tame()  # RSS back down after a catch-up's peak
    memtrace.start_from_env()  # only with PHASEGATE_MEMTRACE set (soak runs)


@schema_app.command("export")
def export_schemas(directory: Path = typer.Argument(..., help="where to write the files")) -> None:
    """Write JSON Schema files of every message type, for producers in other languages."""
    for path in schema_export.export(directory):
        console.print(f"wrote {path}")


@app.command()
def worker(
    loglevel: str = typer.Option("info", help="log level of the worker"),
) -> None:
    """Run the stream worker (stage 1 and 2, alerts, /status) until Ctrl-C."""
    from phasegate.stack.broker import probe
    from schemas.kafka_security import refusal
    from schemas.settings import Settings
    from streams.app import run_worker

    settings = Settings()
    try:
        probe(settings.bootstrap_servers, options=settings.kafka_options())
    except Exception:
        reason = refusal(settings)
        console.print(
            f"[red]{escape(reason)}[/red]"
            if reason
            else f"[red]No Kafka broker at {settings.bootstrap_servers}.[/red] Start the local "
            "stack with `phasegate stack up`, or point PHASEGATE_BOOTSTRAP_SERVERS at a broker."
        )
        raise typer.Exit(1) from None
    run_worker(settings, loglevel=loglevel)


@app.command()
def demo(
    events: int = typer.Option(12_000, help="simulated generations"),
    rate: float = typer.Option(600.0, help="generations per second"),
) -> None:
    """Run everything locally (Tansu, worker, sink, chdb) on traffic that degrades."""
    from phasegate import demo as demo_run
    from schemas.settings import Settings

    raise typer.Exit(demo_run.run(Settings(), events=events, rate=rate))


def main() -> None:
    try:
        app()
    except ValidationError as exc:  # a bad PHASEGATE_* variable or phasegate.toml entry
        console.print(f"[red]invalid settings:[/red] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
