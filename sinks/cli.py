"""``phasegate sink`` and ``phasegate report``."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from phasegate.progress import progress_bar
from schemas.kafka_security import refusal
from schemas.plan import Plan, PlanError, load_plan
from schemas.settings import Settings
from sinks import backtest as backtests
from sinks import render
from sinks.batch import seldom_collected
from sinks.consumer import BrokerUnavailable, Sink, SinkCounters
from sinks.ddl import EVENT_TABLES
from sinks.evaluate import as_text, latest_rollout
from sinks.evaluate import evaluate as run_evaluation
from sinks.history import Span
from sinks.migrations import migrate
from sinks.phase_report import NoSuchPhase, blocks, phase_report
from sinks.replay import replay as rebuild
from sinks.report import as_markdown, as_table, system_report
from sinks.store import Store, StoreError, StoreUnavailable, history, open_store
from sinks.store.endpoint import Reader

console = Console()
errors = Console(stderr=True)


def open_history(settings: Settings, reading: bool = False) -> Store:
    """The store history lives in, migrated (by the holder, when read through the process
    holding chdb's folder); said on stderr where it is not the obvious one (the stack's
    server, or chdb read through that process)."""
    try:
        store = open_store(settings, reading)
        if not isinstance(store, Reader):
            migrate(store, settings.database)
    except StoreError as exc:
        errors.print(f"[red]store:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    where = history(settings)
    if isinstance(store, Reader):
        _say(f"history: {where}, read through pid {store.pid}")
    elif where.from_stack:
        _say(f"history: {where}")
    return store


def _say(line: str) -> None:
    errors.print(line, markup=False, highlight=False, soft_wrap=True)


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
    # the driver logs a traceback per failed connect; the sink says it once, throttled
    logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)
    settings = Settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with open_history(settings) as store:
        runner = Sink(settings, store, after_insert=_fault())
        console.print(f"sink: {settings.bootstrap_servers} -> {settings.database} (Ctrl-C stops)")
        try:
            with seldom_collected():
                runner.run(stop)
        except BrokerUnavailable as exc:
            _broker_error(settings, exc)
        console.print(f"sink: stopped; {summary(runner.counters)}", soft_wrap=True)


NOUNS = {"results": "result", "alerts": "alert", "rollout_events": "rollout event"}


def summary(c: SinkCounters, dead_letters: str = "to the dead-letter topic") -> str:
    """What a sink or a replay read and stored, as one sentence."""

    def rows(table: str, n: int) -> str:
        noun = NOUNS.get(table, table)
        return f"{n:,} {noun if n == 1 or noun == table else noun + 's'}"

    stored = [rows(t.name, c.rows[t.name]) for t in EVENT_TABLES if c.rows.get(t.name)]
    return (
        f"{c.messages:,} messages: stored {', '.join(stored) or 'nothing'}; "
        f"{c.dead_letters:,} {dead_letters}, {c.duplicates:,} already stored (skipped)"
    )


def _broker_error(settings: Settings, exc: BrokerUnavailable) -> NoReturn:
    """One line: the broker's refusal of our TLS or SASL if it listens, else ``exc``."""
    errors.print(f"[red]broker:[/red] {escape(refusal(settings) or str(exc))}")
    raise typer.Exit(1) from None


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
    html = "html"


def _plan(path: Path | str | None) -> Plan:
    try:
        return load_plan(path)
    except PlanError as exc:
        errors.print(f"[red]plan:[/red] {exc}")
        raise typer.Exit(2) from None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


FINAL_HELP = (
    "read the event tables with FINAL instead of the rollups: slow on big tables; collapses "
    "duplicates that bypassed the sink (rows inserted by hand)"
)


def _phase_report(
    settings: Settings,
    rollout: str,
    phase: int,
    span: tuple[datetime | None, datetime | None],
    fmt: Format,
    output: Path | None,
    final: bool,
) -> None:
    plan = _plan(settings.plan)
    gate = plan.phase(phase)
    if gate is None:
        errors.print(f"the plan {plan.name!r} has phases 1 to {len(plan.phases)}, not {phase}")
        raise typer.Exit(2)
    with open_history(settings, reading=True) as store:
        try:
            report = phase_report(
                store,
                settings.database,
                rollout,
                phase,
                gate,
                plan.roles,
                *span,
                final=final,
                alpha=plan.gates.alpha,
            )
        except NoSuchPhase as exc:
            errors.print(str(exc))
            raise typer.Exit(1) from None
    if fmt is Format.html:
        title = f"{rollout} phase {phase}"
        _emit(render.html(blocks(report, charts=True), title), output)
    else:
        _emit(render.markdown(blocks(report)), output)


