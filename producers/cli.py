"""``phasegate simulate``: realistic traffic through the real Router and Emitter."""

from __future__ import annotations

import socket

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from phasegate.progress import progress_bar
from producers import live
from producers.simulator import SCENARIOS
from schemas.settings import Settings

console = Console()


def simulate(
    scenario: str = typer.Option("healthy", help=f"one of: {', '.join(SCENARIOS)}"),
    events: int = typer.Option(None, "--events", "-n", help="number of generations"),
    duration: float = typer.Option(None, "--duration", "-d", help="seconds to run instead"),
    rate: float = typer.Option(None, help="generations per second (default: as fast as possible)"),
    seed: int = typer.Option(0, help="random seed (same seed, same traffic)"),
    rollout: str = typer.Option("kai-response", help="rollout id"),
    set_weight: int = typer.Option(
        None, min=0, max=100, help="first write this candidate weight to the rollout log"
    ),
    progress: bool = typer.Option(True, help="show a progress bar on long runs"),
) -> None:
    """Send simulated results and feedback to Kafka, routed like a real application."""
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    if events is None and duration is None:
        events = 10_000
    settings = Settings()
    if not broker_reachable(settings.bootstrap_servers):
        console.print(
            f"[red]No Kafka broker at {settings.bootstrap_servers}.[/red] Start the local stack "
            "with `phasegate stack up`, or point PHASEGATE_BOOTSTRAP_SERVERS at a broker."
        )
        raise typer.Exit(1)
    long_run = (events or 0) >= 20_000 or (duration or 0) >= 5
    with progress_bar(console, f"simulate {scenario}", "generations", progress and long_run) as bar:
        task = bar.add_task("simulate", total=None)

        def advance(done: float, generations: int) -> None:
            """The total is given (events) or extrapolated (duration): ETA either way."""
            total = events or (generations / done if done else None)
            bar.update(task, completed=generations, total=total)

        summary = live.run(
            settings,
            scenario,
            events=events,
            duration_s=duration,
            rate=rate,
            seed=seed,
            rollout=rollout,
            set_weight=set_weight,
            on_progress=advance,
        )
    console.print(render(summary))


def render(summary: live.Summary) -> Group:
    """The run in a line, per system in a table, the Emitter's counters in a line."""
    headline = (
        f"{summary.scenario}: {summary.generations:,} generations at {summary.rate:,.0f}/s, "
        f"weight {summary.weight}%, {summary.feedback:,} feedback"
    )
    table = Table()
    table.add_column("system")
    table.add_column("results", justify="right")
    table.add_column("success", justify="right")
    for system, n in sorted(summary.per_system.items()):
        table.add_row(system, f"{n:,}", f"{summary.successes[system] / n:.1%}")
    lines: list[RenderableType] = [Text(headline), table]
    if (e := summary.emitter) is not None:
        lines.append(
            Text(f"emitter: sent {e.sent:,}, dropped {e.dropped:,}, buffered {e.buffered:,}")
        )
    return Group(*lines)


def broker_reachable(bootstrap_servers: str, timeout: float = 1.0) -> bool:
    """True if any bootstrap server accepts a TCP connection."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
            return True
        except (OSError, ValueError):
            continue
    return False
