"""Weight control: an operator's action and the rollout's state -> the rollout event to append.

Pure: :func:`decide` either returns the :class:`~schemas.events.RolloutEvent` that carries
the action (with actor and reason) or raises :class:`Refused` with the message the page
shows. The rules:

- a weight is an integer in 0..100;
- raising the weight goes at most to the next phase's weight (50 -> 75, not 50 -> 100);
  lowering it is always allowed;
- going to 0 (a rollback, or 0 on the slider) needs ``confirm``;
- ``promote`` starts the next phase at its weight; ``hold`` records a decision to stay;
  ``rollback`` goes to 0.

:func:`check_gates` is the go decision on top: a running phase is promoted only when
every gate the worker judged passes, or when the operator overrides it with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rollout.state import RolloutState
from schemas.codec import describe
from schemas.events import RolloutEvent

ACTIONS = ("set_weight", "promote", "hold", "rollback")


class Refused(ValueError):
    """The action is not allowed; the message says why (shown on the page)."""


@dataclass(frozen=True)
class Ladder:
    """The weights of the plan's phases, phase 1 first (the seed: 50, 75, 100, 100)."""

    weights: tuple[int, ...] = (50, 75, 100, 100)

    def next_weight(self, weight: int) -> int | None:
        """The weight of the first phase above ``weight`` (None at the top)."""
        return next((w for w in self.weights if w > weight), None)

    def next_phase(self, state: RolloutState) -> tuple[int, int] | None:
        """(phase, weight) that ``promote`` starts, or None after the last phase.

        The phase in the log decides, not the weight: a rollout that is not running
        (phase 0) starts at phase 1 even if a weight was set directly.
        """
        if state.phase >= len(self.weights):
            return None
        return state.phase + 1, self.weights[state.phase]

    def phase_of(self, weight: int) -> int:
        """The first phase with the highest weight reached at ``weight`` (0: none)."""
        reached = [w for w in self.weights if w <= weight]
        return self.weights.index(max(reached)) + 1 if reached else 0


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise Refused(f"weight must be a whole number from 0 to 100, not {value!r}")
    if not 0 <= value <= 100:
        raise Refused(f"weight must be from 0 to 100, not {int(value)}")
    return int(value)


def decide(
    action: str, body: Mapping[str, Any], state: RolloutState, ladder: Ladder = Ladder()
) -> RolloutEvent:
    """The event for ``action`` on ``state``, or :class:`Refused`."""
    if action not in ACTIONS:
        raise Refused(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    actor = str(body.get("actor") or "dashboard").strip() or "dashboard"
    reason = str(body.get("reason") or "").strip()
    confirmed = body.get("confirm") is True
    current = state.weight
    fields: dict[str, Any]
    if action == "set_weight":
        weight = _weight(body.get("weight"))
        step = ladder.next_weight(current)
        if weight > current and (step is None or weight > step):
            raise Refused(
                f"the plan raises the weight one phase at a time: from {current}% the next "
                f"step is {step}%, not {weight}%"
            )
        fields = {"type": "weight_set", "weight": weight}
        reason = reason or f"weight {current}% -> {weight}% from the dashboard"
    elif action == "promote":
        nxt = ladder.next_phase(state)
        if nxt is None:
            raise Refused(f"already in the plan's last phase ({len(ladder.weights)})")
        phase, weight = nxt
        fields = {"type": "phase_started", "phase": phase, "weight": weight}
        reason = reason or f"promoted to phase {phase} ({weight}%) from the dashboard"
    elif action == "hold":
        fields = {"type": "decision"}
        reason = reason or f"hold at {current}% (phase {state.phase})"
    else:
        fields = {"type": "rollback", "weight": 0, "phase": 0}
        reason = reason or f"rollback {current}% -> 0% from the dashboard"
    if fields.get("weight") == 0 and current != 0 and not confirmed:
        raise Refused("a rollback to 0% needs confirmation")
    try:
        return RolloutEvent(rollout=state.rollout, actor=actor, reason=reason, **fields)
    except ValidationError as exc:
        raise Refused(describe(exc)) from None


def check_gates(
    state: RolloutState, gates: Mapping[str, Any] | None, body: Mapping[str, Any]
) -> None:
    """:class:`Refused` unless the current phase's gates pass (or ``force`` with a reason).

    Before phase 1 (not running) there is nothing to judge: promoting starts the rollout.
    """
    if state.phase == 0:
        return
    outcome = "not judged yet" if not gates else str(gates.get("outcome"))
    if outcome == "pass":
        return
    if body.get("force") is True:
        if not str(body.get("reason") or "").strip():
            raise Refused("overriding the gates needs a reason")
        return
    raise Refused(
        f"the gates of phase {state.phase} are {outcome}; promote when they pass, or "
        "override them with a reason"
    )
