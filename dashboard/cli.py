"""``phasegate dashboard`` (the web page) and ``phasegate watch`` (the terminal view)."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console
from rich.markup import escape

from schemas.settings import Settings

console = Console(soft_wrap=True)


def dashboard(
    host: str = typer.Option(None, help="address to bind (default: settings.dashboard_host)"),
    port: int = typer.Option(None, help="port (default: settings.dashboard_port)"),
    refresh: float = typer.Option(5.0, min=1.0, help="the page's default refresh, seconds"),
) -> None:
    """Serve the A/B testing page: live figures, gates, alerts, and the weight control."""
    from dashboard.server import make_server
    from dashboard.service import Dashboard
    from dashboard.worker_client import status_url
    from schemas.plan import PlanError

    settings = Settings()
    host = host or settings.dashboard_host
    port = settings.dashboard_port if port is None else port
    try:
        board = Dashboard(settings, refresh_s=refresh)
    except PlanError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    try:
        server = make_server(board, host, port)
    except OSError as exc:
        console.print(f"[red]cannot listen on {host}:{port}:[/red] {exc.strerror}")
        raise typer.Exit(1) from None
    board.start()
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.dashboard_token:
        console.print(
            f"[yellow]warning:[/yellow] listening on {host} without a token: anyone who can "
            "reach it can change the rollout's weight. Set PHASEGATE_DASHBOARD_TOKEN."
        )
    console.print(f"dashboard at {server.url}, reading the worker at {status_url(settings)}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        board.close()


def watch(
    rollout: str = typer.Option(None, help="only this rollout (default: all)"),
    window: int = typer.Option(None, help="rolling window in seconds (default: the shortest)"),
    interval: float = typer.Option(5.0, min=0.5, help="seconds between refreshes"),
    once: bool = typer.Option(False, help="print one screen and exit"),
) -> None:
    """The worker's live figures in the terminal, refreshed every few seconds."""
    from dashboard.terminal import watch as run

    settings = Settings()
    if not run(
        settings, rollout=rollout, span=window, interval=interval, once=once, console=console
    ):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` and ``watch`` to the ``phasegate`` command."""
    app.command("dashboard")(dashboard)
    app.command("watch")(watch)
