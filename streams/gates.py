"""Gate verdicts: each criterion of a phase judged as pass, fail or inconclusive.

The rules are ``schemas.verdict``'s: a bound passes when the whole confidence sequence of
the metric is on the right side of the threshold, a comparison (``compare``) when the
interval of candidate minus reference is within the margin; critical errors are facts,
not estimates: one is a fail. A look is taken at the end of every window of the phase
(once a later window has data) and remembered (``schemas.looks``); the verdict shown is
the newest span's look intersected with that memory, so it does not flap on noise.

Gates are what a human reads at a go/no-go (and what auto-advance waits for); the
continuous rollback decisions use the sequential rule in ``streams.triggers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollout.state import RolloutState, phase_periods
from schemas.confseq import Interval
from schemas.looks import judge_phase, remember
from schemas.looks import looks as looks_at
from schemas.plan import Plan
from schemas.verdict import Outcome, Verdict, overall
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
        return overall(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "phase_name": self.phase_name,
            "weight": self.weight,
            "outcome": self.outcome,
            "span": {"start": self.start, "end": self.end},
            "verdicts": [v.to_json() for v in self.verdicts],
        }


@dataclass(frozen=True)
class Looks:
    """A phase's looks so far: which run of which phase, the last window end looked at,
    and each criterion's running intersection (``schemas.looks``)."""

    phase: int = 0
    since: int = 0  # the start of the phase's span (epoch seconds)
    upto: int = 0  # the last window end looked at
    memory: dict[int, Interval] = field(default_factory=dict)


def _floor(t: float, size: int) -> int:
    return int(t) - int(t) % size


def evaluate(
    plan: Plan, view: RolloutView, state: RolloutState, looks: Looks = Looks()
) -> tuple[GateReport | None, Looks]:
    """Judge the current phase's criteria on the view's windows (None if not running),
    with ``looks`` brought up to the newest closed window."""
    phase = plan.phase(state.phase)
    periods = phase_periods(state)
    end = view.end
    if phase is None or not periods or end is None:
        return None, looks
    size = view.window_seconds
    began = periods[-1][1].timestamp()
    start = _floor(began, size)  # with the window the phase began in
    if phase.window_seconds:
        start = max(start, end - phase.window_seconds)
    if (looks.phase, looks.since) != (state.phase, _floor(began, size)):
        looks = Looks(state.phase, _floor(began, size), _floor(began, size))
    previous = None
    if len(periods) > 1:
        prev_start = _floor(periods[-2][1].timestamp(), size)
        prev_end = _floor(periods[-1][1].timestamp(), size)
        if prev_end > prev_start:
            previous = view.rolling(plan.roles.candidate, prev_end - prev_start, prev_end)

    def totals(upto: int) -> tuple[WindowStats, WindowStats]:  # nothing before a window
        if upto <= start:
            return WindowStats(), WindowStats()
        span = upto - start
        roles = plan.roles
        return view.rolling(roles.candidate, span, upto), view.rolling(roles.baseline, span, upto)

    alpha = plan.gates.alpha
    memory = looks.memory
    kept = min(view.starts(plan.roles.candidate), default=end)  # older ones expired
    for upto in range(max(looks.upto, kept) + size, end, size):  # each closed window's end
        cand, base = totals(upto)
        memory = remember(memory, looks_at(phase, cand, base, previous, alpha))
    looks = Looks(looks.phase, looks.since, max(looks.upto, end - size), memory)
    cand, base = totals(end)
    verdicts = tuple(
        judge_phase(phase, cand, base, previous, alpha=alpha, memory=memory, elapsed=end - began)
    )
    report = GateReport(view.rollout, state.phase, phase.name, state.weight, verdicts, start, end)
    return report, looks
