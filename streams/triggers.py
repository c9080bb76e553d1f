"""Rollback triggers in stage 2: emergency, partial, guardrails, recovery, sample ratio.

One :class:`RolloutMonitor` per rollout watches the candidate's merged windows as partials
arrive. Only events new to a window count (``streams.evidence``, so a replayed run is not
evidence twice); they feed one CUSUM per fixed-limit trigger of the plan
(``streams.sequential``) and a count of critical errors. Guardrails judge each closed
window against the baseline (``streams.guardrails``); the fixed-limit triggers also run
on the baseline (``streams.baseline_watch``) to tell a baseline-only degradation.

Every rollback alert says whether the cause is shared (judged once the baseline's events
read as late are in; a baseline's alert, once the candidate's are) and carries both
systems' figures; ``streams.alerts`` builds the alerts. A fired trigger waits for them
at most :data:`GRACE` seconds: of read time, as later partials tell, or of stage 2's
clock since it fired, as the next partial or stage 2's timer
(:meth:`RolloutMonitor.release`) finds: traffic that stops right after it never holds
the alert back. A trigger acts unless it is a dry run (``dry_run``) or the cause is
shared and the plan holds on one (``on_shared = "hold"``: a critical ``rollback_held``
alert instead).

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
  a restarted worker replaying the partials topic never acts on what came before; nor
  are events all made before it (a worker behind its topic reads them after the change);
- ids derive from (rollout, trigger, anchor, the window the incident opened in): a replay
  re-derives the same ids, and an incident whose rollback is in the log already is
  restored silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from math import inf
from uuid import UUID

from rollout.state import WORKER, RolloutState
from rollout.steering import step_back
from schemas.events import Alert, AlertAction, RolloutEvent
from schemas.metrics import quantile_of
from schemas.plan import Plan, Trigger
from streams.alerts import Alerts, Firing, read_in, rollback_reason
from streams.attribution import Counts
from streams.baseline_watch import BaselineWatch, Degraded
from streams.evidence import Evidence, Recent, RunSketch, WindowMarks, incident_id
from streams.guardrails import Guardrail, samples, span, tolerated
from streams.guardrails import observed as observed_in
from streams.sample_ratio import SampleRatioCheck
from streams.sequential import Cusum, RatioCusum
from streams.windows import RolloutView, first_window_after

Output = Alert | RolloutEvent
RECENT = 1_000  # evidence kept to re-judge after a person's change arrives late
GRACE = 10.0  # seconds a fired trigger waits at most for the baseline's events (module doc)
RELEASE_SECONDS = 1.0  # stage 2's timer: how often it releases what has waited GRACE
ROLLBACK = ":rollback"  # the suffix of an incident's rollback id (its alert's has none)


@dataclass
class Incident:
    name: str
    opened: int  # window start (epoch seconds) the incident opened in
    clean: int = 0  # critical errors: clean events since the last one


@dataclass(frozen=True)
class Decision:
    """A fired trigger, waiting until the baseline's events read as late are in."""

    firing: Firing
    read_at: float | None
    since: float | None  # read time of the evidence run's first events
    due: float  # stage 2's clock when the wait ends at the latest


