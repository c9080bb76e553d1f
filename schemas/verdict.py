"""Pass, fail or inconclusive for one gate criterion, from an estimate (pure functions).

A bound (``min``/``max``) passes when the whole 95% interval is on the right side of the
threshold, fails when it is wholly on the wrong side, and is inconclusive otherwise or
below the minimum sample. A comparison (candidate minus reference) passes when its
interval is within the allowed margin on the bad side, fails when wholly beyond it.
Critical errors are counts, not estimates: one more than allowed is a fail.
"""

from __future__ import annotations

from typing import Literal

from schemas.stats import Comparison, Estimate

Outcome = Literal["pass", "fail", "inconclusive"]


def bound_outcome(
    est: Estimate | None,
    minimum: float | None,
    maximum: float | None,
    samples: int,
    needed: int,
) -> Outcome:
    if est is None or samples < needed:
        return "inconclusive"
    if maximum is not None:
        return "pass" if est.high <= maximum else "fail" if est.low > maximum else "inconclusive"
    assert minimum is not None
    return "pass" if est.low >= minimum else "fail" if est.high < minimum else "inconclusive"


def count_outcome(count: float, maximum: float, samples: int, needed: int) -> Outcome:
    if count > maximum:
        return "fail"
    return "pass" if samples >= needed else "inconclusive"


def comparison_outcome(
    test: Comparison | None, margin: float, lower_is_better: bool, samples: int, needed: int
) -> Outcome:
    if test is None or samples < needed:
        return "inconclusive"
    if lower_is_better:
        return "pass" if test.high <= margin else "fail" if test.low > margin else "inconclusive"
    return "pass" if test.low >= -margin else "fail" if test.high < -margin else "inconclusive"


def overall(outcomes: list[Outcome]) -> Outcome:
    """fail if any fails, pass if all pass, else inconclusive."""
    if "fail" in outcomes:
        return "fail"
    return "pass" if outcomes and set(outcomes) <= {"pass"} else "inconclusive"
