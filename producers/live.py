"""Drive simulated traffic through the real Router and Emitter (``phasegate simulate``)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from producers.emitter import Emitter, EmitterStats
from producers.router import Router
from producers.simulator import SCENARIOS, Traffic, to_events
from schemas.base import now
from schemas.events import Feedback, Result, RolloutEvent
from schemas.settings import Settings


@dataclass
class Summary:
    """What a run sent: per-system counts and success, the Emitter's counters, the rate."""

    scenario: str
    generations: int = 0
    feedback: int = 0
    per_system: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    weight: int = 0
    emitter: EmitterStats | None = None

    @property
    def rate(self) -> float:
        return self.generations / self.elapsed_s if self.elapsed_s else 0.0


def run(
    settings: Settings,
    scenario: str = "healthy",
    *,
    events: int | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
    seed: int = 0,
    rollout: str = "kai-response",
    set_weight: int | None = None,
    candidate: str = "production",
    baseline: str = "pipeline",
    on_progress: Callable[[float, int], None] | None = None,
    on_emit: Callable[[Result | Feedback, bool], None] | None = None,
) -> Summary:
    """Simulate ``events`` generations (or for ``duration_s``) at ``rate`` per second.

    ``rate`` None runs as fast as possible. ``set_weight`` first writes a ``weight_set``
    event to the rollout log and waits for the Router to follow it. The onset of the
    scenario's change is a fraction of the run (events or duration). ``on_progress`` gets
    the fraction done and the generations sent, every 200. ``on_emit`` sees
    every result and feedback with whether the Emitter accepted it (a test's ledger).
    """
    if events is None and duration_s is None:
        raise ValueError("give a number of events or a duration")
    spec = SCENARIOS[scenario]
    traffic = Traffic(seed)
    run_id = uuid.uuid4().hex[:8]
    summary = Summary(scenario=scenario)
    with (
        Emitter(settings) as emitter,
        Router(settings, rollout, candidate=candidate, baseline=baseline) as router,
    ):
        if set_weight is not None:
            emitter.emit(
                RolloutEvent(
                    rollout=rollout, type="weight_set", weight=set_weight, actor="simulate"
                )
            )
            emitter.flush(10)
            deadline = time.monotonic() + 5
            while router.weight != set_weight and time.monotonic() < deadline:
                time.sleep(0.02)
        router.wait_ready(5)
        start = time.monotonic()
        i = 0
        while True:
            elapsed = time.monotonic() - start
            progress = i / events if events is not None else elapsed / duration_s  # type: ignore[operator]
            if progress >= 1:
                break
            if rate is not None and (ahead := i / rate - elapsed) > 0:
                time.sleep(ahead)
            unit = traffic.unit()
            system = router.choose(unit)
            is_candidate = system == candidate
            profile = spec.candidate_at(progress) if is_candidate else spec.baseline
            draw = traffic.draw(unit, is_candidate, profile)
            for event in to_events(draw, f"{run_id}-{i}", rollout, now(), router.weight, system):
                accepted = emitter.emit(event)
                if on_emit is not None:
                    on_emit(event, accepted)
                if isinstance(event, Result):
                    summary.per_system[system] += 1
                    summary.successes[system] += event.success
                else:
                    summary.feedback += 1
            i += 1
            if on_progress is not None and i % 200 == 0:
                on_progress(progress, i)
        summary.generations = i
        summary.weight = router.weight
        emitter.flush(30)
        summary.elapsed_s = time.monotonic() - start
        summary.emitter = emitter.stats()
    return summary
