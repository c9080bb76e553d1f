"""The sample ratio check: does the split of units since the last change match the weight?

Routing is sticky by unit, so the evidence about the Router is in *units*, not events:
under a correct Router each unit goes to the candidate with probability weight/100,
independently of when it first shows up. Stage 1 samples each window's distinct units by
routed weight (``streams.units``: exact below a hash bound, fallback copies left out);
this check unions the windows since the *anchor* (the last change a person made) into
one sample per system, so a unit active in many windows counts once, and feeds the
candidate's share of them to a mixture SPRT (``schemas.stats.split_evidence``).

The SPRT is valid under continuous looking: a healthy rollout warns at most ``p_value``
of the time per anchor and weight, however long it runs. When the union outgrows its
capacity it keeps a smaller hash range (level L, a fixed random subset of the units);
level L spends ``p_value x 6 / (pi^2 (L + 1)^2)`` of the budget, which sums to
``p_value``. The union takes a window once the two after it have begun, and merges a
taken window again when a partial adds units to it (a partition that lags behind the
others, a replay): a union, so a unit still counts once. One check per new window or
late unit.

Once it warns, the evidence stands: the warning stays open (no "recovered") until a
person changes the weight or phase, which starts a new span.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rollout.state import RolloutState
from schemas.events import Alert, AlertWindow, RolloutEvent
from schemas.plan import Plan
from schemas.stats import split_evidence
from streams.evidence import incident_id
from streams.units import UnitSample
from streams.windows import RolloutView, first_window_after, to_datetime

NAME = "sample-ratio"
CAPACITY = 1 << 15


def alpha_at(p_value: float, level: int) -> float:
    """The share of ``p_value`` a span sampled at ``level`` may spend."""
    return p_value * 6 / (math.pi**2 * (level + 1) ** 2)


@dataclass
class SampleRatioCheck:
    """The sample ratio check of one rollout (see the module docstring)."""

    rollout: str
    plan: Plan
    window_seconds: int
    capacity: int = CAPACITY  # units per system the span keeps before it samples
    span: tuple[str, int] = ("", 0)  # (anchor, weight) the units are counted for
    first: int | None = None  # the first window in the span
    checked: int = -1  # windows starting before this are in the span
    floor: int = -1  # the span's first possible window (after the anchor)
    units: dict[str, UnitSample] = field(default_factory=dict)  # per system
    warned: bool = False

    def observe(
        self,
        view: RolloutView,
        state: RolloutState | None,
        anchor: RolloutEvent | None,
        changed: tuple[str, int] | None = None,
    ) -> list[Alert]:
        """Take the windows settled since the last call, and the units that arrived late
        for a window already taken (``changed``: the (system, window) a partial updated;
        a lagging partition's units count too); warn once on a mismatch."""
        if state is None or view.end is None or not 0 < state.weight < 100:
            return []
        key = str(anchor.event_id) if anchor is not None else "start"
        if self.span != (key, state.weight):
            self._restart(key, state.weight, anchor)
        grew = changed is not None and self._late_units(view, *changed, state.weight)
        end = view.end - 2 * self.window_seconds
        if end > self.checked:
            roles = self.plan.roles
            for start in sorted({*view.starts(roles.candidate), *view.starts(roles.baseline)}):
                if self.checked <= start < end:
                    self._take(view, start, state.weight)
            self.checked = end
        elif not grew:
            return []
        return self._judge(self.checked, state.weight)

    @property
    def incidents(self) -> list[str]:
        return [NAME] if self.warned else []

    def _restart(self, key: str, weight: int, anchor: RolloutEvent | None) -> None:
        """A new span: units seen in the windows wholly after ``anchor``, at ``weight``."""
        roles = self.plan.roles
        self.span, self.first, self.warned = (key, weight), None, False
        self.units = {s: UnitSample(self.capacity) for s in (roles.candidate, roles.baseline)}
        self.checked = self.floor = first_window_after(anchor and anchor.ts, self.window_seconds)

    def _take(self, view: RolloutView, start: int, weight: int) -> None:
        for system in self.units:
            self._merge(view, system, start, weight)

    def _late_units(self, view: RolloutView, system: str, start: int, weight: int) -> bool:
        """Merge again a window already in the span that a partial updated (a union: the
        units it had already count once)."""
        if system not in self.units or not self.floor <= start < self.checked:
            return False
        return self._merge(view, system, start, weight)

    def _merge(self, view: RolloutView, system: str, start: int, weight: int) -> bool:
        window = view.units(system, start, weight)
        if window is None:
            return False
        self.units[system].merge(window)
        self.first = start if self.first is None else min(self.first, start)
        level = max(u.level for u in self.units.values())
        for units in self.units.values():
            units.raise_to(level)
        return True

    def _judge(self, end: int, weight: int) -> list[Alert]:
        cfg, roles = self.plan.sample_ratio, self.plan.roles
        candidate = len(self.units[roles.candidate])
        total = candidate + len(self.units[roles.baseline])
        if self.warned or self.first is None or total < cfg.min_samples:
            return []
        level = self.units[roles.candidate].level
        if split_evidence(candidate, total, weight / 100) < -math.log(alpha_at(cfg.p_value, level)):
            return []
        self.warned = True
        return [
            Alert(
                alert_id=incident_id(self.rollout, f"{NAME}:{self.span[0]}", self.first),
                rollout=self.rollout,
                system=roles.candidate,
                severity="warning",
                kind="sample_ratio_mismatch",
                metric="candidate_share",
                observed=candidate / total,
                threshold=weight / 100,
                window=AlertWindow(start=to_datetime(self.first), end=to_datetime(end)),
                samples=total,
            )
        ]
