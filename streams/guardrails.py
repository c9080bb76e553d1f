"""Guardrails: triggers that judge the candidate against the baseline, window by window.

A guardrail (``compare = "baseline"`` in the plan) judges each window once the next one
has begun, on both systems' counts in it then (events later than that are left out: when
a window is judged depends on time alone, so the test stays valid), with the
conditional test of ``streams.differential`` or, for a mean, ``streams.mean_drop``:

- a rate (``success_rate``, ``complaint_rate``, ``feedback_positive_rate``): bad events
  are failures, complaints, feedback other than "correct" (of the feedback verdicts
  for feedback). The tolerated and the alarm odds ratios come from the margin and
  ``detect`` at the baseline's bad share over the :data:`REFERENCE` windows before
  (known before the window is: the test stays valid).
- ``mean_confidence``: the empirical-Bernstein e-value of the candidate's mean below the
  tolerated one; its centers, spreads and bet come from the :data:`REFERENCE` windows
  before.
- a latency quantile: the baseline's quantile over the windows before is the cutoff
  ``c``; the baseline's bad events are those over ``c``, the candidate's those over ``c``
  worsened by the margin. A candidate no slower than the baseline worsened by the margin
  has an odds ratio of at most 1 (``psi0``); ``bad_share`` sets the alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.metrics import Mean, Metric, Quantile, Rate, metric
from schemas.plan import Roles, Trigger
from streams import mean_drop
from streams.aggregate import WindowStats
from streams.differential import log_ratio, odds_ratio
from streams.mean_drop import Moments
from streams.sequential import RatioCusum
from streams.windows import RolloutView

REFERENCE = 10  # windows before the judged one that give the baseline's level

Evidence = tuple[float, int, int]  # a window's log-ratio, candidate samples, bad samples


def span(view: RolloutView, system: str, first: int, last: int) -> WindowStats:
    """The windows of ``system`` starting in [first, last], merged."""
    return WindowStats.merged(
        [view.window(system, s) for s in view.starts(system) if first <= s <= last]
    )


def reference(view: RolloutView, system: str, start: int) -> WindowStats:
    """``system``'s :data:`REFERENCE` windows before window ``start``."""
    ws = view.window_seconds
    return span(view, system, start - REFERENCE * ws, start - ws)


def bad(meaning: Metric, stats: WindowStats) -> tuple[int, int]:
    """A rate's (samples, bad samples) in ``stats`` (``schemas.metrics``: what is bad)."""
    return meaning.samples(stats), int(meaning.bad.amount(stats))  # type: ignore[union-attr]


def window_test(trigger: Trigger, roles: Roles, view: RolloutView, start: int) -> Evidence | None:
    """Window ``start``'s evidence (module doc); None: no basis (a side without samples)."""
    meaning = metric(trigger.metric)
    cand, base = view.window(roles.candidate, start), view.window(roles.baseline, start)
    before = reference(view, roles.baseline, start)
    if not all(meaning.samples(t) for t in (before, cand, base)):
        return None
    estimator = meaning.estimator
    if isinstance(estimator, Mean):
        own = reference(view, roles.candidate, start)
        x, y, ref_b = (estimator.moments(t) for t in (cand, base, before))
        return mean_test(trigger, x, y, estimator.moments(own) if own.count else ref_b, ref_b)
    if isinstance(estimator, Rate):
        (n_c, x), (n_b, y), (n, b) = (bad(meaning, t) for t in (cand, base, before))
        share = (b + 1) / (n + 2)  # shrunk towards 1/2 by one sample each way: never 0 or 1
        psi0 = odds_ratio(share, min(trigger.worse(share), 0.999))
        psi1 = odds_ratio(share, min(trigger.worse(share, trigger.detect_by), 0.9999))
        return log_ratio((n_c, x, n_b, y), psi0, psi1), n_c, x
    assert isinstance(estimator, Quantile)
    cutoff = before.latency.quantile(estimator.q) or 0.0
    over_c = round(cand.latency.count_above(trigger.worse(cutoff)))
    over_b = round(base.latency.count_above(cutoff))
    counts = (cand.count, over_c, base.count, over_b)
    return log_ratio(counts, 1.0, odds_ratio(*trigger.shares())), cand.count, over_c


def mean_test(trigger: Trigger, x: Moments, y: Moments, ref_c: Moments, ref_b: Moments) -> Evidence:
    """The empirical-Bernstein e-value of the candidate's values ``x`` against the
    baseline's ``y``; ``ref_c`` and ``ref_b``: the systems' windows before (centers,
    spreads)."""
    centers = (mean_drop.mean(ref_c), mean_drop.mean(ref_b))
    s, m = (1 - trigger.margin, 0.0) if trigger.relative else (1.0, trigger.margin)
    drift = (trigger.detect_by - trigger.margin) * (centers[1] if trigger.relative else 1.0)
    spreads = (mean_drop.variance(ref_c), mean_drop.variance(ref_b))
    k = mean_drop.bet((x[2], y[2]), centers, spreads, drift, s)
    return mean_drop.log_e(x, y, centers, k, s, m), int(x[2]), 0


def observed(trigger: Trigger, stats: WindowStats) -> float:
    """The trigger's metric over ``stats`` (without samples: 1 where higher is better, else 0)."""
    meaning = metric(trigger.metric)
    est = meaning.estimate(stats)
    if est is None:
        return 0.0 if meaning.lower_is_better else 1.0
    return est.value


def samples(trigger: Trigger, stats: WindowStats) -> int:
    """The samples behind the trigger's metric: events, or feedback verdicts."""
    return metric(trigger.metric).samples(stats)


def tolerated(trigger: Trigger, base: WindowStats) -> float:
    """What the candidate may show next to the baseline's ``base``: its threshold."""
    meaning, value = metric(trigger.metric), observed(trigger, base)
    if isinstance(meaning.estimator, Rate) and not meaning.lower_is_better:
        return 1 - trigger.worse(1 - value)  # the margin is on the bad share
    return trigger.worse(value)


@dataclass
class Guardrail:
    """One guardrail's CUSUM over closed windows, and where its evidence run began.

    Windows add up (their log-ratios, each conditional on its own window) into steps of
    at least ``min_samples`` candidate samples; the CUSUM moves, and may fire, once a step.
    """

    trigger: Trigger
    cusum: RatioCusum
    run_start: int | None = None
    step: Evidence = (0.0, 0, 0)  # log-ratio, samples, bad samples so far
    step_start: int | None = None

    def judge(self, roles: Roles, view: RolloutView, start: int) -> None:
        """Add window ``start`` (closed) to the evidence."""
        test = window_test(self.trigger, roles, view, start)
        if test is None:
            return
        (llr, n, bad_n), (more, m, more_bad) = self.step, test
        self.step = (llr + more, n + m, bad_n + more_bad)
        self.step_start = start if self.step_start is None else self.step_start
        if self.step[1] < self.trigger.min_samples:
            return
        self.cusum.step(*self.step)
        if self.cusum.clear:
            self.run_start = None
        elif self.run_start is None:
            self.run_start = self.step_start
        self.step, self.step_start = (0.0, 0, 0), None
