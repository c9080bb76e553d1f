"""``phasegate rollout ...``, ``phasegate alerts tail`` and ``phasegate notify``.

The rollout commands append :class:`RolloutEvent` s to the rollout log (the current phase
and weight are the fold over it) with an actor (``--actor`` or ``$USER``) and a reason.
What each command may do is decided by :func:`rollout.steering.decide` from the plan's
phases, as for the dashboard's buttons; typing the command confirms a rollback.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dashboard.terminal import gate_table
from rollout.state import RolloutState
from rollout.steering import Refused, Request, decide
from schemas.alert_text import headline
from schemas.events import Alert, RolloutEvent
from schemas.plan import Plan, PlanError, load_plan
from schemas.settings import Settings

console = Console(soft_wrap=True)
rollout_app = typer.Typer(no_args_is_help=True, help="Read and steer the rollout log.")
alerts_app = typer.Typer(no_args_is_help=True, help="The alerts topic.")

ROLLOUT = typer.Option("kai-response", "--rollout", "-r", help="rollout id")
ACTOR = typer.Option(None, help="who acts (default: $USER)")
REASON = typer.Option("", help="why (kept in the log)")
PLAN = typer.Option(None, "--plan", help="plan file (default: settings.plan or the default)")


def _plan(settings: Settings, path: Path | None) -> Plan:
    try:
        return load_plan(path or settings.plan)
    except PlanError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("USER") or getpass.getuser() or "unknown"


def read_state(settings: Settings, rollout: str, timeout: float = 10.0) -> RolloutState:
    """The fold of the whole rollout log as it is now; exits 1, refusing to guess, if the
    log cannot be read to its end within ``timeout``."""
    from rollout.log import LogUnavailable, current_state

    try:
        return current_state(settings, rollout, timeout)
    except LogUnavailable as exc:
        console.print(f"[red]refused:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None


def append(settings: Settings, event: RolloutEvent) -> None:
    from rollout.writer import NotWritten, RolloutWriter

    writer = RolloutWriter(settings)
    try:
        writer.append(event)
    except NotWritten as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        writer.close(1.0)
    console.print(
        f"{event.rollout}: {event.type} -> weight {event.weight}, phase {event.phase} "
        f"by {event.actor}" + (f" ({escape(event.reason)})" if event.reason else "")
    )


def gates_of(settings: Settings, rollout: str) -> dict[str, Any] | None:
    """The worker's gate report for ``rollout`` (None: the worker has none yet)."""
    from dashboard.worker_client import fetch_status

    return (fetch_status(settings, rollout).get("control", {}).get(rollout) or {}).get("gates")


