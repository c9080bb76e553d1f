"""Guardrails: triggers that judge the candidate against the baseline, window by window.

A guardrail (``compare = "baseline"`` in the plan) judges each window once the next one
has begun, on both systems' counts in it then (events later than that are left out: when
a window is judged depends on time alone, so the test stays valid), with the
conditional test of ``streams.differential``:

- ``success_rate``: bad events are failures. The tolerated and the alarm odds ratios
  come from the margin and ``detect`` at the baseline's failure share over the
  :data:`REFERENCE` windows before (known before the window is: the test stays valid).
- a latency quantile: the baseline's quantile over the windows before is the cutoff
  ``c``; the baseline's bad events are those over ``c``, the candidate's those over ``c``
  worsened by the margin. A candidate no slower than the baseline worsened by the margin
  has an odds ratio of at most 1 (``psi0``); ``bad_share`` sets the alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.metrics import quantile_of
from schemas.plan import Roles, Trigger
from streams.aggregate import WindowStats
from streams.differential import Counts, log_ratio, odds_ratio
from streams.sequential import RatioCusum
from streams.windows import RolloutView

REFERENCE = 10  # windows before the judged one that give the baseline's level


def span(view: RolloutView, system: str, first: int, last: int) -> WindowStats:
    """The windows of ``system`` starting in [first, last], merged."""
    return WindowStats.merged(
        [view.window(system, s) for s in view.starts(system) if first <= s <= last]
    )


def reference(view: RolloutView, system: str, start: int) -> WindowStats:
    """``system``'s :data:`REFERENCE` windows before window ``start``."""
    ws = view.window_seconds
    return span(view, system, start - REFERENCE * ws, start - ws)


def failure_share(stats: WindowStats) -> float:
    """The failure share, shrunk towards 1/2 by one event each way (never 0 or 1)."""
    return (stats.count - stats.successes + 1) / (stats.count + 2)


def window_test(
    trigger: Trigger, roles: Roles, view: RolloutView, start: int
) -> tuple[Counts, float, float] | None:
    """Window ``start``'s counts and the (tolerated, alarm) odds ratios; None: no basis."""
    cand, base = view.window(roles.candidate, start), view.window(roles.baseline, start)
    before = reference(view, roles.baseline, start)
    if not before.count or not cand.count or not base.count:
        return None
    if trigger.metric == "success_rate":
        b = failure_share(before)
        counts = (cand.count, cand.count - cand.successes, base.count, base.count - base.successes)
        psi0 = odds_ratio(b, min(trigger.worse(b), 0.999))
        return counts, psi0, odds_ratio(b, min(trigger.worse(b, trigger.detect_by), 0.9999))
    cutoff = before.latency.quantile(quantile_of(trigger.metric)) or 0.0
    over_c = round(cand.latency.count_above(trigger.worse(cutoff)))
    over_b = round(base.latency.count_above(cutoff))
    return (cand.count, over_c, base.count, over_b), 1.0, odds_ratio(*trigger.shares())


def observed(trigger: Trigger, stats: WindowStats) -> float:
    """The trigger's metric over ``stats``: the success rate or the latency quantile."""
    if trigger.metric == "success_rate":
        return stats.successes / stats.count if stats.count else 1.0
    return stats.latency.quantile(quantile_of(trigger.metric)) or 0.0


def tolerated(trigger: Trigger, base: WindowStats) -> float:
    """What the candidate may show next to the baseline's ``base``: its threshold."""
    if trigger.metric == "success_rate":
        return 1 - trigger.worse(1 - observed(trigger, base))
    return trigger.worse(observed(trigger, base))


@dataclass
class Guardrail:
    """One guardrail's CUSUM over closed windows, and where its evidence run began.

    Windows add up (their log-ratios, each conditional on its own total) into steps of
    at least ``min_samples`` candidate events; the CUSUM moves, and may fire, once a step.
    """

    trigger: Trigger
    cusum: RatioCusum
    run_start: int | None = None
    step: tuple[float, int, int] = (0.0, 0, 0)  # log-ratio, events, bad events so far
    step_start: int | None = None

    def judge(self, roles: Roles, view: RolloutView, start: int) -> None:
        """Add window ``start`` (closed) to the evidence."""
        test = window_test(self.trigger, roles, view, start)
        if test is None:
            return
        counts, psi0, psi1 = test
        llr, n, bad = self.step
        self.step = (llr + log_ratio(counts, psi0, psi1), n + counts[0], bad + counts[1])
        self.step_start = start if self.step_start is None else self.step_start
        if self.step[1] < self.trigger.min_samples:
            return
        self.cusum.step(*self.step)
        if self.cusum.clear:
            self.run_start = None
        elif self.run_start is None:
            self.run_start = self.step_start
        self.step, self.step_start = (0.0, 0, 0), None
