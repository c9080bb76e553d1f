"""The dashboard's data: the worker's status, the rollout log and the alerts, and its one
write, a weight control action appended to the rollout log.

:class:`Dashboard` composes the pieces (each injectable, so tests can swap one for a
fake): :func:`~dashboard.worker_client.fetch_status`, a :class:`~rollout.log.RolloutLog`,
an :class:`~dashboard.feeds.AlertLog` and a :class:`~rollout.writer.RolloutWriter`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dashboard import summary
from dashboard.feeds import AlertLog
from dashboard.worker_client import WorkerUnavailable, fetch_status, status_url
from rollout import steering
from rollout.log import RolloutLog
from rollout.state import RolloutState
from rollout.steering import Refused, Request
from rollout.writer import NotWritten, RolloutWriter
from schemas.alert_text import evidence, sample_name, why
from schemas.base import now
from schemas.events import Alert, RolloutEvent
from schemas.plan import Plan, load_plan
from schemas.settings import Settings

HISTORY = 50
"""Rollout events shown per rollout (newest)."""
Json = dict[str, Any]


def event_json(event: RolloutEvent) -> Json:
    return event.model_dump(mode="json", by_alias=True)


def state_json(state: RolloutState, plan: Plan) -> Json:
    """The rollout's weight and phase, what the plan allows next, and its recent history."""
    nxt = steering.next_phase(plan, state)
    phase = plan.phase(state.phase)
    return {
        "weight": state.weight,
        "phase": state.phase,
        "phase_name": phase.name if phase else "not running",
        "phase_names": [p.name for p in plan.phases],
        "phase_by_weight": steering.phase_of(plan, state.weight),
        "updated_at": state.updated_at.isoformat() if state.updated_at else None,
        "next_weight": steering.next_weight(plan, state.weight),
        "next_phase": None if nxt is None else {"phase": nxt[0], "weight": nxt[1]},
        "phase_weights": list(steering.weights(plan)),
        "quick_weights": steering.quick_weights(plan),
        "max_weight": steering.ceiling(plan, state.weight),
        "rollback_phases": [
            {"phase": k, "weight": plan.phases[k - 1].weight, "name": plan.phases[k - 1].name}
            for k in steering.rollback_phases(plan, state)
        ],
        "history": [event_json(e) for e in state.history[-HISTORY:]],
        "weights": weight_steps(state),
    }


def weight_steps(state: RolloutState) -> list[Json]:
    """The weight after each event of the history: the weight-over-time chart."""
    steps, folded = [], RolloutState(rollout=state.rollout)
    for event in state.history:
        folded = folded.apply(event)
        steps.append({"ts": event.ts.isoformat(), "weight": folded.weight})
    return steps


def alert_json(alert: Alert) -> Json:
    """The alert as the contract has it, plus in words ``evidence`` (its window and both
    systems' figures), ``why`` (its top contributors) and what its samples are
    (``counted``: events, or verdicts for feedback)."""
    return alert.model_dump(mode="json", by_alias=True) | {
        "evidence": evidence(alert),
        "why": why(alert),
        "counted": sample_name(alert),
    }


class Dashboard:
    """Everything the page shows, and the weight control (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        fetch: Callable[[Settings, str | None], Mapping[str, Any]] = fetch_status,
        rollout_log: RolloutLog | None = None,
        alert_log: AlertLog | None = None,
        writer: RolloutWriter | None = None,
        plan: Plan | None = None,
        refresh_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.fetch = fetch
        self.rollout_log = rollout_log or RolloutLog(settings)
        self.alert_log = alert_log or AlertLog(settings)
        self._writer = writer
        self.plan = plan or load_plan(settings.plan)  # PlanError names the file and field
        self.refresh_s = refresh_s

    def start(self) -> Dashboard:
        self.rollout_log.follower.start()
        self.alert_log.follower.start()
        return self

    def close(self) -> None:
        self.rollout_log.follower.close()
        self.alert_log.follower.close()
        if self._writer is not None:
            self._writer.close()

    @property
    def writer(self) -> RolloutWriter:
        if self._writer is None:  # created on the first action: a read-only page never writes
            self._writer = RolloutWriter(self.settings)
        return self._writer

    def status(self, rollout: str | None = None) -> tuple[Mapping[str, Any] | None, str | None]:
        """The worker's /status (of ``rollout`` only, if given), or None and why not."""
        try:
            return self.fetch(self.settings, rollout), None
        except WorkerUnavailable as exc:
            return None, str(exc)

    def gates(self, rollout: str) -> Mapping[str, Any] | None:
        """The worker's gate report of ``rollout``; :class:`Refused` if it cannot be read."""
        status, error = self.status(rollout)
        if status is None:
            raise Refused(f"the gates cannot be read: {error}")
        return (status.get("control", {}).get(rollout) or {}).get("gates")

    def snapshot(self, span: int | None = None) -> Json:
        """The page's data: per rollout its figures, state, gates and alerts."""
        status, error = self.status()
        views = (status or {}).get("rollouts", {})
        names = sorted(set(views) | set(self.rollout_log.rollouts()))
        rollouts = []
        for name in names:
            view = views.get(name) or {"rollout": name, "rolling": {}, "systems": {}}
            control = (status or {}).get("control", {}).get(name)
            rollouts.append(
                {
                    **summary.summarize(view, span, control),
                    "rollout": name,
                    "state": state_json(self.rollout_log.state(name), self.plan),
                    "alerts": [alert_json(a) for a in self.alert_log.recent(name)[:20]],
                    "alert_counts": {
                        kind: n for (r, kind), n in self.alert_log.counts.items() if r == name
                    },
                }
            )
        followers = (self.rollout_log.follower, self.alert_log.follower)
        return {
            "generated_at": now().isoformat(),
            "refresh_seconds": self.refresh_s,
            "worker": {
                "url": status_url(self.settings),
                "ok": status is not None,
                "error": error,
                "counters": (status or {}).get("counters", {}),
            },
            "logs": {
                "ready": all(f.caught_up.is_set() for f in followers),
                "errors": [f.error for f in followers if f.error],
            },
            "rollouts": rollouts,
        }

    def act(self, rollout: str, action: str, body: Mapping[str, Any]) -> RolloutEvent:
        """Append the event for ``action``; :class:`Refused` or :class:`NotWritten` if not."""
        if not self.rollout_log.follower.caught_up.is_set():
            raise NotWritten("the rollout log has not been read yet; try again in a moment")
        state = self.rollout_log.state(rollout)
        event = steering.decide(
            self.plan, state, request_of(action, body), lambda: self.gates(rollout)
        )
        self.writer.append(event)  # the state follows when the follower reads it back
        return event


def request_of(action: str, body: Mapping[str, Any]) -> Request:
    """The page's JSON body as a steering request (the actor defaults to "dashboard")."""
    return Request(
        action=action,
        actor=str(body.get("actor") or "").strip() or "dashboard",
        reason=str(body.get("reason") or ""),
        weight=body.get("weight"),
        to_phase=body.get("to_phase"),
        confirm=body.get("confirm") is True,
        force=body.get("force") is True,
    )


__all__ = ["Dashboard", "NotWritten"]
