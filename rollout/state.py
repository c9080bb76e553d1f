"""The rollout state as a pure fold over the rollout log (``phasegate.rollout`` topic).

Every event type may carry a ``weight`` and a ``phase``; a non-null one becomes current:

- ``weight_set``: an operator (or the plan) sets the candidate weight;
- ``phase_started``: a phase begins, usually with its weight;
- ``decision``: a go/no-go record; it changes the weight or phase only if it names one;
- ``rollback``: the weight goes back (``weight`` null means an emergency rollback to 0).

Events of other rollouts are ignored, and so is an event whose ``event_id`` was already
applied (the log is delivered at least once). The producers' Router, the stream worker and
the CLI all read the weight through this one function.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from schemas.events import RolloutEvent

WORKER = "phasegate-worker"  # the actor of the stream worker's own events


def steers(event: RolloutEvent) -> bool:
    """Whether ``event`` changes the weight or the phase (a decision may not)."""
    return event.weight is not None or event.phase is not None or event.type == "rollback"


@dataclass(frozen=True)
class RolloutState:
    """Where one rollout stands: its candidate weight, its phase and how it got there."""

    rollout: str
    weight: int = 0
    phase: int = 0
    history: tuple[RolloutEvent, ...] = ()
    updated_at: datetime | None = None
    _seen: frozenset[UUID] = field(default=frozenset(), repr=False, compare=False)

    def apply(self, event: RolloutEvent) -> RolloutState:
        """The state after ``event`` (``self`` if it is for another rollout or a repeat)."""
        if event.rollout != self.rollout or event.event_id in self._seen:
            return self
        weight, phase = self.weight, self.phase
        if event.weight is not None:
            weight = event.weight
        elif event.type == "rollback":
            weight = 0
        if event.phase is not None:
            phase = event.phase
        return RolloutState(
            rollout=self.rollout,
            weight=weight,
            phase=phase,
            history=(*self.history, event),
            updated_at=event.ts,
            _seen=self._seen | {event.event_id},
        )

    @property
    def last(self) -> RolloutEvent | None:
        return self.history[-1] if self.history else None

    def has_applied(self, event_id: UUID) -> bool:
        """Whether the event ``event_id`` is in the fold (the log has delivered it)."""
        return event_id in self._seen

    @property
    def last_by_person(self) -> RolloutEvent | None:
        """The last change of weight or phase made by anybody but the worker."""
        return next((e for e in reversed(self.history) if e.actor != WORKER and steers(e)), None)

    @property
    def held_by_worker(self) -> bool:
        """The last change is the worker's rollback: it holds until a person acts."""
        last = next((e for e in reversed(self.history) if steers(e)), None)
        return last is not None and last.actor == WORKER and last.type == "rollback"


def fold(events: Iterable[RolloutEvent], rollout: str, initial_weight: int = 0) -> RolloutState:
    """Replay ``events`` (in log order) into the state of ``rollout``."""
    state = RolloutState(rollout=rollout, weight=initial_weight)
    for event in events:
        state = state.apply(event)
    return state


class Rollouts:
    """Every rollout's state in a shared log, applied event by event (safe across threads)."""

    def __init__(self) -> None:
        self._states: dict[str, RolloutState] = {}
        self._lock = threading.Lock()

    def apply(self, event: RolloutEvent) -> None:
        with self._lock:
            state = self._states.get(event.rollout) or RolloutState(rollout=event.rollout)
            self._states[event.rollout] = state.apply(event)

    def state(self, rollout: str) -> RolloutState:
        """The state of ``rollout`` (weight 0, phase 0 if the log never named it)."""
        with self._lock:
            return self._states.get(rollout) or RolloutState(rollout=rollout)

    def rollouts(self) -> list[str]:
        with self._lock:
            return sorted(self._states)


def fold_all(events: Iterable[RolloutEvent]) -> dict[str, RolloutState]:
    """Replay a shared log into the state of every rollout it mentions."""
    rollouts = Rollouts()
    for event in events:
        rollouts.apply(event)
    return {name: rollouts.state(name) for name in rollouts.rollouts()}


def phase_periods(state: RolloutState) -> list[tuple[int, datetime, datetime | None]]:
    """When each phase ran, as (phase, start, end); the current one has end None.

    A period starts at the first event that sets a phase other than the running one.
    """
    periods: list[tuple[int, datetime, datetime | None]] = []
    for event in state.history:
        if event.phase is None or (periods and periods[-1][0] == event.phase):
            continue
        if periods:
            phase, start, _ = periods[-1]
            periods[-1] = (phase, start, event.ts)
        periods.append((event.phase, event.ts, None))
    return periods
