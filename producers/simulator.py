"""Realistic simulated traffic: a pure core, and a runner through the real Router and Emitter.

The core (:class:`Traffic`) is deterministic for a seed and needs no Kafka: it picks a
unit, and for the system that serves it draws success, confidence (beta), latency
(log-normal), an error (type, critical share), the rules applied (Zipf-like usage) and
maybe a user's verdict; each unit has a fixed language segment (60% "de", 40% "en").
:func:`generate` turns it into contract events with timestamps from an injectable clock,
routing with the same sticky hash as the Router, so statistical benchmarks can simulate
many rollouts in memory.

Scenarios (:data:`SCENARIOS`): ``healthy``, ``degrade`` (candidate success drops to about
85% at the onset, mostly timeouts of "de" users), ``latency`` (candidate latency, P95
included, +50% from the onset), ``critical-burst`` (a short burst of critical candidate
errors at the onset), ``outage`` (from the onset every candidate request times out at
2 s) and ``aa`` (both systems identical, for false-alarm measurements). The onset is a
fraction of the run.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from producers.router import BUCKETS, bucket, to_candidate
from schemas.base import now
from schemas.events import ErrorInfo, Feedback, Result

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class SystemProfile:
    """How one system behaves."""

    success: float = 0.97
    segment_success: tuple[tuple[str, float], ...] = ()  # overrides ``success`` per segment
    confidence: tuple[float, float] = (9.0, 1.5)  # beta(a, b): mean a / (a + b)
    latency_median_ms: float = 120.0
    latency_sigma: float = 0.35  # log-normal shape; P95 = median * exp(1.645 sigma)
    errors: tuple[tuple[str, float], ...] = (
        ("timeout", 0.4),
        ("model_error", 0.35),
        ("invalid_output", 0.25),
    )
    critical_share: float = 0.0  # of the failures
    feedback_rate: float = 0.1
    positive_if_success: float = 0.9  # P(verdict correct | success)
    positive_if_failure: float = 0.1


@dataclass(frozen=True)
class Scenario:
    """Two profiles, and what the candidate turns into between ``onset`` and ``until``."""

    name: str
    baseline: SystemProfile
    candidate: SystemProfile
    changed: SystemProfile | None = None
    onset: float = 0.5  # fraction of the run
    until: float = 1.0

    def candidate_at(self, progress: float) -> SystemProfile:
        if self.changed is not None and self.onset <= progress < self.until:
            return self.changed
        return self.candidate


def segment_of(unit_id: str) -> str:
    """A simulated unit's language, fixed per unit: 60% "de", 40% "en"."""
    return "de" if bucket("language", unit_id) < 0.6 * BUCKETS else "en"


_BASELINE = SystemProfile(success=0.965, latency_median_ms=130.0, confidence=(8.0, 1.6))
_CANDIDATE = SystemProfile(success=0.978, latency_median_ms=110.0, confidence=(10.0, 1.4))

SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario("healthy", _BASELINE, _CANDIDATE),
    "degrade": Scenario(
        "degrade",
        _BASELINE,
        _CANDIDATE,
        replace(
            _CANDIDATE,
            segment_success=(("de", 0.78), ("en", 0.955)),  # about 85% overall
            errors=(("timeout", 0.8), ("model_error", 0.1), ("invalid_output", 0.1)),
        ),
        onset=0.5,
    ),
    "latency": Scenario(
        "latency",
        _BASELINE,
        _CANDIDATE,
        replace(_CANDIDATE, latency_median_ms=_CANDIDATE.latency_median_ms * 1.5),
        onset=0.5,
    ),
    "critical-burst": Scenario(
        "critical-burst",
        _BASELINE,
        _CANDIDATE,
        replace(_CANDIDATE, success=0.9, critical_share=1.0),
        onset=0.5,
        until=0.55,
    ),
    "outage": Scenario(
        "outage",
        _BASELINE,
        _CANDIDATE,
        replace(
            _CANDIDATE,
            success=0.0,
            latency_median_ms=2000.0,
            latency_sigma=0.0,
            errors=(("timeout", 1.0),),
        ),
        onset=0.3,
    ),
    "aa": Scenario("aa", _BASELINE, _BASELINE),
}


