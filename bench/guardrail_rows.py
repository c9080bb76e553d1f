"""The guardrail rows of bench_gates: the default plan against today's fixed-limit rule.

Each run is a simulated two-system rollout at weight 50 (``phasegate.testing.guardrails``:
the generator and its parameters) through stage 2 with the default plan. Its rollbacks
are not applied, so the same run also shows what today's rule (the fixed-limit
triggers, rolling back on any cause) would have done: its first alert that acts.

Columns: ``false rollbacks`` (before the onset; A/A and shared causes: any), ``false
guardrail`` (a guardrail alert, the same way), ``shared`` (fixed-limit alerts attributed
to a shared cause, of all of them), ``caught`` (within the row's goal, in candidate
events after the onset: by a guardrail for the candidate-only rows at 93.5% and the
latency rows, by any rollback at 85%; today: by any fixed-limit alert) and the median
delay.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import Pool

from bench.common import median
from phasegate.testing.guardrails import Blips, Course, Outcome, Profile, run
from schemas.plan import Plan, load_plan
from schemas.stats import wilson
from streams.alerts import FIXED_ROLLBACK_KINDS, GATE_FAILED, GUARDRAIL, HELD

SECONDS = 1800  # 30 min
ONSET = 300  # the change comes after 5 min
ACTS = FIXED_ROLLBACK_KINDS | {HELD}  # today's rule rolls back on any cause


@dataclass(frozen=True)
class Row:
    course: Course
    goal: int | None = None  # candidate events after the onset to catch it within
    by_guardrail: bool = True  # caught: by a guardrail alert (else: by a rollback)
    plan: Plan | None = None  # default: the packaged plan


def after(rate: int, events: int) -> int:
    """Seconds a course runs: the onset, then ``events`` candidate events and 3 windows."""
    return ONSET + math.ceil(events / rate) + 180


ROWS = [
    Row(Course("A/A", 10, SECONDS)),
    Row(Course("A/A", 100, SECONDS)),
    Row(Course("A/A, shared 8 s blips to 60% every 5 min", 10, SECONDS, blips=Blips())),
    Row(Course("A/A, shared 8 s blips to 60% every 5 min", 100, SECONDS, blips=Blips())),
    Row(
        Course(
            "shared outage, both 97% -> 85%",
            10,
            after(10, 5000),
            ONSET,
            baseline_after=Profile(success=0.85),
            candidate_after=Profile(success=0.85),
        ),
    ),
    Row(
        Course(
            "candidate 97% -> 93.5%", 10, after(10, 5000), ONSET, candidate_after=Profile(0.935)
        ),
        5000,
    ),
    Row(
        Course("candidate 97% -> 85%", 10, after(10, 1000), ONSET, candidate_after=Profile(0.85)),
        1000,
        by_guardrail=False,
    ),
    Row(
        Course(
            "candidate P95 +20%",
            10,
            after(10, 5000),
            ONSET,
            candidate_after=Profile(median_ms=144),
        ),
        5000,
    ),
    Row(
        Course(
            "candidate P95 +50%",
            10,
            after(10, 2000),
            ONSET,
            candidate_after=Profile(median_ms=180),
        ),
        2000,
    ),
]


def _share(k: int, n: int) -> str:
    est = wilson(k, n)
    return f"{k / n:.1%} ({est.low:.1%}-{est.high:.1%})" if est else "-"


def _first(outcome: Outcome, keep: Callable) -> tuple[int, int] | None:
    """(second, candidate events after the onset) of the first alert ``keep`` takes."""
    for second, (events, alert) in zip(outcome.seconds, outcome.alerts, strict=True):
        if keep(alert):
            return second, events
    return None


def _rules(row: Row, o: Outcome) -> dict[str, tuple[tuple[int, int] | None, tuple | None]]:
    """Per rule: (first rollback, first catch), each (second, events after onset)."""
    rollback = None
    if o.rollbacks:
        second = next(s for s, (_, a) in zip(o.seconds, o.alerts, strict=True) if a.action)
        rollback = (second, o.rollbacks[0][0])
    guardrail = _first(o, lambda a: a.kind == GUARDRAIL)
    today = _first(o, lambda a: a.kind in ACTS)
    caught = guardrail if row.by_guardrail else rollback
    fixed = _first(o, lambda a: a.kind in ACTS | {GATE_FAILED})
    return {"phasegate": (rollback, caught), "today": (today, fixed)}


def _one(args: tuple[Row, int]) -> Outcome:
    row, seed = args
    return run(row.course, row.plan or load_plan(), seed)


def table(
    runs: int,
    jobs: int = 2,
    scenarios: list[Row] = ROWS,
    title: str = "Guardrails and attribution",
) -> tuple[str, list[str], list[list[str]]]:
    """The ``scenarios`` over ``runs`` rollouts each, ``jobs`` processes."""
    rows = []
    with Pool(jobs) as pool:
        for row in scenarios:
            outcomes = pool.map(_one, [(row, seed) for seed in range(runs)])
            rows += _row(row, outcomes)
    columns = ["scenario", "events/s", "rule", "false rollbacks", "false guardrail", "shared"]
    columns += ["caught (goal)", "median delay"]
    return f"{title} on {runs} simulated rollouts per row (weight 50)", columns, rows


def _row(row: Row, outcomes: list[Outcome]) -> list[list[str]]:
    # without a goal (A/A, shared causes) any rollback or guardrail alert is false
    onset = row.course.onset if row.goal and row.course.onset else row.course.seconds
    out = []
    for rule in ("phasegate", "today"):
        early = caught = guard_early = 0
        delays = []
        for o in outcomes:
            rollback, catch = _rules(row, o)[rule]
            early += rollback is not None and rollback[0] < onset
            if rule == "phasegate":
                g = _first(o, lambda a: a.kind == GUARDRAIL)
                guard_early += g is not None and g[0] < onset
            if row.goal and catch is not None and catch[0] >= onset:
                delays.append(catch[1])
                caught += catch[1] <= row.goal
        alerts = [a for o in outcomes for _, a in o.alerts if a.kind in ACTS]
        shared = sum(a.attribution == "shared" for a in alerts)
        out.append(
            [
                row.course.name,
                str(row.course.rate),
                rule,
                _share(early, len(outcomes)),
                _share(guard_early, len(outcomes)) if rule == "phasegate" else "-",
                f"{shared}/{len(alerts)}" if rule == "phasegate" else "-",
                f"{_share(caught, len(outcomes))} ({row.goal:,})" if row.goal else "-",
                f"{median(delays):,.0f}" if delays else "-",
            ]
        )
    return out
