"""Stage 2 state: merged views per rollout, the rollout log's states, and their triggers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from rollout.state import WORKER, RolloutState
from schemas.events import RolloutEvent
from schemas.internal import Partial
from schemas.plan import Plan
from streams.clock import Clock, wall_clock
from streams.gates import GateReport, Looks, evaluate
from streams.triggers import Output, RolloutMonitor
from streams.windows import RolloutView


@dataclass
class Stage2:
    window_seconds: int
    retention: int
    plan: Plan
    views: dict[str, RolloutView] = field(default_factory=dict)
    monitors: dict[str, RolloutMonitor] = field(default_factory=dict)
    looks: dict[str, Looks] = field(default_factory=dict)  # the gates' memory per rollout
    # the last gate report per rollout, with the view's version and the state it judged
    reports: dict[str, tuple[tuple[int, RolloutState], GateReport | None]] = field(
        default_factory=dict
    )
    # the rollout log's fold of a rollout (None: not known yet)
    state_of: Callable[[str], RolloutState | None] = lambda rollout: None
    clock: Clock = wall_clock  # stage 2's: how long a fired trigger has waited

    def apply(self, partial: Partial) -> list[Output]:
        """Merge a partial; return the alerts and rollout events the changed window raises."""
        rollout = partial.rollout
        view = self.views.get(rollout)
        if view is None:
            view = self.views[rollout] = RolloutView(rollout, self.window_seconds)
            self.monitors[rollout] = RolloutMonitor(rollout, self.plan, self.window_seconds)
        system, start = view.apply(partial)
        state = self.state_of(rollout)
        monitor = self.monitors[rollout]
        now = self.clock()
        return monitor.observe(view, system, start, state, partial.read_at, partial.newest_ts, now)

    def release(self) -> list[Output]:
        """The timer: every fired trigger that has waited long enough goes out
        (:meth:`RolloutMonitor.release`), though no partial comes."""
        now = self.clock()
        return [
            out
            for rollout, monitor in self.monitors.items()
            if monitor.due is not None
            for out in monitor.release(self.state_of(rollout), now)
        ]

    def due(self) -> float | None:
        """When the timer releases the next waiting trigger (None: none waits)."""
        dues = [m.due for m in self.monitors.values()]
        return min((due for due in dues if due is not None), default=None)

    def gates(self, rollout: str) -> GateReport | None:
        """The current phase's gate verdicts for ``rollout`` (None if it is not running),
        judged again only once its windows or its state changed."""
        view, state = self.views.get(rollout), self.state_of(rollout)
        if not view or not state:
            return None
        key = (view.version, state)
        held = self.reports.get(rollout)
        if held is not None and held[0] == key:
            return held[1]
        report, self.looks[rollout] = evaluate(
            self.plan, view, state, self.looks.get(rollout, Looks())
        )
        self.reports[rollout] = key, report
        return report

    def advance(self, rollout: str) -> RolloutEvent | None:
        """With ``auto_advance``: the next phase's start once every gate passes.

        Never after the worker's own rollback: that holds until a person acts.
        """
        if not self.plan.auto_advance:
            return None
        report, state = self.gates(rollout), self.state_of(rollout)
        nxt = self.plan.phase(report.phase + 1) if report else None
        if state is None or nxt is None or report is None:
            return None
        if state.held_by_worker:
            return None
        if report.outcome != "pass":
            return None
        key = f"phasegate:{rollout}:advance:{report.phase + 1}:{state.updated_at}"
        return RolloutEvent(
            event_id=uuid5(NAMESPACE_URL, key),
            rollout=rollout,
            type="phase_started",
            weight=nxt.weight,
            phase=report.phase + 1,
            reason=f"auto-advance: every gate of phase {report.phase} passed",
            actor=WORKER,
        )

    def expire(self, now: float) -> None:
        before = int(now) - self.retention
        for view in self.views.values():
            view.expire(before)
        for monitor in self.monitors.values():
            monitor.forget(before)


def control_json(stage2: Stage2, rollout: str) -> dict[str, Any]:
    """Phase, weight, gate verdicts and open incidents of ``rollout``, for /status."""
    state = stage2.state_of(rollout)
    report = stage2.gates(rollout)
    monitor = stage2.monitors.get(rollout)
    return {
        "phase": None if state is None else state.phase,
        "weight": None if state is None else state.weight,
        "gates": None if report is None else report.to_json(),
        "incidents": sorted([*monitor.incidents, *monitor.sample_ratio.incidents])
        if monitor
        else [],
        "dry_run": sorted(t.name for t in stage2.plan.rollback if t.dry_run),
        "evidence": monitor.evidence() if monitor else {},
    }
