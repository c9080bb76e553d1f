"""Which system degraded when a trigger fires, and both systems' figures over its window.

Attribution compares, over the moments that fired the alert (the read times of its
evidence run; without them its last two windows), the baseline with its own level over
the windows before, and the candidate with the baseline, each a one-sided
two-proportion test of the trigger's "bad" events at :data:`P_VALUE`:

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

Counts = tuple[float, int]  # bad events, events


def counts(trigger: Trigger, stats: WindowStats) -> Counts:
    return bad_events(trigger, stats), stats.count


def _higher(a: Counts, b: Counts) -> bool:
    """Whether ``a``'s share of bad events is significantly above ``b``'s."""
    test = two_proportions(a[0], a[1], b[0], b[1])
    return test is not None and test.p_worse(lower_is_worse=False) < P_VALUE


def attribute(trigger: Trigger, cand: Counts, base: Counts, before: Counts) -> Attribution:
    """``cand`` and ``base``: the alert's moments; ``before``: the baseline's level."""
    if trigger.guardrail or not base[1]:
        return "candidate-specific"
    if before[1] >= trigger.min_samples:
        degraded = _higher(base, before)
    elif trigger.metric == "critical_errors":  # no level of its own yet: any at all
        degraded = base[0] > 0
    else:  # no level of its own yet: the trigger's acceptable share
        interval = wilson(*base)
        degraded = interval is not None and interval.low > trigger.shares()[0]
    return "shared" if degraded and not _higher(cand, base) else "candidate-specific"


def figures(trigger: Trigger, systems: dict[str, WindowStats]) -> list[Figure]:
    """Each system's value of the trigger's metric with its 95% interval."""
    meaning = metric(trigger.metric)
    out = []
    for system, stats in systems.items():
        est = meaning.estimate(stats)
        if est is not None:
            out.append(
                Figure(
                    system=system,
                    value=est.value,
                    low=est.low,
                    high=est.high,
                    samples=meaning.samples(stats),
                )
            )
    return out
