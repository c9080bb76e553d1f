"""Pass, fail, inconclusive: the interval against the threshold, and enough samples."""

from __future__ import annotations

from schemas.stats import Comparison, Estimate
from schemas.verdict import bound_outcome, comparison_outcome, count_outcome, overall


def test_bounds_need_the_whole_interval_on_one_side() -> None:
    assert bound_outcome(Estimate(0.97, 0.96, 0.98), 0.95, None, 1000, 1000) == "pass"
    assert bound_outcome(Estimate(0.95, 0.94, 0.96), 0.95, None, 1000, 1000) == "inconclusive"
    assert bound_outcome(Estimate(0.90, 0.89, 0.93), 0.95, None, 1000, 1000) == "fail"
    assert bound_outcome(Estimate(150, 140, 160), None, 200, 1000, 1000) == "pass"
    assert bound_outcome(Estimate(250, 240, 260), None, 200, 1000, 1000) == "fail"
    assert bound_outcome(Estimate(0.99, 0.98, 1.0), 0.95, None, 999, 1000) == "inconclusive"
    assert bound_outcome(None, 0.95, None, 1000, 1000) == "inconclusive"


def test_comparisons_allow_the_margin_on_the_bad_side() -> None:
    slightly_lower = Comparison(-0.005, 0.002, -2.5)  # interval about [-0.009, -0.001]
    assert comparison_outcome(slightly_lower, 0.01, False, 1000, 1000) == "pass"
    assert comparison_outcome(slightly_lower, 0.0, False, 1000, 1000) == "fail"
    slower = Comparison(30.0, 2.0, 15.0)
    assert comparison_outcome(slower, 20.0, True, 1000, 1000) == "fail"
    assert comparison_outcome(slower, 40.0, True, 1000, 1000) == "pass"
    assert comparison_outcome(slower, 40.0, True, 10, 1000) == "inconclusive"


def test_counts_and_the_overall_decision() -> None:
    assert count_outcome(1, 0, 10, 1000) == "fail"
    assert count_outcome(0, 0, 10, 1000) == "inconclusive"
    assert count_outcome(0, 0, 1000, 1000) == "pass"
    assert overall(["pass", "pass"]) == "pass"
    assert overall(["pass", "inconclusive"]) == "inconclusive"
    assert overall(["inconclusive", "fail"]) == "fail"
    assert overall([]) == "inconclusive"
