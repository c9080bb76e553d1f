"""The steering rules: what a person may do to a rollout, derived from the loaded plan.

Pure. :func:`decide` turns a :class:`Request` (``start``, ``set_weight``, ``promote``,
``hold`` or ``rollback``) and the rollout's state into the :class:`RolloutEvent` to append,
or raises :class:`Refused` with the message shown to the user. ``phasegate rollout`` and
the dashboard call it for the same action. The rules, all from the plan's phase weights:

- ``start`` begins phase 1 at its weight, only when the rollout is not running (phase 0);
- ``promote`` starts the next phase at its weight; every gate of the running phase must
  pass (the worker's report of that phase), or ``force`` overrides them with a reason;
- ``set_weight`` takes a whole number from 0 to 100: up at most to the next phase's weight
  above the current one, down freely; 0 is a rollback;
- ``hold`` records a no-go with its reason;
- ``rollback`` goes to 0 (phase 0), or to an earlier phase with less weight (``to_phase``).
  A rollback (and ``set_weight`` 0) needs ``confirm`` and a reason; it never raises the
  weight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from rollout.state import RolloutState
from schemas.codec import describe
from schemas.events import RolloutEvent
from schemas.plan import Plan

ACTIONS = ("start", "set_weight", "promote", "hold", "rollback")

GateReport = Mapping[str, Any]
Gates = Callable[[], GateReport | None]
"""Reads the worker's gate report of the running phase (None: not judged yet); it raises
:class:`Refused` when the report cannot be read. Called only when promote needs it."""


class Refused(ValueError):
    """The plan does not allow the action; the message says why (shown to the user)."""


@dataclass(frozen=True)
class Request:
    """One action a person asks for. ``weight`` and ``to_phase`` are checked by :func:`decide`
    (they may come from a JSON body)."""

    action: str
    actor: str
    reason: str = ""
    weight: Any = None
    to_phase: Any = None
    confirm: bool = False
    force: bool = False


def weights(plan: Plan) -> tuple[int, ...]:
    """The plan's phase weights, phase 1 first."""
    return tuple(p.weight for p in plan.phases)


def next_weight(plan: Plan, weight: int) -> int | None:
    """The weight of the first phase above ``weight`` (None: no phase is above it)."""
    return next((w for w in weights(plan) if w > weight), None)


def ceiling(plan: Plan, weight: int) -> int:
    """The highest weight ``set_weight`` may go to from ``weight``."""
    return next_weight(plan, weight) or weight


def quick_weights(plan: Plan) -> list[int]:
    """The weights worth one click: 0 and each phase's weight."""
    return sorted({0, *weights(plan)})


def phase_of(plan: Plan, weight: int) -> int:
    """The first phase with the highest phase weight reached at ``weight`` (0: none)."""
    reached = [w for w in weights(plan) if w <= weight]
    return weights(plan).index(max(reached)) + 1 if reached else 0


def next_phase(plan: Plan, state: RolloutState) -> tuple[int, int] | None:
    """(phase, weight) that start or promote begins; None after the last phase."""
    phase = plan.phase(state.phase + 1)
    return None if phase is None else (state.phase + 1, phase.weight)


def step_back(plan: Plan, number: int) -> int | None:
    """The phase a partial rollback from phase ``number`` goes to: the latest earlier one
    with less weight (None: there is none)."""
    current = plan.phase(number)
    if current is None:
        return None
    return next(
        (k for k in range(number - 1, 0, -1) if plan.phases[k - 1].weight < current.weight), None
    )


def rollback_phases(plan: Plan, state: RolloutState) -> list[int]:
    """The earlier phases a partial rollback may go to: those with less weight than now."""
    return [k for k in range(1, state.phase) if plan.phases[k - 1].weight < state.weight]


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise Refused(f"{what} must be a whole number from {low} to {high}, not {value!r}")
    if not low <= value <= high:
        raise Refused(f"{what} must be from {low} to {high}, not {int(value)}")
    return int(value)


