"""Rollback triggers in stage 2: emergency, partial, recovery; and the sample ratio check.

One :class:`RolloutMonitor` per rollout watches the candidate's merged windows as partials
arrive. Only events new to a window count (``streams.evidence``, so a replayed run is not
evidence twice); they feed one CUSUM per statistical trigger of the plan
(``streams.sequential``) and a count of critical errors.

An incident opens when a trigger fires and produces one alert (and, for a rollback, one
``rollback`` event on the rollout log); it stays open, silent, until the evidence clears
(the CUSUM is back at zero; for critical errors, ``min_samples`` clean events), which
produces one ``recovered`` alert. An alert shows the metric over the events that fired
it: the success rate or the latency quantile of the CUSUM's run, the critical errors.

A rollback holds:

- each trigger acts on the state the earlier ones left, the worker's own rollbacks
  included before the log returns them, so an emergency rollback to 0 and a step back
  judged in the same evaluation end at 0; no automatic action raises a weight;
- a change of weight or phase by a person (the *anchor*: start, promote, set-weight,
  rollback) resets the evidence, and only partials stage 1 read after it are evidence, so
  a restarted worker replaying the partials topic never acts on what came before;
- ids derive from (rollout, trigger, anchor, the window the incident opened in): a replay
  re-derives the same ids, and an incident whose rollback is in the log already is
  restored silently.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from rollout.state import WORKER, RolloutState
from rollout.steering import step_back
from schemas.events import Alert, AlertAction, AlertWindow, RolloutEvent
from schemas.metrics import quantile_of
from schemas.plan import Plan, Trigger
from streams.contributors import contributors
from streams.evidence import Evidence, RunSketch, WindowMarks, incident_id
from streams.sample_ratio import SampleRatioCheck
from streams.sequential import Cusum
from streams.windows import RolloutView, to_datetime

Output = Alert | RolloutEvent
RECENT = 1_000  # evidence kept to re-judge after a person's change arrives late


@dataclass
class Incident:
    name: str
    opened: int  # window start (epoch seconds) the incident opened in
    clean: int = 0  # critical errors: clean events since the last one


@dataclass
class RolloutMonitor:
    """The trigger state of one rollout (see the module docstring)."""

    rollout: str
    plan: Plan
    window_seconds: int
    cusums: dict[str, Cusum] = field(default_factory=dict)
    runs: dict[str, RunSketch] = field(default_factory=dict)  # latency bins of each run
    run_start: dict[str, int | None] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    samples: int = 0  # candidate events since the last reset
    critical: int = 0  # critical errors since the last reset or recovery
    anchor: RolloutEvent | None = None  # the last change a person made
    own: list[RolloutEvent] = field(default_factory=list)  # rollbacks the log lacks yet

    def __post_init__(self) -> None:
        self.marks = WindowMarks(self.plan.rollback)
        self.recent: deque[Evidence] = deque(maxlen=RECENT)
        self.sample_ratio = SampleRatioCheck(self.rollout, self.plan, self.window_seconds)
        self.reset()

    def reset(self) -> None:
        """Forget the evidence (a new phase is judged on its own events)."""
        h = self.plan.sequential.threshold(len(self.plan.statistical_triggers))
        self.cusums = {
            t.name: Cusum(*t.shares(), threshold=h) for t in self.plan.statistical_triggers
        }
        self.runs = {name: RunSketch() for name in self.cusums}
        self.run_start = dict.fromkeys(self.cusums)
        self.incidents = {}
        self.samples = 0
        self.critical = 0

    # ------------------------------------------------------------------ observation
    def observe(
        self,
        view: RolloutView,
        system: str,
        start: int,
        state: RolloutState | None,
        read_at: datetime | None = None,
    ) -> list[Output]:
        """React to a change of (``system``, window ``start``); return alerts and events.

        ``state`` is the rollout log's fold; ``read_at`` when stage 1 read the events.
        """
        out = self._follow(view, self._acting(state))
        if system == self.plan.roles.candidate:
            stats = view.window(system, start)
            when = None if read_at is None else read_at.timestamp()
            evidence = self.marks.take(start, stats, when)
            if evidence is not None:
                self.recent.append(evidence)
                if self._counts(evidence):
                    out += self._judge(view, evidence, self._acting(state))
        return out + self.sample_ratio.observe(
            view, self._acting(state), self.anchor, (system, start)
        )

    def _acting(self, state: RolloutState | None) -> RolloutState | None:
        """The log's state with the worker's own rollbacks the log has not returned yet."""
        if state is None:
            return None
        self.own = [e for e in self.own if not state.has_applied(e.event_id)]
        for event in self.own:
            state = state.apply(event)
        return state

    def _follow(self, view: RolloutView, state: RolloutState | None) -> list[Output]:
        """On a person's change: reset, and judge the evidence read since it again."""
        anchor = state.last_by_person if state is not None else None
        if (anchor and anchor.event_id) == (self.anchor and self.anchor.event_id):
            return []
        self.anchor = anchor
        self.reset()
        out: list[Output] = []
        for evidence in self.recent:
            if self._counts(evidence):
                out += self._judge(view, evidence, self._acting(state))
        return out

    def _counts(self, evidence: Evidence) -> bool:
        """Whether ``evidence`` was read after the anchor (unknown times always count)."""
        return (
            self.anchor is None
            or evidence.read_at is None
            or evidence.read_at > self.anchor.ts.timestamp()
        )

    @property
    def _anchor_key(self) -> str:
        return str(self.anchor.event_id) if self.anchor is not None else "start"

    def _judge(
        self, view: RolloutView, evidence: Evidence, state: RolloutState | None
    ) -> list[Output]:
        """Feed every trigger; each acts on the state the ones before it left."""
        self.samples += evidence.n
        out: list[Output] = []
        for trigger in self.plan.rollback:
            if trigger.metric == "critical_errors":
                fired = self._critical(view, trigger, evidence, state)
            else:
                fired = self._sequential(view, trigger, evidence, state)
            for event in fired:
                if isinstance(event, RolloutEvent) and state is not None:
                    self.own.append(event)
                    state = state.apply(event)
            out += fired
        return out

    def _sequential(
        self, view: RolloutView, trigger: Trigger, evidence: Evidence, state: RolloutState | None
    ) -> list[Output]:
        name, cusum, run = trigger.name, self.cusums[trigger.name], self.runs[trigger.name]
        cusum.update(evidence.n, evidence.bad[name])
        if cusum.run_n == 0:
            self.run_start[name] = None
            run.clear()
        else:
            if self.run_start[name] is None:
                self.run_start[name] = evidence.start
            run.add(evidence.bins)
        incident = self.incidents.get(name)
        if incident is None and cusum.alarm and self.samples >= trigger.min_samples:
            opened = self.run_start[name] or evidence.start
            self.incidents[name] = Incident(name, opened)
            observed = _observed(trigger, cusum.run_n, cusum.run_bad, run)
            return self._fire(view, trigger, opened, evidence.start, observed, cusum.run_n, state)
        if incident is not None and cusum.clear:
            del self.incidents[name]
            bad, latest = evidence.bad[name], RunSketch(evidence.bins)
            observed = _observed(trigger, evidence.n, bad, latest)
            return [self._recovered(trigger, incident, evidence.start, observed, evidence.n)]
        return []

    def _critical(
        self, view: RolloutView, trigger: Trigger, evidence: Evidence, state: RolloutState | None
    ) -> list[Output]:
        """Fires once the critical errors since the reset exceed ``above`` (cumulative)."""
        critical = evidence.bad[trigger.name]
        self.critical += critical
        incident = self.incidents.get(trigger.name)
        if critical:
            if incident is None and self.critical > trigger.limit:
                self.incidents[trigger.name] = Incident(trigger.name, evidence.start)
                at = evidence.start
                observed = float(self.critical)
                return self._fire(view, trigger, at, at, observed, self.samples, state)
            if incident is not None:
                incident.clean = 0
            return []
        if incident is not None:
            incident.clean += evidence.n
            if incident.clean >= trigger.min_samples:
                del self.incidents[trigger.name]
                self.critical = 0
                return [self._recovered(trigger, incident, evidence.start, 0.0, incident.clean)]
        return []

    # ------------------------------------------------------------------ outputs
    def _window(self, first: int, last: int) -> AlertWindow:
        return AlertWindow(start=to_datetime(first), end=to_datetime(last + self.window_seconds))

    def _fire(
        self,
        view: RolloutView,
        trigger: Trigger,
        opened: int,
        start: int,
        observed: float,
        samples: int,
        state: RolloutState | None,
    ) -> list[Output]:
        key = f"{trigger.name}:{self._anchor_key}"
        event_id = incident_id(self.rollout, key, opened, ":rollback")
        if state is not None and state.has_applied(event_id):
            return []  # a replay: this incident's rollback is in the log already
        weight = state.weight if state is not None else 0
        target_phase: int | None = 0
        if trigger.action == "partial":
            target_phase = step_back(self.plan, state.phase) if state is not None else None
        target = self.plan.phase(target_phase).weight if target_phase else 0  # type: ignore[union-attr]
        acts = target_phase is not None and weight > target
        if trigger.metric == "critical_errors":
            kind = "critical_error"
        elif trigger.action == "emergency":
            kind = "emergency_rollback"
        else:
            kind = "partial_rollback" if acts else "gate_failed"
        alert = Alert(
            alert_id=incident_id(self.rollout, key, opened),
            rollout=self.rollout,
            system=self.plan.roles.candidate,
            severity="critical" if trigger.action == "emergency" else "warning",
            kind=kind,
            metric=trigger.metric,
            observed=observed,
            threshold=trigger.limit,
            window=self._window(opened, start),
            samples=samples,
            action=AlertAction(weight_from=weight, weight_to=target) if acts else None,
            contributors=contributors(view, self.plan.roles, opened, start),
        )
        if not acts:
            return [alert]
        reason = (
            f"{trigger.action} rollback by trigger {trigger.name}: {trigger.metric} "
            f"{observed:.4g} (limit {trigger.limit:g}) over {samples} events"
        )
        event = RolloutEvent(
            event_id=event_id,
            rollout=self.rollout,
            type="rollback",
            weight=target,
            phase=target_phase,
            reason=reason,
            actor=WORKER,
        )
        return [alert, event]

    def _recovered(
        self, trigger: Trigger, incident: Incident, start: int, observed: float, samples: int
    ) -> Alert:
        key = f"{trigger.name}:{self._anchor_key}"
        return Alert(
            alert_id=incident_id(self.rollout, key, incident.opened, ":recovered"),
            rollout=self.rollout,
            system=self.plan.roles.candidate,
            severity="info",
            kind="recovered",
            metric=trigger.metric,
            observed=observed,
            threshold=trigger.limit,
            window=self._window(incident.opened, start),
            samples=samples,
        )

    def forget(self, before: int) -> None:
        self.marks.forget(before)


def _observed(trigger: Trigger, n: int, bad: int, latency: RunSketch) -> float:
    """The trigger's metric over ``n`` events: success rate, or the latency quantile."""
    if trigger.metric == "success_rate":
        return 1.0 - bad / n if n else 1.0
    return latency.quantile(quantile_of(trigger.metric)) or 0.0
