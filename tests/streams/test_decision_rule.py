"""The statistical goals on a small run of bench/bench_gates.py (same code, fewer rollouts)."""

from __future__ import annotations

import pytest

from bench.bench_gates import CASES, run_case
from schemas.plan import load_plan

RUNS = 30

pytestmark = pytest.mark.slow  # simulates many rollouts: `make test`, not `make check`


@pytest.fixture(scope="module")
def plan():
    return load_plan()


def test_aa_rollouts_raise_no_rollback_while_the_naive_rule_does(plan):
    outcomes = run_case(CASES["aa"], RUNS, plan, seed=1000)
    assert outcomes["phasegate"].early == 0  # goal: <= 1% (500 runs: 0.0%)
    assert outcomes["naive"].early > RUNS // 2  # looking again and again at noise


def test_a_drop_to_85_percent_is_caught_within_1000_candidate_events(plan):
    o = run_case(CASES["degrade"], RUNS, plan, seed=2000)["phasegate"]
    assert o.early == 0
    assert o.detected_within(1000) == RUNS  # goal: >= 95% (500 runs: 100%)
    assert max(o.delays) <= 800


def test_a_latency_regression_is_caught(plan):
    o = run_case(CASES["latency"], RUNS, plan, seed=3000)["phasegate"]
    assert o.early == 0
    assert o.detected_within(2000) >= RUNS - 1
