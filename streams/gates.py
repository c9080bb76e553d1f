"""Gate verdicts: each criterion of a phase judged as pass, fail or inconclusive.

A bound criterion (``min``/``max``) passes when the whole 95% interval of the metric is on
the right side of the threshold, fails when it is wholly on the wrong side, and is
inconclusive otherwise or below the phase's minimum sample. A comparison (``compare``)
is a two-sample test on the same span: the 95% interval of candidate minus reference
(the metric's test, ``schemas.metrics``) against the allowed margin, with the one-sided
p-value of "worse by more than the margin". Critical errors are facts, not estimates: one is a fail.

Gates are what a human reads at a go/no-go (and what auto-advance waits for); the
continuous rollback decisions use the sequential rule in ``streams.triggers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.state import RolloutState, phase_periods
from schemas.plan import Plan
from schemas.verdict import Outcome, Verdict, judge, overall
from streams.aggregate import WindowStats
from streams.windows import RolloutView


@dataclass(frozen=True)
class GateReport:
    """The verdicts of the current phase's criteria over the span they are judged on."""

    rollout: str
    phase: int
    phase_name: str
    weight: int
    verdicts: tuple[Verdict, ...]
    start: int | None = None
    end: int | None = None

    @property
    def outcome(self) -> Outcome:
        return overall([v.outcome for v in self.verdicts])

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "phase_name": self.phase_name,
            "weight": self.weight,
            "outcome": self.outcome,
            "span": {"start": self.start, "end": self.end},
            "verdicts": [v.to_json() for v in self.verdicts],
        }


def _floor(t: float, size: int) -> int:
    return int(t) - int(t) % size


def evaluate(plan: Plan, view: RolloutView, state: RolloutState) -> GateReport | None:
    """Judge the current phase's criteria on the view's windows; None if not running."""
    phase = plan.phase(state.phase)
    periods = phase_periods(state)
    end = view.end
    if phase is None or not periods or end is None:
        return None
    size = view.window_seconds
    start = _floor(periods[-1][1].timestamp(), size)  # with the window the phase began in
    if phase.window_seconds:
        start = max(start, end - phase.window_seconds)
    span = max(end - start, size)

    def current(system: str) -> WindowStats:  # nothing yet when no window began since
        return view.rolling(system, span, end) if end > start else WindowStats()

    cand, base = current(plan.roles.candidate), current(plan.roles.baseline)
    previous = None
    if len(periods) > 1:
        prev_start = _floor(periods[-2][1].timestamp(), size)
        prev_end = _floor(periods[-1][1].timestamp(), size)
        if prev_end > prev_start:
            previous = view.rolling(plan.roles.candidate, prev_end - prev_start, prev_end)
    verdicts = tuple(judge(c, phase, cand, base, previous) for c in phase.advance)
    return GateReport(view.rollout, state.phase, phase.name, state.weight, verdicts, start, end)