def _start(plan: Plan, state: RolloutState, request: Request) -> dict[str, Any]:
    if state.phase != 0:
        raise Refused(
            f"{state.rollout} is running phase {state.phase}; use promote, hold or rollback"
        )
    phase = plan.phases[0]
    return {
        "type": "phase_started",
        "phase": 1,
        "weight": phase.weight,
        "reason": request.reason or f"start: {phase.name}",
    }


def _promote(plan: Plan, state: RolloutState, request: Request, gates: Gates) -> dict[str, Any]:
    if state.phase == 0:
        raise Refused(f"{state.rollout} is not running; start begins phase 1")
    nxt = next_phase(plan, state)
    if nxt is None:
        raise Refused(f"already in the plan's last phase ({len(plan.phases)})")
    if request.force:
        if not request.reason:
            raise Refused("overriding the gates needs a reason")
    else:
        _gates_pass(state, gates())
    phase, weight = nxt
    return {
        "type": "phase_started",
        "phase": phase,
        "weight": weight,
        "reason": request.reason or f"go: every gate of phase {state.phase} passed",
    }


def _gates_pass(state: RolloutState, report: GateReport | None) -> None:
    if report is not None and report.get("phase") != state.phase:
        report = None  # the worker has not judged the running phase yet
    outcome = "not judged yet" if report is None else str(report.get("outcome"))
    if outcome != "pass":
        raise Refused(
            f"the gates of phase {state.phase} are {outcome}; promote when they pass, or "
            "override them with a reason"
        )


def _set_weight(plan: Plan, state: RolloutState, request: Request) -> dict[str, Any]:
    weight, current = _whole(request.weight, "weight", 0, 100), state.weight
    if weight > ceiling(plan, current):
        step = next_weight(plan, current)
        where = f"the next step is {step}%" if step else "no phase of the plan is higher"
        raise Refused(
            f"the plan raises the weight one phase at a time: from {current}% {where}, "
            f"not {weight}%"
        )
    if weight == 0 and current != 0:
        _rollback_allowed(request)
    return {
        "type": "weight_set",
        "weight": weight,
        "reason": request.reason or f"weight {current}% -> {weight}%",
    }


def _hold(request: Request) -> dict[str, Any]:
    if not request.reason:
        raise Refused("a hold needs a reason (the no-go decision)")
    return {"type": "decision", "reason": request.reason}


def _rollback(plan: Plan, state: RolloutState, request: Request) -> dict[str, Any]:
    if request.to_phase is None:
        phase, weight = 0, 0
    else:
        phase = _whole(request.to_phase, "the phase to roll back to", 1, len(plan.phases))
        weight = plan.phases[phase - 1].weight
        if phase not in rollback_phases(plan, state):
            allowed = ", ".join(map(str, rollback_phases(plan, state))) or "none"
            raise Refused(
                f"a partial rollback goes to an earlier phase with less weight than "
                f"{state.weight}% (phase {state.phase} now; allowed: {allowed}), not phase "
                f"{phase} ({weight}%)"
            )
    _rollback_allowed(request)
    return {"type": "rollback", "weight": weight, "phase": phase, "reason": request.reason}


def _rollback_allowed(request: Request) -> None:
    if not request.confirm:
        raise Refused("a rollback needs confirmation")
    if not request.reason:
        raise Refused("a rollback needs a reason")


def _no_gates() -> GateReport | None:
    return None


def decide(
    plan: Plan, state: RolloutState, request: Request, gates: Gates = _no_gates
) -> RolloutEvent:
    """The event that carries ``request`` on ``state``, or :class:`Refused`."""
    request = _trimmed(request)
    if request.action == "start":
        fields = _start(plan, state, request)
    elif request.action == "promote":
        fields = _promote(plan, state, request, gates)
    elif request.action == "set_weight":
        fields = _set_weight(plan, state, request)
    elif request.action == "hold":
        fields = _hold(request)
    elif request.action == "rollback":
        fields = _rollback(plan, state, request)
    else:
        raise Refused(f"unknown action {request.action!r}; one of {', '.join(ACTIONS)}")
    try:
        return RolloutEvent(rollout=state.rollout, actor=request.actor, **fields)
    except ValidationError as exc:
        raise Refused(describe(exc)) from None


def _trimmed(request: Request) -> Request:
    return replace(request, actor=request.actor.strip(), reason=request.reason.strip())
