"""The alerts of one rollout's triggers: what fired, over which windows, and why.

:class:`Alerts` builds each :class:`~schemas.events.Alert` the triggers of
``streams.triggers`` raise: its kind (:func:`kind`), id, window and severity, whether
the cause is shared (``streams.attribution``), both systems' figures, the candidate's
top contributors to the trigger's metric (``streams.contributors``), and the text of the
rollback it acts with (:func:`rollback_reason`). The triggers judge; this module only
says what they judged.

The kinds: a fixed-limit trigger's alert is ``emergency_rollback``, ``partial_rollback``
or ``critical_error`` (:data:`FIXED_ROLLBACK_KINDS`), a guardrail's ``guardrail``; all of
them act (:data:`ROLLBACK_KINDS`: their ``action`` says how) unless the trigger is a dry
run or there is nothing left to roll back. ``rollback_held`` (:data:`HELD`) would have
acted but for a shared cause; ``gate_failed``, a partial rollback with no phase to step
back to; ``baseline_degraded`` and ``recovered`` never act.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from schemas.events import Alert, AlertAction, AlertWindow, Attribution, Figure
from schemas.metrics import metric
from schemas.plan import Plan, Trigger
from streams.attribution import Counts, attribute, counts, figures
from streams.baseline_watch import Degraded
from streams.contributors import contributors
from streams.evidence import Evidence, incident_id
from streams.guardrails import observed as observed_in
from streams.guardrails import reference, span
from streams.windows import RolloutView, to_datetime

EMERGENCY, PARTIAL, CRITICAL = "emergency_rollback", "partial_rollback", "critical_error"
GUARDRAIL, HELD, GATE_FAILED = "guardrail", "rollback_held", "gate_failed"
FIXED_ROLLBACK_KINDS = frozenset({EMERGENCY, PARTIAL, CRITICAL})
"""The kinds of a fixed-limit trigger's alert that rolls back."""
ROLLBACK_KINDS = FIXED_ROLLBACK_KINDS | {GUARDRAIL}
"""The kinds of an alert that rolls back (unless a dry run, or nothing is left to)."""


def kind(trigger: Trigger, would: bool, held: bool) -> str:
    """The alert's kind: what fired, and what it does (or would do, in a dry run)."""
    if held:
        return HELD
    if trigger.guardrail:
        return GUARDRAIL
    if trigger.metric == "critical_errors":
        return CRITICAL
    if trigger.action == "emergency":
        return EMERGENCY
    return PARTIAL if would else GATE_FAILED


def rollback_reason(trigger: Trigger, observed: float, samples: int) -> str:
    """The ``reason`` of the rollback a trigger acts with."""
    return (
        f"{trigger.action} rollback by trigger {trigger.name}: {trigger.metric} "
        f"{observed:.4g} (limit {trigger.limit:g}) over {samples} "
        f"{metric(trigger.metric).sample_name}"
    )


def read_in(evidence: Iterable[Evidence], name: str, moments: tuple[float, float]) -> Counts:
    """Bad events of trigger ``name`` and events among the ``evidence`` read in ``moments``."""
    first, last = moments
    taken = [e for e in evidence if e.read_at is not None and first <= e.read_at <= last]
    return sum(e.bad[name] for e in taken), sum(e.n for e in taken)


@dataclass(frozen=True)
class Firing:
    """A trigger that fired: its incident opened in window ``opened``, fired in ``start``;
    its metric ``observed`` over ``samples`` events; ``threshold`` if not its limit."""

    trigger: Trigger
    opened: int
    start: int
    observed: float
    samples: int
    threshold: float | None = None


