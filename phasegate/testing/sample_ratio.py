"""Simulated rollouts through stage 2's sample ratio check, beside the rule before it.

A rollout: a population of units (10,000 by default) whose query rates are heavy-tailed
(log-normal, sigma 1.2, a few units far more active), scaled to ``events_per_s``; each
window every unit sends a Poisson number of queries, routed by the Router's hash at
``router_weight`` while the rollout log says ``weight`` (a broken Router when they
differ). One partial per window and system goes through a real :class:`Stage2` with the
default plan. :func:`run` reports when the check warned and whether anything said
"recovered", and, on the same windows, what the rule before it did (:class:`Windowed`).
Needs numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from producers.router import to_candidate
from rollout.state import RolloutState, fold
from schemas.events import Alert, RolloutEvent
from schemas.internal import Partial, WindowStatsState
from schemas.plan import Plan, SampleRatio, load_plan
from schemas.stats import split_p_value
from streams.stage2 import Stage2
from streams.units import UnitSample, unit_hash
from streams.windows import to_datetime

WINDOW = 60  # the worker's default window
START = datetime(2026, 1, 1, tzinfo=UTC)
POPULATION = 10_000


def state(rollout: str, weight: int) -> RolloutState:
    """The rollout at phase 1 with ``weight``."""
    started = RolloutEvent(rollout=rollout, type="phase_started", weight=weight, phase=1, ts=START)
    return fold([started], rollout)  # type: ignore[return-value]


def stage2(weight: int, plan: Plan | None = None) -> Stage2:
    """Stage 2 of ``plan`` (the default plan) following a rollout log at ``weight``."""
    states: dict[str, RolloutState] = {}  # one log per rollout, as the worker follows it
    return Stage2(
        WINDOW,
        3600,
        plan or load_plan(),
        state_of=lambda r: states.setdefault(r, state(r, weight)),
    )


def split_alerts(outputs: list) -> list[Alert]:
    """The sample ratio check's alerts among stage 2's outputs (warnings and recoveries)."""
    return [o for o in outputs if isinstance(o, Alert) and o.metric == "candidate_share"]


@cache
def _hashes(population: int) -> list[int]:
    return [unit_hash(f"u{i}") for i in range(population)]


def simulate(
    rollout: str, router_weight: int, windows: int, events_per_s: float, seed: int
) -> Iterator[list[list[int]]]:
    """Per window: the active units (indices) of the candidate and of the baseline."""
    import numpy as np  # only the simulation needs it

    rng = np.random.default_rng(seed)
    cand = np.array([to_candidate(rollout, f"u{i}", router_weight) for i in range(POPULATION)])
    rate = rng.lognormal(mean=0.0, sigma=1.2, size=POPULATION)
    rate *= events_per_s * WINDOW / rate.sum()
    for _ in range(windows):
        active = rng.poisson(rate) > 0
        yield [np.flatnonzero(active & mask).tolist() for mask in (cand, ~cand)]


def partial(rollout: str, system: str, w: int, weight: int, units: list[int]) -> Partial:
    """One window of ``system`` with these units (one successful event each)."""
    hashes = _hashes(POPULATION)
    sample = UnitSample(hashes=[hashes[u] for u in units])
    stats = WindowStatsState(  # all successes: no rollback stops the split
        count=len(units),
        successes=len(units),
        weights={weight: len(units)},
        unit_sample={weight: sample.to_state()},
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


@dataclass
class Windowed:
    """The rule before: a chi-square on each window's distinct units over the last
    ``span`` seconds, divided by the number of windows; warns at p < ``p_value``,
    "recovers" at p >= 0.1."""

    weight: int
    p_value: float = 0.001
    min_samples: int = 1000
    span: int = 300
    warned: bool = False

    def check(self, history: list[tuple[int, int]]) -> str | None:
        """Judge the settled windows of ``history`` (candidate, baseline units per window)."""
        windows = history[-self.span // WINDOW :]
        c, total = sum(c for c, _ in windows), sum(c + b for c, b in windows)
        if total < self.min_samples:
            return None
        p = split_p_value(c / len(windows), total / len(windows), self.weight / 100)
        if p is None:
            return None
        if not self.warned and p < self.p_value:
            self.warned = True
            return "warning"
        if self.warned and p >= 0.1:
            self.warned = False
            return "recovered"
        return None


@dataclass
class Outcome:
    """When each rule first warned (window index) and whether it said "recovered"."""

    warned: int | None = None
    recovered: bool = False
    before_warned: int | None = None
    before_recovered: bool = False


def run(
    rollout: str,
    weight: int,
    router_weight: int,
    events_per_s: float,
    minutes: float,
    seed: int,
    p_value: float = 0.001,
) -> Outcome:
    """One simulated rollout through Stage 2 and the rule before, on the same windows."""
    plan = load_plan().model_copy(update={"sample_ratio": SampleRatio(p_value=p_value)})
    s2, before, out = stage2(weight, plan), Windowed(weight, p_value), Outcome()
    history: list[tuple[int, int]] = []
    windows = int(minutes * 60 / WINDOW)
    for w, split in enumerate(simulate(rollout, router_weight, windows, events_per_s, seed)):
        for system, units in zip(("production", "pipeline"), split, strict=True):
            for alert in split_alerts(s2.apply(partial(rollout, system, w, weight, units))):
                if alert.kind == "recovered":
                    out.recovered = True
                elif out.warned is None:
                    out.warned = w
        history.append((len(split[0]), len(split[1])))
        if w >= 2:  # the same settled windows: all but the two newest
            said = before.check(history[:-2])
            if said == "recovered":
                out.before_recovered = True
            elif said == "warning" and out.before_warned is None:
                out.before_warned = w
    return out