@dataclass
class RolloutMonitor:
    """The trigger state of one rollout (see the module docstring)."""

    rollout: str
    plan: Plan
    window_seconds: int
    cusums: dict[str, Cusum] = field(default_factory=dict)
    guards: dict[str, Guardrail] = field(default_factory=dict)
    guarded: int = -1  # the last window the guardrails judged
    runs: dict[str, RunSketch] = field(default_factory=dict)  # latency bins of each run
    run_start: dict[str, int | None] = field(default_factory=dict)
    run_read: dict[str, float | None] = field(default_factory=dict)  # the run's first read
    incidents: dict[str, Incident] = field(default_factory=dict)
    samples: int = 0  # candidate events since the last reset
    critical: int = 0  # critical errors since the last reset or recovery
    anchor: RolloutEvent | None = None  # the last change a person made
    own: list[RolloutEvent] = field(default_factory=list)  # rollbacks the log lacks yet
    pending: list[Decision] = field(default_factory=list)  # fired, awaiting the baseline
    # the baseline's, awaiting the candidate's events, each with its due (as a Decision's)
    degraded: list[tuple[Degraded, float]] = field(default_factory=list)
    read: dict[str, float] = field(default_factory=dict)  # system -> newest read time
    now: float | None = None  # stage 2's clock at the latest partial or tick (None: none)

    def __post_init__(self) -> None:
        self.fixed = [t for t in self.plan.rollback if not t.guardrail]
        self.marks = WindowMarks(self.fixed)
        self.view = RolloutView(self.rollout, self.window_seconds)
        self.recent = Recent(RECENT)
        self.sample_ratio = SampleRatioCheck(self.rollout, self.plan, self.window_seconds)
        self.watch = BaselineWatch(self.plan)
        self.alerts = Alerts(self.rollout, self.plan, self.window_seconds)
        self.reset()

    def reset(self) -> None:
        """Forget the evidence (a new phase is judged on its own events)."""
        h = self.plan.sequential.threshold(len(self.plan.statistical_triggers))
        self.cusums = {
            t.name: Cusum(*t.shares(), threshold=h)
            for t in self.plan.statistical_triggers
            if not t.guardrail
        }
        k = len(self.plan.statistical_triggers)
        self.guards = {
            t.name: Guardrail(
                t, RatioCusum(threshold=self.plan.sequential.threshold(k, t.min_samples))
            )
            for t in self.plan.guardrails
        }
        self.guarded = -1
        self.runs = {name: RunSketch() for name in self.cusums}
        self.run_start = dict.fromkeys(self.cusums)
        self.run_read = dict.fromkeys(self.cusums)
        self.incidents = {}
        self.pending = []
        self.degraded = []
        self.watch.reset()
        self.samples = 0
        self.critical = 0

    def evidence(self) -> dict[str, dict]:
        """Each statistical trigger's score against its threshold, for /status."""
        cusums: dict[str, RatioCusum] = {**self.cusums}
        cusums.update({name: guard.cusum for name, guard in self.guards.items()})
        triggers = {t.name: t for t in self.plan.rollback}
        return {
            name: {
                "score": c.score,
                "threshold": c.threshold,
                "run": c.run_n,
                "compare": triggers[name].compare,
                "dry_run": triggers[name].dry_run,
            }
            for name, c in cusums.items()
        }

    # ------------------------------------------------------------------ observation
    def observe(
        self,
        view: RolloutView,
        system: str,
        start: int,
        state: RolloutState | None,
        read_at: datetime | None = None,
        newest: datetime | None = None,
        now: float | None = None,
    ) -> list[Output]:
        """React to a change of (``system``, window ``start``); return alerts and events.

        ``state`` is the rollout log's fold; ``read_at`` when stage 1 read the events,
        ``newest`` the newest event time among them; ``now`` stage 2's clock (None: a
        fired trigger waits on read times alone).
        """
        self.view, self.now = view, now
        when, made = _epoch(read_at), _epoch(newest)
        if when is not None:
            self.read[system] = max(self.read.get(system, when), when)
        out = self._follow(self._acting(state))
        if system == self.plan.roles.candidate:
            stats = view.window(system, start)
            evidence = self.marks.take(start, stats, when, made)
            if evidence is not None:
                self.recent.append(evidence)
                if self._counts(evidence):
                    out += self._judge(evidence, self._acting(state))
        elif system == self.plan.roles.baseline:
            out += self._watch(start, when, made)
        out += self._release(self._acting(state)) + self._release_degraded()
        out += self._guard(self._acting(state))
        return out + self.sample_ratio.observe(
            view, self._acting(state), self.anchor, (system, start)
        )

    def release(self, state: RolloutState | None, now: float) -> list[Output]:
        """Stage 2's timer at ``now``: what a partial coming now without events would
        release (a person's change followed, then every fired trigger whose wait is over)."""
        self.now = now
        out = self._follow(self._acting(state))
        return out + self._release(self._acting(state)) + self._release_degraded()

    @property
    def due(self) -> float | None:
        """When stage 2's timer releases the next waiting trigger (None: none waits)."""
        dues = [d.due for d in self.pending] + [due for _d, due in self.degraded]
        return min(dues, default=None)

    @property
    def _due(self) -> float:
        """The due of a wait that starts now: :data:`GRACE` on stage 2's clock."""
        return inf if self.now is None else self.now + GRACE

    def _acting(self, state: RolloutState | None) -> RolloutState | None:
        """The log's state with the worker's own rollbacks the log has not returned yet."""
        if state is None:
            return None
        self.own = [e for e in self.own if not state.has_applied(e.event_id)]
        for event in self.own:
            state = state.apply(event)
        return state

    def _follow(self, state: RolloutState | None) -> list[Output]:
        """On a person's change: reset, and judge the evidence read since it again."""
        anchor = state.last_by_person if state is not None else None
        if (anchor and anchor.event_id) == (self.anchor and self.anchor.event_id):
            return []
        self.anchor = anchor
        self.reset()
        out: list[Output] = []
        for evidence in self.recent:
            if self._counts(evidence):
                out += self._judge(evidence, self._acting(state))
        return out

    def _counts(self, evidence: Evidence) -> bool:
        """Whether ``evidence`` is evidence after the anchor (:meth:`Evidence.after`)."""
        return self.anchor is None or evidence.after(self.anchor.ts.timestamp())

    @property
    def _anchor_key(self) -> str:
        return str(self.anchor.event_id) if self.anchor is not None else "start"

    def _key(self, trigger: Trigger) -> str:
        """The incident key of ``trigger`` since the anchor (its alerts' ids derive from it)."""
        return f"{trigger.name}:{self._anchor_key}"

    @property
    def waiting(self) -> set[UUID]:
        """The ids of the alerts and rollbacks the fired triggers still waiting would raise
        (they do not depend on when they go out)."""
        fired = [(self._key(d.firing.trigger), d.firing.opened) for d in self.pending]
        ids = {
            incident_id(self.rollout, key, opened, end)
            for key, opened in fired
            for end in ("", ROLLBACK)
        }
        return ids | {self.alerts.baseline_id(d, self._anchor_key) for d, _ in self.degraded}

    def _judge(self, evidence: Evidence, state: RolloutState | None) -> list[Output]:
        """Feed every trigger; each acts on the state the ones before it left."""
        self.samples += evidence.n
        out: list[Output] = []
        for trigger in self.fixed:
            if trigger.metric == "critical_errors":
                fired = self._critical(trigger, evidence, state)
            else:
                fired = self._sequential(trigger, evidence, state)
            state = self._acted(fired, state)
            out += fired
        return out

    def _acted(self, fired: list[Output], state: RolloutState | None) -> RolloutState | None:
        """The state after the worker's own rollbacks in ``fired`` (kept until logged)."""
        for event in fired:
            if isinstance(event, RolloutEvent) and state is not None:
                self.own.append(event)
                state = state.apply(event)
        return state

    def _guard(self, state: RolloutState | None) -> list[Output]:
        """Judge every closed window the guardrails have not judged yet, in order."""
        view = self.view
        if not self.guards or view.end is None:
            return []
        end, first = view.end - self.window_seconds, max(self.guarded + 1, self._split_from)
        out: list[Output] = []
        for start in view.starts(self.plan.roles.candidate):
            if first <= start < end:
                self.guarded = start
                for guard in self.guards.values():
                    fired = self._differential(guard, start, state)
                    state = self._acted(fired, state)
                    out += fired
        return out

    def _differential(
        self, guard: Guardrail, start: int, state: RolloutState | None
    ) -> list[Output]:
        guard.judge(self.plan.roles, self.view, start)
        trigger, cusum = guard.trigger, guard.cusum
        incident = self.incidents.get(trigger.name)
        roles = self.plan.roles
        if incident is None and cusum.alarm and self.samples >= trigger.min_samples:
            opened = guard.run_start or start
            self.incidents[trigger.name] = Incident(trigger.name, opened)
            cand = span(self.view, roles.candidate, opened, start)
            base = span(self.view, roles.baseline, opened, start)
            seen, limit = observed_in(trigger, cand), tolerated(trigger, base)
            firing = Firing(trigger, opened, start, seen, samples(trigger, cand), limit)
            return self._fire(firing, state)
        if incident is not None and cusum.clear:
            del self.incidents[trigger.name]
            latest = self.view.window(roles.candidate, start)
            seen = observed_in(trigger, latest)
            return [self._recovered(trigger, incident, start, seen, samples(trigger, latest))]
        return []

    def _sequential(
        self, trigger: Trigger, evidence: Evidence, state: RolloutState | None
    ) -> list[Output]:
        name, cusum, run = trigger.name, self.cusums[trigger.name], self.runs[trigger.name]
        cusum.update(evidence.n, evidence.bad[name])
        if cusum.run_n == 0:
            self.run_start[name] = None
            run.clear()
        else:
            if self.run_start[name] is None:
                self.run_start[name], self.run_read[name] = evidence.start, evidence.read_at
            run.add(evidence.bins)
        incident = self.incidents.get(name)
        if incident is None and cusum.alarm and self.samples >= trigger.min_samples:
            opened = self.run_start[name] or evidence.start
            self.incidents[name] = Incident(name, opened)
            observed = _observed(trigger, cusum.run_n, cusum.run_bad, run)
            firing = Firing(trigger, opened, evidence.start, observed, cusum.run_n)
            return self._decide(firing, evidence.read_at, self.run_read[name], state)
        if incident is not None and cusum.clear:
            del self.incidents[name]
            bad, latest = evidence.bad[name], RunSketch(evidence.bins)
            observed = _observed(trigger, evidence.n, bad, latest)
            return [self._recovered(trigger, incident, evidence.start, observed, evidence.n)]
        return []

    def _critical(
        self, trigger: Trigger, evidence: Evidence, state: RolloutState | None
    ) -> list[Output]:
        """Fires once the critical errors since the reset exceed ``above`` (cumulative)."""
        critical = evidence.bad[trigger.name]
        self.critical += critical
        incident = self.incidents.get(trigger.name)
        if critical:
            if incident is None and self.critical > trigger.limit:
                self.incidents[trigger.name] = Incident(trigger.name, evidence.start)
                at, n = evidence.start, self.samples
                firing = Firing(trigger, at, at, float(self.critical), n)
                return self._decide(firing, evidence.read_at, None, state)
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
    def _decide(
        self, firing: Firing, read_at: float | None, since: float | None, state: RolloutState | None
    ) -> list[Output]:
        self.pending.append(Decision(firing, read_at, since, self._due))
        return self._release(state)

    def _release(self, state: RolloutState | None) -> list[Output]:
        """Fire the decisions whose baseline events are in (:meth:`_in`: attribution needs
        the same moments of both systems)."""
        out: list[Output] = []
        for d in list(self.pending):
            if self._in(self.plan.roles.baseline, d.read_at, d.firing.start, d.due):
                self.pending.remove(d)
                fired = self._fire(d.firing, state, _moments(d.since, d.read_at))
                state = self._acted(fired, state)
                out += fired
        return out

    def _in(self, system: str, read_at: float | None, start: int, due: float) -> bool:
        """Whether ``system``'s events read as late as ``read_at`` are in: read at least as
        late, or :data:`GRACE` seconds have passed (of read time, or stage 2's clock is at
        ``due``), or ``system`` has no recent traffic."""
        if read_at is None:
            return True
        newest, late = max(self.read.values(), default=0.0), self.read.get(system, -inf)
        waited = newest - read_at >= GRACE or (self.now is not None and self.now >= due)
        ws = self.window_seconds
        return late >= read_at or waited or not span(self.view, system, start - ws, start).count

    def _fire(
        self, f: Firing, state: RolloutState | None, moments: tuple[float, float] | None = None
    ) -> list[Output]:
        """The alert of a fired trigger, and the rollback it acts with, unless the plan
        holds it (a shared cause or a dry run). ``moments``: the read times of the evidence
        that fired it."""
        trigger = f.trigger
        key = self._key(trigger)
        event_id = incident_id(self.rollout, key, f.opened, ROLLBACK)
        if state is not None and state.has_applied(event_id):
            return []  # a replay: this incident's rollback is in the log already
        weight = state.weight if state is not None else 0
        target_phase: int | None = 0
        if trigger.action == "partial":
            target_phase = step_back(self.plan, state.phase) if state is not None else None
        target = self.plan.phase(target_phase).weight if target_phase else 0  # type: ignore[union-attr]
        would = target_phase is not None and weight > target
        read = self._read(trigger, moments)
        attribution = self.alerts.attribution(self.view, trigger, f.opened, f.start, read)
        held = attribution == "shared" and trigger.on_shared == "hold"
        acts = would and not held and not trigger.dry_run
        action = AlertAction(weight_from=weight, weight_to=target) if acts else None
        alert = self.alerts.fired(self.view, f, key, attribution, would, held, action)
        if not acts:
            return [alert]
        event = RolloutEvent(
            event_id=event_id,
            rollout=self.rollout,
            type="rollback",
            weight=target,
            phase=target_phase,
            reason=rollback_reason(trigger, f.observed, f.samples),
            actor=WORKER,
        )
        return [alert, event]

    def _read(
        self, trigger: Trigger, moments: tuple[float, float] | None
    ) -> tuple[Counts, Counts] | None:
        """The candidate's and the baseline's evidence read in ``moments``, if the baseline
        watches ``trigger`` (attribution judges on the same moments of both systems)."""
        if moments is None or trigger not in self.watch.triggers:
            return None
        name = trigger.name
        return read_in(self.recent, name, moments), read_in(self.watch.recent, name, moments)

    def _watch(self, start: int, when: float | None, made: float | None) -> list[Output]:
        """The baseline's own triggers: alert a degradation the candidate does not share."""
        baseline = self.plan.roles.baseline
        evidence = self.watch.marks.take(start, self.view.window(baseline, start), when, made)
        if evidence is None or not self._counts(evidence):
            return []
        out: list[Output] = []
        for d in self.watch.judge(evidence):
            if d.cleared:
                self.degraded = [p for p in self.degraded if p[0].trigger != d.trigger]
                if self.incidents.pop(f"{d.trigger.name}:baseline", None) is not None:
                    out.append(self.alerts.baseline(self.view, d, self._anchor_key))
            else:
                self.degraded.append((d, self._due))
        return out

    def _release_degraded(self) -> list[Output]:
        """Alert the baseline's degradations whose candidate events are in, unless shared."""
        out: list[Output] = []
        for waiting in list(self.degraded):
            d, due = waiting
            if not self._in(self.plan.roles.candidate, d.read_at, d.start, due):
                continue
            self.degraded.remove(waiting)
            read = self._read(d.trigger, _moments(d.since, d.read_at))
            key = f"{d.trigger.name}:baseline"
            if d.trigger.name not in self.incidents and not self.alerts.shared(self.view, d, read):
                self.incidents[key] = Incident(key, d.opened)
                out.append(self.alerts.baseline(self.view, d, self._anchor_key))
        return out

    def _recovered(
        self, trigger: Trigger, incident: Incident, start: int, observed: float, samples: int
    ) -> Alert:
        key = self._key(trigger)
        return self.alerts.recovered(trigger, key, incident.opened, start, observed, samples)

    @property
    def _split_from(self) -> int:
        """The first window wholly after the anchor (events before it are not evidence)."""
        return first_window_after(self.anchor and self.anchor.ts, self.window_seconds)

    def forget(self, before: int) -> None:
        self.marks.forget(before)


def _epoch(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _moments(since: float | None, read_at: float | None) -> tuple[float, float] | None:
    """The read times of an evidence run, if both ends are known."""
    return (since, read_at) if since and read_at else None


def _observed(trigger: Trigger, n: int, bad: int, latency: RunSketch) -> float:
    """The trigger's metric over ``n`` events: success rate, or the latency quantile."""
    if trigger.metric == "success_rate":
        return 1.0 - bad / n if n else 1.0
    return latency.quantile(quantile_of(trigger.metric)) or 0.0
