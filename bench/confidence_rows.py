"""The confidence and feedback rows of bench_gates: guardrails a plan may add.

The same two-system rollouts as ``bench.guardrail_rows`` (``phasegate.testing.guardrails``:
confidence beta with sd 0.1 at a mean of 0.85, a verdict on 10% of the results), through
stage 2 with the default plan plus ``CONFIDENCE`` and ``COMPLAINTS`` (margin 0.02 on
the mean; complaints: margin 0, detect 0.1, steps of 50 verdicts). ``today``:
the fixed-limit triggers, which watch neither metric.
"""

from __future__ import annotations

from bench.guardrail_rows import ONSET, SECONDS, Row, after, table
from phasegate.testing.guardrails import COMPLAINTS, CONFIDENCE, Course, Profile, with_triggers
from schemas.plan import load_plan

PLAN = with_triggers(load_plan(), CONFIDENCE, COMPLAINTS)
SHARED = Profile(confidence=0.6, complaints=0.3)

ROWS = [
    Row(Course("A/A", 10, SECONDS), plan=PLAN),
    Row(Course("A/A", 100, SECONDS), plan=PLAN),
    Row(
        Course(
            "shared: both confidence 0.85 -> 0.6, complaints 10% -> 30%",
            10,
            SECONDS,
            ONSET,
            baseline_after=SHARED,
            candidate_after=SHARED,
        ),
        plan=PLAN,
    ),
    *(
        Row(
            Course(
                f"candidate confidence 0.85 -> {mean}",
                10,
                after(10, goal),
                ONSET,
                candidate_after=Profile(confidence=mean),
            ),
            goal,
            plan=PLAN,
        )
        for mean, goal in ((0.8, 2000), (0.82, 5000))
    ),
    Row(
        Course(
            "candidate complaints 10% -> 20%",
            10,
            after(10, 10000),
            ONSET,
            candidate_after=Profile(complaints=0.2),
        ),
        10000,
        plan=PLAN,
    ),
]


def confidence_table(runs: int, jobs: int = 2) -> tuple[str, list[str], list[list[str]]]:
    return table(runs, jobs, ROWS, "Confidence and feedback guardrails")