def _steer(rollout: str, plan_file: Path | None, request: Request) -> None:
    """Decide ``request`` on the rollout's current state by the plan's rules; append it."""
    from dashboard.worker_client import WorkerUnavailable

    settings = Settings()
    plan, state = _plan(settings, plan_file), read_state(settings, rollout)

    def gates() -> dict[str, Any] | None:
        try:
            report = gates_of(settings, rollout)
        except WorkerUnavailable as exc:
            raise Refused(f"the gates cannot be read: {exc}") from None
        if report is not None and report["outcome"] != "pass":
            console.print(gate_table(report))
        return report

    try:
        event = decide(plan, state, request, gates)
    except Refused as exc:
        console.print(f"[red]refused:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    append(settings, event)


def standing(plan: Plan, state: RolloutState) -> str:
    """Where the rollout stands, as the traffic sees it: its phase and the weight."""
    phase = plan.phase(state.phase)
    if state.phase == 0:
        if state.weight == 0:
            return f"not running, weight 0% (all traffic on {plan.roles.baseline})"
        return f"not running, weight {state.weight}% set directly, outside any phase"
    where = f"phase {state.phase} ({phase.name})" if phase else f"phase {state.phase}"
    if phase is None:
        return f"{where}, not in the plan {plan.name!r}, weight {state.weight}%"
    if state.weight != phase.weight:
        return f"{where}, weight {state.weight}% set directly (the phase's is {phase.weight}%)"
    return f"{where}, weight {state.weight}%"


@rollout_app.command("status")
def status(
    rollout: str = ROLLOUT,
    plan_file: Path | None = PLAN,
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Phase, weight, each gate's verdict (from the worker) and the history."""
    from dashboard.worker_client import WorkerUnavailable

    settings = Settings()
    plan = _plan(settings, plan_file)
    state = read_state(settings, rollout)
    try:
        gates, gates_error = gates_of(settings, rollout), None
    except WorkerUnavailable as exc:
        gates, gates_error = None, str(exc)
    if as_json:
        history = [json.loads(e.model_dump_json(by_alias=True)) for e in state.history]
        data = {"rollout": rollout, "phase": state.phase, "weight": state.weight}
        console.print_json(data=data | {"gates": gates, "history": history})
        return
    console.print(f"[bold]{rollout}[/]: {escape(standing(plan, state))}")
    if gates_error:
        console.print(f"gates: [yellow]{escape(gates_error)}[/]")
    elif gates is None:
        console.print("gates: the worker has no windows of this rollout's current phase yet")
    else:
        console.print(gate_table(gates))
    history = Table(title="history (the rollout log)")
    for col in ("ts", "type", "weight", "phase", "actor", "reason"):
        history.add_column(col)
    for e in state.history:
        history.add_row(
            f"{e.ts:%Y-%m-%d %H:%M:%S}", e.type, str(e.weight), str(e.phase), e.actor, e.reason
        )
    console.print(history)


@rollout_app.command("start")
def start(
    rollout: str = ROLLOUT, actor: str = ACTOR, reason: str = REASON, plan_file: Path | None = PLAN
) -> None:
    """Start phase 1 at its weight (again, after a rollback)."""
    _steer(rollout, plan_file, Request("start", _actor(actor), reason))


@rollout_app.command("set-weight")
def set_weight(
    weight: int = typer.Argument(..., help="candidate weight in percent"),
    rollout: str = ROLLOUT,
    actor: str = ACTOR,
    reason: str = REASON,
    plan_file: Path | None = PLAN,
) -> None:
    """Set the candidate weight: down freely (0 needs a reason), up at most to the next
    phase's weight."""
    _steer(rollout, plan_file, Request("set_weight", _actor(actor), reason, weight, confirm=True))


@rollout_app.command("promote")
def promote(
    rollout: str = ROLLOUT,
    actor: str = ACTOR,
    reason: str = REASON,
    force: bool = typer.Option(False, help="promote although a gate does not pass"),
    plan_file: Path | None = PLAN,
) -> None:
    """Go to the next phase: every gate of the current one must pass (the go decision)."""
    _steer(rollout, plan_file, Request("promote", _actor(actor), reason, force=force))


@rollout_app.command("hold")
def hold(
    rollout: str = ROLLOUT,
    actor: str = ACTOR,
    reason: str = typer.Option(..., help="why (the no-go decision)"),
    plan_file: Path | None = PLAN,
) -> None:
    """Record a no-go: stay in the current phase."""
    _steer(rollout, plan_file, Request("hold", _actor(actor), reason))


@rollout_app.command("rollback")
def rollback(
    rollout: str = ROLLOUT,
    actor: str = ACTOR,
    reason: str = typer.Option(..., help="why (required)"),
    to_phase: int = typer.Option(None, help="a partial rollback to this earlier phase"),
    plan_file: Path | None = PLAN,
) -> None:
    """Roll back: to weight 0 (emergency), or to an earlier phase with --to-phase."""
    request = Request("rollback", _actor(actor), reason, to_phase=to_phase, confirm=True)
    _steer(rollout, plan_file, request)


@alerts_app.command("tail")
def tail(
    rollout: str = typer.Option(None, "--rollout", "-r", help="only this rollout"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
    follow: bool = typer.Option(True, help="keep following (--no-follow: print and exit)"),
) -> None:
    """Print the alerts topic from its start, then follow it."""
    from rollout.follower import Follower

    settings = Settings()
    seen: set[Any] = set()

    def show(alert: Alert) -> None:
        if (rollout and alert.rollout != rollout) or alert.alert_id in seen:
            return
        seen.add(alert.alert_id)
        if as_json:
            print(alert.model_dump_json(by_alias=True), flush=True)
        else:
            console.print(escape(headline(alert)), highlight=False)

    follower = Follower(settings, settings.topics.alerts, Alert, show, name="phasegate-alerts-tail")
    follower.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if not follower.caught_up.wait(10):
            console.print(f"[red]cannot read the alerts:[/red] {follower.error or ''}")
            raise typer.Exit(1)
        if follow:
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()


def notify(
    webhook: str = typer.Option(..., help="URL to POST each alert and announcement to"),
    rollout: str = typer.Option(None, "--rollout", "-r", help="only this rollout"),
    timeout: float = typer.Option(5.0, help="seconds per attempt"),
    attempts: int = typer.Option(4, min=1, help="attempts per notification"),
    plan_file: Path | None = PLAN,
    group: str = typer.Option(
        "notify", help="consumer group (after the topic prefix): one per webhook"
    ),
) -> None:
    """POST alerts, and the plan's announcements of phase changes, to a webhook."""
    from phasegate.notify import Notifier, Webhook, run, shown

    settings = Settings()
    hook = Webhook(webhook, timeout_s=timeout, attempts=attempts)
    notifier = Notifier(hook, _plan(settings, plan_file), rollout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(
        f"notifying {shown(webhook)} of {settings.topics.alerts} and {settings.topics.rollout}"
    )
    with contextlib.suppress(KeyboardInterrupt):
        run(settings, notifier, stop, group)
    console.print(f"sent {hook.sent}, failed {hook.failed}, retries {hook.retries}")


def register(app: typer.Typer) -> None:
    """Add ``rollout``, ``alerts`` and ``notify`` to the ``phasegate`` command."""
    app.add_typer(rollout_app, name="rollout")
    app.add_typer(alerts_app, name="alerts")
    app.command("notify")(notify)
