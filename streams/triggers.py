"""Rollback triggers in stage 2: emergency, partial, sample ratio mismatch, recovery.

One :class:`RolloutMonitor` per rollout watches the candidate's merged windows as partials
arrive. Each window's new events since it was last seen (a high-water mark per window,
so a replayed run is not counted twice) feed one CUSUM per statistical trigger of the
plan (``streams.sequential``); a critical error fires at once.

An incident opens when a trigger fires and produces one alert (and, for a rollback, one
``rollback`` event on the rollout log); it stays open, silent, until the evidence clears
(the CUSUM is back at zero; for critical errors, ``min_samples`` clean events), which
produces one ``recovered`` alert. Ids derive from the rollout, trigger and the window the
incident opened in, so a replay after a restart repeats the same ids (consumers and the
rollout fold de-duplicate them).

A change of weight or phase by anybody but the worker (a human's start, promote or
rollback) resets the evidence: the new phase is judged on its own events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import NAMESPACE_URL, UUID, uuid5

from rollout.state import RolloutState
from rollout.steering import step_back
from schemas.events import Alert, AlertAction, AlertWindow, RolloutEvent
from schemas.plan import Plan, Trigger, quantile_of
from schemas.stats import split_p_value
from streams.aggregate import WindowStats
from streams.sequential import Cusum
from streams.windows import RolloutView, to_datetime

WORKER = "phasegate-worker"
Output = Alert | RolloutEvent


def incident_id(rollout: str, name: str, opened: int, suffix: str = "") -> UUID:
    return uuid5(NAMESPACE_URL, f"phasegate:{rollout}:incident:{name}:{opened}{suffix}")


def bad_events(trigger: Trigger, stats: WindowStats) -> float:
    """The trigger's "bad" events in ``stats``: failures, or events over the limit."""
    if trigger.metric == "success_rate":
        return stats.count - stats.successes
    if trigger.metric == "critical_errors":
        return stats.critical
    return stats.latency.count_above(trigger.limit)


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
    run_start: dict[str, int | None] = field(default_factory=dict)
    seen: dict[int, dict[str, float]] = field(default_factory=dict)  # window -> counts
    incidents: dict[str, Incident] = field(default_factory=dict)
    samples: int = 0  # candidate events since the last reset
    clean: int = 0  # candidate events since the last critical error
    regime: tuple[int, int] | None = None
    generation: int = 0
    split_checked: int = -1  # end of the span the last sample ratio check covered

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the evidence (a new phase is judged on its own events)."""
        h = self.plan.sequential.threshold(len(self.plan.statistical_triggers))
        self.cusums = {
            t.name: Cusum(*t.shares(), threshold=h) for t in self.plan.statistical_triggers
        }
        self.run_start = dict.fromkeys(self.cusums)
        self.incidents = {}
        self.samples = 0
        self.generation += 1

    # ------------------------------------------------------------------ observation
    def observe(
        self, view: RolloutView, system: str, start: int, state: RolloutState | None
    ) -> list[Output]:
        """React to a change of (``system``, window ``start``); return alerts and events."""
        self._follow(state)
        if system != self.plan.roles.candidate:
            return self._sample_ratio(view, state)
        stats = view.window(system, start)
        counts = {"n": stats.count, **{t.name: bad_events(t, stats) for t in self.plan.rollback}}
        before = self.seen.get(start, {})
        delta = {k: max(0.0, v - before.get(k, 0.0)) for k, v in counts.items()}
        self.seen[start] = {k: max(v, before.get(k, 0.0)) for k, v in counts.items()}
        n = int(delta["n"])
        if n == 0 and not any(delta.values()):
            return []
        self.samples += n
        out: list[Output] = []
        for trigger in self.plan.rollback:
            if trigger.metric == "critical_errors":
                out += self._critical(trigger, view, start, int(delta[trigger.name]), n, state)
            else:
                out += self._sequential(trigger, view, start, n, int(delta[trigger.name]), state)
        return out + self._sample_ratio(view, state)

    def _follow(self, state: RolloutState | None) -> None:
        if state is None:
            return
        regime = (state.weight, state.phase)
        if self.regime is not None and regime != self.regime:
            last = state.last
            if last is None or last.actor != WORKER:
                self.reset()
        self.regime = regime

    def _sequential(
        self,
        trigger: Trigger,
        view: RolloutView,
        start: int,
        n: int,
        bad: int,
        state: RolloutState | None,
    ) -> list[Output]:
        cusum = self.cusums[trigger.name]
        cusum.update(n, bad)
        if cusum.run_n == 0:
            self.run_start[trigger.name] = None
        elif self.run_start[trigger.name] is None:
            self.run_start[trigger.name] = start
        incident = self.incidents.get(trigger.name)
        if incident is None and cusum.alarm and self.samples >= trigger.min_samples:
            opened = self.run_start[trigger.name] or start
            self.incidents[trigger.name] = Incident(trigger.name, opened)
            observed = self._observed(trigger, view, opened, start, cusum)
            return self._fire(trigger, opened, start, observed, cusum.run_n, state)
        if incident is not None and cusum.clear:
            del self.incidents[trigger.name]
            observed = self._observed(trigger, view, start, start, cusum)
            return [self._recovered(trigger, incident, start, observed)]
        return []

    def _observed(
        self, trigger: Trigger, view: RolloutView, first: int, last: int, cusum: Cusum
    ) -> float:
        """The metric over the evidence run (success rate, or the latency quantile)."""
        if trigger.metric == "success_rate":
            share = cusum.run_share
            return 1.0 - share if share is not None else 1.0
        span = last + self.window_seconds - first
        stats = view.rolling(self.plan.roles.candidate, span, last + self.window_seconds)
        return stats.latency_quantile(quantile_of(trigger.metric)) or 0.0

    def _critical(
        self,
        trigger: Trigger,
        view: RolloutView,
        start: int,
        critical: int,
        n: int,
        state: RolloutState | None,
    ) -> list[Output]:
        incident = self.incidents.get(trigger.name)
        if critical > trigger.limit:
            if incident is None:
                self.incidents[trigger.name] = Incident(trigger.name, start)
                return self._fire(trigger, start, start, float(critical), n, state)
            incident.clean = 0
            return []
        if incident is not None:
            incident.clean += n
            if incident.clean >= trigger.min_samples:
                del self.incidents[trigger.name]
                return [self._recovered(trigger, incident, start, 0.0)]
        return []

    # ------------------------------------------------------------------ outputs
    def _window(self, first: int, last: int) -> AlertWindow:
        return AlertWindow(start=to_datetime(first), end=to_datetime(last + self.window_seconds))

    def _fire(
        self,
        trigger: Trigger,
        opened: int,
        start: int,
        observed: float,
        samples: int,
        state: RolloutState | None,
    ) -> list[Output]:
        key = f"{trigger.name}:{self.generation}"
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
        )
        if not acts:
            return [alert]
        reason = (
            f"{trigger.action} rollback by trigger {trigger.name}: {trigger.metric} "
            f"{observed:.4g} (limit {trigger.limit:g}) over {samples} events"
        )
        event = RolloutEvent(
            event_id=incident_id(self.rollout, key, opened, ":rollback"),
            rollout=self.rollout,
            type="rollback",
            weight=target,
            phase=target_phase,
            reason=reason,
            actor=WORKER,
        )
        return [alert, event]

    def _recovered(
        self, trigger: Trigger, incident: Incident, start: int, observed: float
    ) -> Alert:
        key = f"{trigger.name}:{self.generation}"
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
            samples=self.cusums[trigger.name].run_n if trigger.name in self.cusums else 0,
        )

    # ------------------------------------------------------------------ sample ratio
    def _sample_ratio(self, view: RolloutView, state: RolloutState | None) -> list[Output]:
        """Warn once while the split of units contradicts the weight (chi-square).

        Units, not events: routing is sticky by unit, so all of a unit's events go one way
        and a chi-square on events overstates the evidence about as many times as a unit
        sends events. Each window counts its distinct units routed at the configured weight
        (so the moments around a weight change are not mismatches), fallback copies left
        out (a candidate failure is not a baseline unit). A unit active in k of the span's
        windows counts k times: the statistic is divided by the number of windows, a bound
        that keeps the test conservative. One check per window, once the two after it have
        begun (stage 2 applies one partial at a time; the newest windows are still
        filling): a healthy rollout warns in at most ``p_value`` of the checks.
        """
        cfg, name = self.plan.sample_ratio, "sample-ratio"
        if state is None or view.end is None or not 0 < state.weight < 100:
            return []
        end = view.end - 2 * self.window_seconds
        if end <= self.split_checked:
            return []
        self.split_checked = end
        first = end - max(cfg.window_seconds, self.window_seconds)
        cand = self._units(view, self.plan.roles.candidate, first, end, state.weight)
        base = self._units(view, self.plan.roles.baseline, first, end, state.weight)
        windows = len(set(cand) | set(base))
        c, total = sum(cand.values()), sum(cand.values()) + sum(base.values())
        if total < cfg.min_samples:
            return []
        p = split_p_value(c / windows, total / windows, state.weight / 100)
        if p is None:
            return []
        incident = self.incidents.get(name)
        if incident is None and p < cfg.p_value:
            self.incidents[name] = Incident(name, first)
            return [self._split_alert(name, first, end, c / total, state.weight, total, "warning")]
        if incident is not None and p >= 0.1:  # clearly consistent again
            del self.incidents[name]
            share = c / total
            return [
                self._split_alert(name, incident.opened, end, share, state.weight, total, "info")
            ]
        return []

    @staticmethod
    def _units(view: RolloutView, system: str, first: int, end: int, weight: int) -> dict[int, int]:
        """Distinct units routed at ``weight``, per window of ``system`` in [first, end)."""
        counts = {s: view.window(system, s).units[weight] for s in view.starts(system)}
        return {s: n for s, n in counts.items() if first <= s < end and n}

    def _split_alert(
        self, name: str, opened: int, end: int, share: float, weight: int, total: int, severity: str
    ) -> Alert:
        suffix = "" if severity == "warning" else ":recovered"
        return Alert(
            alert_id=incident_id(self.rollout, f"{name}:{self.generation}", opened, suffix),
            rollout=self.rollout,
            system=self.plan.roles.candidate,
            severity=severity,  # type: ignore[arg-type]
            kind="sample_ratio_mismatch" if severity == "warning" else "recovered",
            metric="candidate_share",
            observed=share,
            threshold=weight / 100,
            window=AlertWindow(start=to_datetime(opened), end=to_datetime(end)),
            samples=total,
        )

    def forget(self, before: int) -> None:
        self.seen = {s: c for s, c in self.seen.items() if s >= before}