def report(
    rollout: str = typer.Option(..., "--rollout", "-r", help="the rollout id"),
    phase: int | None = typer.Option(
        None, "--phase", "-p", help="the go/no-go report of this phase (criteria from the plan)"
    ),
    since: str | None = typer.Option(None, help="from this time (ISO-8601; UTC if no zone)"),
    until: str | None = typer.Option(None, help="before this time (ISO-8601; UTC if no zone)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, md or html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write to this file"),
    final: bool = typer.Option(False, "--final", help=FINAL_HELP),
) -> None:
    """Per system for a rollout; with --phase, the phase's go/no-go report."""
    settings = Settings()
    start, end = _when(since), _when(until)
    if phase is not None:
        _phase_report(settings, rollout, phase, (start, end), fmt, output, final)
        return
    with open_history(settings, reading=True) as store:
        reports = system_report(store, settings.database, rollout, start, end, final)
    if not reports:
        errors.print(f"no results for rollout {rollout!r} in {settings.database}")
    elif fmt is not Format.table:
        _emit(as_markdown(reports) + "\n", output)
    else:
        console.print(as_table(reports, title=f"rollout {rollout}"))


def evaluate(
    last: int = typer.Option(
        500, "--last", "-n", min=1, metavar="N", help="the newest N results (each once)"
    ),
    rollout: str | None = typer.Option(None, "--rollout", "-r", help="default: the newest"),
    output: Path | None = typer.Option(None, "--report", help="write the report to this file"),
    final: bool = typer.Option(
        False, "--final", help="read the tables with FINAL: also collapses duplicate feedback"
    ),
) -> None:
    """Compare the systems over the last N results: winner and recommendations."""
    settings = Settings()
    plan = _plan(settings.plan)
    with open_history(settings, reading=True) as store:
        rollout = rollout or latest_rollout(store, settings.database)
        if rollout is None:
            errors.print(f"no results in {settings.database}")
            raise typer.Exit(1)
        evaluation = run_evaluation(store, settings.database, rollout, last, plan.roles, final)
    text = as_text(evaluation)
    console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
    if output is not None:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


def replay(
    since: str | None = typer.Option(
        None, "--from", help="only events from this time on (ISO-8601; UTC if no zone)"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask before dropping tables"),
) -> None:
    """Drop the tables and rebuild them from the Kafka topics (stop the sink first)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings()
    start = _when(since)
    if not yes:
        typer.confirm(
            f"Drop phasegate's tables in {settings.database} and rebuild them from "
            f"{settings.topic_prefix}* on {settings.bootstrap_servers}?",
            abort=True,
        )
    with open_history(settings) as store, progress_bar(console, "replay", "messages") as bar:
        task = bar.add_task("replay", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            with seldom_collected():
                counters = rebuild(
                    settings, store, since=start, on_progress=None if bar.disable else advance
                )
        except BrokerUnavailable as exc:
            _broker_error(settings, exc)
    console.print(
        f"replay: {summary(counters, 'unreadable (in the dead-letter topic already)')}",
        soft_wrap=True,
    )


def backtest(
    rollout: str = typer.Option(..., "--rollout", "-r", help="the rollout id"),
    plan_file: Path | None = typer.Option(
        None, "--plan", metavar="FILE", help="the plan to try (default: the configured one)"
    ),
    since: str | None = typer.Option(None, help="from this time (ISO-8601; UTC if no zone)"),
    until: str | None = typer.Option(None, help="before this time (ISO-8601; UTC if no zone)"),
    html_out: Path | None = typer.Option(
        None, "--html", metavar="OUT", help="also write the HTML report, a chart per trigger"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of the table"),
) -> None:
    """Replay a rollout's stored history through a plan: when it would have fired or passed."""
    settings = Settings()
    plan = _plan(plan_file or settings.plan)
    span = Span(_when(since), _when(until))
    with (
        open_history(settings, reading=True) as store,
        progress_bar(console, "backtest", "events") as bar,
    ):
        task = bar.add_task("backtest", total=None)
        findings = backtests.backtest(
            store,
            settings,
            plan,
            rollout,
            span,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        live = backtests.live_alerts(store, settings.database, rollout, span, findings.alerts)
    if not findings.events:
        errors.print(f"no results or feedback for rollout {rollout!r} in {settings.database}")
        raise typer.Exit(1)
    result = backtests.Report(rollout, plan, findings, live)
    _emit((backtests.as_json if as_json else backtests.as_text)(result), None)
    if html_out is not None:
        html_out.write_text(backtests.as_html(result), encoding="utf-8")
        errors.print(f"wrote {html_out}")


__all__ = ["StoreUnavailable", "backtest", "evaluate", "replay", "report", "sink"]