@dataclass(frozen=True)
class Alerts:
    """The alerts of one rollout's triggers (see the module docstring)."""

    rollout: str
    plan: Plan
    window_seconds: int

    def fired(
        self,
        view: RolloutView,
        f: Firing,
        key: str,
        attribution: Attribution,
        would: bool,
        held: bool,
        action: AlertAction | None,
    ) -> Alert:
        """The alert of ``f`` (incident ``key``) and its ``action`` if it acts; ``would``:
        there is a weight to roll back, ``held``: the plan holds on its shared cause."""
        trigger = f.trigger
        threshold = trigger.limit if f.threshold is None else f.threshold
        return Alert(
            alert_id=incident_id(self.rollout, key, f.opened),
            rollout=self.rollout,
            system=self.plan.roles.candidate,
            severity="critical" if trigger.action == "emergency" or held else "warning",
            kind=kind(trigger, would, held),
            metric=trigger.metric,
            observed=f.observed,
            threshold=threshold,
            window=self.window(f.opened, f.start),
            samples=f.samples,
            action=action,
            dry_run=trigger.dry_run,
            attribution=attribution,
            figures=self.figures(view, trigger, f.opened, f.start),
            contributors=contributors(
                view, self.plan.roles, f.opened, f.start, metric(trigger.metric), threshold
            ),
        )

    def recovered(
        self, trigger: Trigger, key: str, opened: int, start: int, observed: float, samples: int
    ) -> Alert:
        """The end of incident ``key`` opened in window ``opened``: the evidence cleared."""
        return Alert(
            alert_id=incident_id(self.rollout, key, opened, ":recovered"),
            rollout=self.rollout,
            system=self.plan.roles.candidate,
            severity="info",
            kind="recovered",
            metric=trigger.metric,
            observed=observed,
            threshold=trigger.limit,
            window=self.window(opened, start),
            samples=samples,
            dry_run=trigger.dry_run,
        )

    def baseline(self, view: RolloutView, d: Degraded, anchor: str) -> Alert:
        """The baseline's own trigger ``d`` fired (``baseline_degraded``) or cleared."""
        baseline = self.plan.roles.baseline
        alerted = not d.cleared
        return Alert(
            alert_id=self.baseline_id(d, anchor),
            rollout=self.rollout,
            system=baseline,
            severity="warning" if alerted else "info",
            kind="baseline_degraded" if alerted else "recovered",
            metric=d.trigger.metric,
            observed=observed_in(d.trigger, span(view, baseline, d.opened, d.start)),
            threshold=d.trigger.limit,
            window=self.window(d.opened, d.start),
            samples=d.samples,
            dry_run=d.trigger.dry_run,
            attribution="baseline-only" if alerted else None,
            figures=self.figures(view, d.trigger, d.opened, d.start) if alerted else [],
        )

    def baseline_id(self, d: Degraded, anchor: str) -> UUID:
        """The id of the alert :meth:`baseline` gives for ``d`` since ``anchor``."""
        key = f"{d.trigger.name}:baseline:{anchor}"
        return incident_id(self.rollout, key, d.opened, ":recovered" if d.cleared else "")

    def attribution(
        self,
        view: RolloutView,
        trigger: Trigger,
        opened: int,
        start: int,
        read: tuple[Counts, Counts] | None = None,
    ) -> Attribution:
        """Shared or candidate-specific: on ``read`` (the candidate's and the baseline's
        events read in the moments that fired it) if the baseline has any, else on the
        alert's last two windows."""
        roles = self.plan.roles
        before = counts(trigger, reference(view, roles.baseline, opened))
        if read is not None and read[1][1]:
            return attribute(trigger, *read, before)
        first = max(opened, start - self.window_seconds)
        cand = counts(trigger, span(view, roles.candidate, first, start))
        base = counts(trigger, span(view, roles.baseline, first, start))
        return attribute(trigger, cand, base, before)

    def shared(
        self, view: RolloutView, d: Degraded, read: tuple[Counts, Counts] | None = None
    ) -> bool:
        """Whether the candidate degraded with the baseline (the roles of attribution
        swapped: the candidate against its own level, the baseline against it); on
        ``read`` (the candidate's and the baseline's events read in the moments that fired
        it) if the candidate has any, else on the alert's last two windows."""
        roles, first = self.plan.roles, max(d.opened, d.start - self.window_seconds)
        before = counts(d.trigger, reference(view, roles.candidate, first))
        if read is not None and read[0][1]:
            return attribute(d.trigger, read[1], read[0], before) == "shared"
        base = counts(d.trigger, span(view, roles.baseline, first, d.start))
        cand = counts(d.trigger, span(view, roles.candidate, first, d.start))
        return attribute(d.trigger, base, cand, before) == "shared"

    def figures(self, view: RolloutView, trigger: Trigger, opened: int, start: int) -> list[Figure]:
        """Both systems' figures over the alert's window."""
        systems = (self.plan.roles.candidate, self.plan.roles.baseline)
        return figures(trigger, {s: span(view, s, opened, start) for s in systems})

    def window(self, first: int, last: int) -> AlertWindow:
        return AlertWindow(start=to_datetime(first), end=to_datetime(last + self.window_seconds))
