"""Simulated two-system rollouts through stage 2's rollback triggers and guardrails.

A :class:`Course` says what the baseline and the candidate do over time: healthy, shared
blips (both systems drop together for a few seconds every few minutes), a shared
outage, or a change of the candidate alone. :func:`run` feeds a course to stage 2 at the
worker's cadence (one partial per system every second, read at the simulated clock)
and reports the alerts and rollbacks. Latency is log-normal (the simulator's shape),
confidence beta (concentration :data:`CONCENTRATION`), and :data:`FEEDBACK` of the
results get a verdict, "incorrect" or "correct". Needs numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from rollout.state import fold
from schemas.events import Alert, RolloutEvent
from schemas.internal import Partial
from schemas.plan import Plan, Trigger
from streams.aggregate import WindowStats
from streams.sketch import LatencySketch, mapping
from streams.stage2 import Stage2
from streams.windows import to_datetime, window_start

START = datetime(2026, 1, 1, tzinfo=UTC)
ROLLOUT = "bench"
WINDOW = 60
WEIGHT = 50
_MULTIPLIER = mapping()._multiplier  # the sketch's layout: key = ceil(log2(v) * it)
CONCENTRATION = 12.0  # beta(c * mean, c * (1 - mean)): sd 0.1 at a mean of 0.85
FEEDBACK = 0.1  # share of results with a verdict (the simulator's feedback_rate)

CONFIDENCE = Trigger(
    name="confidence-guardrail",
    action="emergency",
    metric="mean_confidence",
    compare="baseline",
    margin=0.02,  # detect: margin + 0.05
)
COMPLAINTS = Trigger(
    name="complaint-guardrail",
    action="emergency",
    metric="complaint_rate",
    compare="baseline",
    detect=0.1,
    min_samples=50,
)
"""The confidence and feedback guardrails of docs/statistics.md (no default plan has them)."""


def with_triggers(plan: Plan, *extra: Trigger) -> Plan:
    """``plan`` with the rollback triggers ``extra`` added after its own (validated)."""
    triggers = [t.model_dump() for t in (*plan.rollback, *extra)]
    return Plan.model_validate({**plan.model_dump(), "rollback": triggers})


@dataclass(frozen=True)
class Profile:
    """One system at one moment: success rate, log-normal latency, mean confidence and
    the share of its feedback verdicts that complain."""

    success: float = 0.97
    median_ms: float = 120.0
    sigma: float = 0.35
    confidence: float = 0.85
    complaints: float = 0.1


@dataclass(frozen=True)
class Blips:
    """Both systems at ``success`` for ``seconds`` every ``every`` seconds."""

    every: int = 300
    seconds: int = 8
    success: float = 0.6

    def on(self, t: int) -> bool:
        return (t - self.every // 2) % self.every < self.seconds and t >= self.every // 2


@dataclass(frozen=True)
class Course:
    """Both systems over ``seconds``, each at ``rate`` events/s (weight 50)."""

    name: str
    rate: float
    seconds: int
    onset: int | None = None  # when ``baseline_after`` / ``candidate_after`` begin
    baseline: Profile = Profile()
    candidate: Profile = Profile()
    baseline_after: Profile | None = None
    candidate_after: Profile | None = None
    blips: Blips | None = None

    def at(self, t: int) -> tuple[Profile, Profile]:
        base, cand = self.baseline, self.candidate
        if self.onset is not None and t >= self.onset:
            base, cand = self.baseline_after or base, self.candidate_after or cand
        if self.blips is not None and self.blips.on(t):
            base, cand = (
                replace(base, success=self.blips.success),
                replace(cand, success=self.blips.success),
            )
        return base, cand


def stats(n: int, profile: Profile, rng, more) -> WindowStats:
    """``n`` events of ``profile`` as a window aggregate (the sketch's bins computed at once);
    confidence and feedback drawn from ``more`` (so success and latency draw as before)."""
    import numpy as np

    s = WindowStats()
    s.count, s.successes = n, int(rng.binomial(n, profile.success))
    latencies = rng.lognormal(math.log(profile.median_ms), profile.sigma, n)
    keys, counts = np.unique(np.ceil(np.log2(latencies) * _MULTIPLIER), return_counts=True)
    s.latency = LatencySketch(
        bins=dict(zip(keys.astype(int).tolist(), counts.tolist(), strict=True))
    )
    s.latency_sum, s.latency_sq_sum = float(latencies.sum()), float((latencies**2).sum())
    c = CONCENTRATION
    confidence = more.beta(c * profile.confidence, c * (1 - profile.confidence), n)
    s.confidence_sum, s.confidence_sq_sum = float(confidence.sum()), float((confidence**2).sum())
    verdicts = int(more.binomial(n, FEEDBACK))
    incorrect = int(more.binomial(verdicts, profile.complaints))
    s.feedback.update({"incorrect": incorrect, "correct": verdicts - incorrect})
    s.weights[WEIGHT] = n
    return s


@dataclass
class Outcome:
    """What one plan did on one simulated rollout: its alerts and rollbacks, each with
    the candidate events from the onset (from the start without one) to it."""

    alerts: list[tuple[int, Alert]] = field(default_factory=list)
    rollbacks: list[tuple[int, RolloutEvent]] = field(default_factory=list)
    onset_second: int = 0
    seconds: list[int] = field(default_factory=list)  # the second of each alert


def partials(course: Course, seed: int) -> Iterator[tuple[int, int, list[Partial]]]:
    """Per simulated second: (second, candidate events so far, that second's partials)."""
    import numpy as np  # only the simulation needs it

    rng, more = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    offsets = dict.fromkeys(("pipeline", "production"), 0)
    candidate_events = 0
    for t in range(course.seconds):
        now = START + timedelta(seconds=t)
        out = []
        for system, profile in zip(("pipeline", "production"), course.at(t), strict=True):
            n = int(rng.poisson(course.rate))
            if not n:
                continue
            first = offsets[system]
            offsets[system] += n
            candidate_events += n if system == "production" else 0
            out.append(
                Partial(
                    rollout=ROLLOUT,
                    system=system,
                    window_start=to_datetime(window_start(now, WINDOW)),
                    window_seconds=WINDOW,
                    source_topic=f"results-{system}",
                    partition=0,
                    first_offset=first,
                    last_offset=first + n - 1,
                    committed_offset=first,
                    read_at=now + timedelta(seconds=1),
                    stats=stats(n, profile, rng, more).to_state(),
                )
            )
        yield t, candidate_events, out


def run(course: Course, plan: Plan, seed: int) -> Outcome:
    """What ``plan`` does on ``course``; its own rollbacks are not applied to the log (the
    traffic goes on), so later alerts show what a plan that had held would have done."""
    start = RolloutEvent(rollout=ROLLOUT, type="phase_started", weight=WEIGHT, phase=1, ts=START)
    state = fold([start], ROLLOUT)
    stage = Stage2(WINDOW, 15 * WINDOW, plan, state_of=lambda r: state)
    outcome, at_onset = Outcome(onset_second=course.onset or 0), 0
    for t, events, batch in partials(course, seed):
        if t == outcome.onset_second:
            at_onset = events
        for partial in batch:
            for out in stage.apply(partial):
                if isinstance(out, Alert) and out.kind != "recovered":
                    outcome.alerts.append((events - at_onset, out))
                    outcome.seconds.append(t)
                elif isinstance(out, RolloutEvent):
                    outcome.rollbacks.append((events - at_onset, out))
        if t % WINDOW == 0:
            stage.expire(START.timestamp() + t)
    return outcome
