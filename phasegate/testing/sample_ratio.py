"""Simulated rollouts through stage 2's sample ratio mismatch (SRM) check.

Each rollout: 2,000 units with heavy-tailed query rates (log-normal, about 3 per window,
a few units far more), routed by the Router's hash, one partial per window and system.
:func:`run` counts the check's warnings and, on the same windows, what a chi-square on
the span's events (the check before) would have said. Needs numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from producers.router import to_candidate
from rollout.state import RolloutState, fold
from schemas.events import RolloutEvent
from schemas.internal import Partial, WindowStatsState
from schemas.plan import SampleRatio, load_plan
from schemas.stats import split_p_value
from streams.stage2 import Stage2
from streams.windows import to_datetime

WINDOW = 10
START = datetime(2026, 1, 1, tzinfo=UTC)


def state(rollout: str, weight: int) -> RolloutState:
    """The rollout at phase 1 with ``weight``."""
    started = RolloutEvent(rollout=rollout, type="phase_started", weight=weight, phase=1, ts=START)
    return fold([started], rollout)  # type: ignore[return-value]


def stage2(weight: int, p_value: float = 0.001, span: int = 5 * WINDOW) -> Stage2:
    """Stage 2 of the default plan, its SRM check at ``p_value`` over ``span`` seconds."""
    plan = load_plan().model_copy(
        update={"sample_ratio": SampleRatio(p_value=p_value, min_samples=200, window_seconds=span)}
    )
    states: dict[str, RolloutState] = {}  # one log per rollout, as the worker follows it
    return Stage2(WINDOW, 3600, plan, state_of=lambda r: states.setdefault(r, state(r, weight)))


def srm_alerts(outputs: list) -> list:
    return [o for o in outputs if getattr(o, "kind", None) == "sample_ratio_mismatch"]


def simulate(
    rollout: str, weight: int, windows: int, lost: float, seed: int
) -> Iterator[list[tuple[int, int]]]:
    """Per window and system: (events, distinct units) of 2,000 units whose query rates
    are heavy-tailed (log-normal, about 3 per window, some units far more), routed by the
    Router's hash; ``lost`` of the candidate's units never arrive."""
    import numpy as np  # only the simulation needs it

    rng = np.random.default_rng(seed)
    names = [f"{rollout}-u{i}" for i in range(2000)]
    cand = np.array([to_candidate(rollout, u, weight) for u in names])
    kept = ~(cand & (rng.random(len(names)) < lost))
    rate = rng.lognormal(mean=0.3, sigma=1.2, size=len(names))
    for _ in range(windows):
        k = rng.poisson(rate) * kept
        yield [(int(k[mask].sum()), int((k[mask] > 0).sum())) for mask in (cand, ~cand)]


def _partial(rollout: str, system: str, w: int, weight: int, events: int, units: int) -> Partial:
    stats = WindowStatsState(  # all successes: no rollback stops the split
        count=events, successes=events, weights={weight: events}, units={weight: units}
    )
    return Partial(
        rollout=rollout,
        system=system,
        window_start=to_datetime(int(START.timestamp()) + w * WINDOW),
        window_seconds=WINDOW,
        source_topic="results",
        partition=0,
        first_offset=w,
        last_offset=w,
        committed_offset=w + 1,
        stats=stats,
    )


def run(
    rollout: str, weight: int, lost: float, seed: int, windows: int = 14, p: float = 0.01
) -> tuple[int, int, int]:
    """One simulated rollout through Stage 2; (SRM alerts, checks, event-test rejections)."""
    s2 = stage2(weight, p_value=p)
    alerts, event_rejections, span = 0, 0, 5
    history = []
    for w, split in enumerate(simulate(rollout, weight, windows, lost, seed)):
        history.append(split)
        for system, (events, distinct) in zip(("production", "pipeline"), split, strict=True):
            partial = _partial(rollout, system, w, weight, events, distinct)
            alerts += len(srm_alerts(s2.apply(partial)))
        if w >= 2:  # the check before: a chi-square on the span's events, same windows
            closed = history[max(0, w - 1 - span) : w - 1]
            c = sum(cand for (cand, _), _ in closed)
            total = c + sum(base for _, (base, _) in closed)
            event_rejections += (split_p_value(c, total, weight / 100) or 1) < p
    return alerts, windows - 2, event_rejections