@dataclass(frozen=True)
class Draw:
    """One simulated generation, before it becomes events."""

    unit_id: str
    candidate: bool
    success: bool
    confidence: float
    latency_ms: float
    error: tuple[str, bool] | None  # (type, critical)
    rules: tuple[str, ...]
    verdict: str | None
    segment: str


class Traffic:
    """The deterministic random core: units, outcomes, rules, verdicts."""

    def __init__(self, seed: int = 0, *, units: int = 10_000, rules: int = 30) -> None:
        self.rng = random.Random(seed)
        self.units = units
        self.rule_names = [f"rule-{k:03d}" for k in range(1, rules + 1)]
        self.rule_weights = list(itertools.accumulate(1 / k**1.1 for k in range(1, rules + 1)))

    def unit(self) -> str:
        return f"user-{self.rng.randrange(self.units)}"

    def draw(self, unit_id: str, candidate: bool, profile: SystemProfile) -> Draw:
        rng = self.rng
        segment = segment_of(unit_id)
        success = rng.random() < dict(profile.segment_success).get(segment, profile.success)
        confidence = rng.betavariate(*profile.confidence)
        latency = rng.lognormvariate(math.log(profile.latency_median_ms), profile.latency_sigma)
        error = None
        if not success:
            names, weights = zip(*profile.errors, strict=True)
            kind = rng.choices(names, weights)[0]
            error = (kind, rng.random() < profile.critical_share)
            confidence *= 0.5
        n_rules = rng.randint(1, 4)
        rules = tuple(
            dict.fromkeys(rng.choices(self.rule_names, cum_weights=self.rule_weights, k=n_rules))
        )
        verdict = None
        if rng.random() < profile.feedback_rate:
            p = profile.positive_if_success if success else profile.positive_if_failure
            u = rng.random()
            verdict = "correct" if u < p else ("incorrect" if u < p + (1 - p) * 0.8 else "unsure")
        return Draw(
            unit_id, candidate, success, confidence, latency, error, rules, verdict, segment
        )


def virtual_clock(start: datetime | None = None, rate: float = 100.0) -> Clock:
    """A clock that advances ``1 / rate`` seconds per reading: simulated time, no waiting."""
    t0 = start or now()
    step = timedelta(seconds=1 / rate)
    counter = itertools.count()
    return lambda: t0 + next(counter) * step


def generate(
    scenario: Scenario | str,
    events: int,
    *,
    weight: int = 50,
    seed: int = 0,
    rollout: str = "kai-response",
    clock: Clock | None = None,
    choose: Callable[[str], bool] | None = None,
    candidate: str = "production",
    baseline: str = "pipeline",
    run: str = "sim",
) -> Iterator[Result | Feedback]:
    """``events`` simulated generations as contract events (a Result, maybe a Feedback).

    ``choose(unit_id) -> is_candidate`` defaults to the Router's sticky hash at ``weight``;
    ``clock`` defaults to a virtual clock at 100 events/s.
    """
    if isinstance(scenario, str):
        scenario = SCENARIOS[scenario]
    traffic = Traffic(seed)
    clock = clock or virtual_clock()
    choose = choose or (lambda unit: to_candidate(rollout, unit, weight))
    for i in range(events):
        unit = traffic.unit()
        is_candidate = choose(unit)
        profile = scenario.candidate_at(i / events) if is_candidate else scenario.baseline
        d = traffic.draw(unit, is_candidate, profile)
        system = candidate if is_candidate else baseline
        yield from to_events(d, f"{run}-{i}", rollout, clock(), weight, system)


def to_events(
    d: Draw, query_id: str, rollout: str, ts: datetime, weight: int, system: str
) -> Iterator[Result | Feedback]:
    """The contract events of one draw."""
    yield Result(
        ts=ts,
        rollout=rollout,
        system=system,
        query_id=query_id,
        unit_id=d.unit_id,
        success=d.success,
        confidence=d.confidence,
        latency_ms=d.latency_ms,
        error=ErrorInfo(type=d.error[0], critical=d.error[1]) if d.error else None,
        rules=list(d.rules),
        weight=weight,
        segment=d.segment,
    )
    if d.verdict is not None:
        yield Feedback(
            ts=ts,
            rollout=rollout,
            query_id=query_id,
            system=system,
            verdict=d.verdict,
            rules=list(d.rules),  # the judged answer's, as an application names them
            segment=d.segment,
        )
