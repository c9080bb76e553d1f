"""Which system degraded when a trigger fires, and both systems' figures over its window.

Attribution compares, over the alert's last two windows (where its evidence
concentrates), the baseline with its own level over the windows before, and the
candidate with the baseline, each a one-sided two-proportion test of the trigger's "bad"
events at :data:`P_VALUE`:

- the baseline degraded and the candidate is not worse than it: ``shared``;
- otherwise: ``candidate-specific``.

A guardrail fires only when the candidate is worse than the baseline in the same
windows, so its alerts are candidate-specific by construction.
"""

from __future__ import annotations

from schemas.events import Attribution, Figure
from schemas.metrics import metric
from schemas.plan import Trigger
from schemas.stats import two_proportions, wilson
from streams.aggregate import WindowStats
from streams.evidence import bad_events

P_VALUE = 0.001


def _higher(bad_a: float, a: WindowStats, bad_b: float, b: WindowStats) -> bool:
    """Whether ``a``'s share of bad events is significantly above ``b``'s."""
    test = two_proportions(bad_a, a.count, bad_b, b.count)
    return test is not None and test.p_worse(lower_is_worse=False) < P_VALUE


def attribute(
    trigger: Trigger, cand: WindowStats, base: WindowStats, before: WindowStats
) -> Attribution:
    """``cand`` and ``base``: the alert's windows; ``before``: the baseline's windows before."""
    if trigger.guardrail or not base.count:
        return "candidate-specific"
    x, y = bad_events(trigger, cand), bad_events(trigger, base)
    if before.count >= trigger.min_samples:
        degraded = _higher(y, base, bad_events(trigger, before), before)
    elif trigger.metric == "critical_errors":  # no level of its own yet: any at all
        degraded = y > 0
    else:  # no level of its own yet: the trigger's acceptable share
        interval = wilson(y, base.count)
        degraded = interval is not None and interval.low > trigger.shares()[0]
    worse = _higher(x, cand, y, base)
    return "shared" if degraded and not worse else "candidate-specific"


def figures(trigger: Trigger, systems: dict[str, WindowStats]) -> list[Figure]:
    """Each system's value of the trigger's metric with its 95% interval."""
    meaning = metric(trigger.metric)
    out = []
    for system, stats in systems.items():
        est = meaning.estimate(stats)
        if est is not None:
            out.append(
                Figure(
                    system=system, value=est.value, low=est.low, high=est.high, samples=stats.count
                )
            )
    return out
