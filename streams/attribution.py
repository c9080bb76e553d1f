"""Which system degraded when a trigger fires, and both systems' figures over its window.

Attribution compares, over the moments that fired the alert (the read times of its
evidence run; without them its last two windows), the baseline with its own level over
the windows before, and the candidate with the baseline, each a one-sided Wald test of
the log odds ratio of the trigger's "bad" events at :data:`P_VALUE`:

- the baseline degraded and the candidate's odds of a bad event are not shown to exceed
  :func:`tolerated` times the baseline's: ``shared``;
- otherwise: ``candidate-specific``.

The tolerated odds ratio is the trigger's own, its alarm share's odds over its
acceptable share's (2.1 for ``success-emergency``: 10% and 5% failures). The moments are
chosen by the candidate's CUSUM, which fires when the candidate's bad events run high:
on a blip both systems share, the candidate's share of it is then above the baseline's
by chance more often than the p-value says. A candidate much worse than the baseline is
still candidate-specific; one worse by less is the differential guardrails' to catch
(docs/statistics.md, "Shared causes").

A guardrail fires only when the candidate is worse than the baseline in the same
windows, so its alerts are candidate-specific by construction.
"""

from __future__ import annotations

import math

from schemas.events import Attribution, Figure
from schemas.metrics import metric
from schemas.plan import Trigger
from schemas.stats import normal_sf, wilson
from streams.aggregate import WindowStats
from streams.differential import odds_ratio
from streams.evidence import bad_events

P_VALUE = 0.001

Counts = tuple[float, int]  # bad events, events


def counts(trigger: Trigger, stats: WindowStats) -> Counts:
    return bad_events(trigger, stats), stats.count


def tolerated(trigger: Trigger) -> float:
    """The odds ratio of a bad event, candidate over baseline, that a shared cause may show:
    the trigger's alarm share's odds over its acceptable share's (1 for counts)."""
    return odds_ratio(*trigger.shares()) if metric(trigger.metric).unit != "count" else 1.0


def _higher(a: Counts, b: Counts, ratio: float = 1.0) -> bool:
    """Whether ``a``'s odds of a bad event are significantly above ``ratio`` times ``b``'s
    (Wald test of the log odds ratio, half an event added to each count)."""
    (bad_a, n_a), (bad_b, n_b) = a, b
    if n_a <= 0 or n_b <= 0:
        return False
    cells = (bad_a + 0.5, n_a - bad_a + 0.5, bad_b + 0.5, n_b - bad_b + 0.5)
    log_or = math.log(cells[0] * cells[3] / (cells[1] * cells[2]))
    z = (log_or - math.log(ratio)) / math.sqrt(sum(1 / c for c in cells))
    return normal_sf(z) < P_VALUE


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
    worse = _higher(cand, base, tolerated(trigger))
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
                    system=system,
                    value=est.value,
                    low=est.low,
                    high=est.high,
                    samples=meaning.samples(stats),
                )
            )
    return out
