"""The CUSUM rule: its arithmetic, its reset, and its false-alarm bound on simulated data."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sequential import Cusum


def test_scores_are_log_likelihood_ratios_and_reset_at_zero():
    c = Cusum(0.05, 0.10, threshold=3.0)
    c.update(1, 1)
    assert c.score == pytest.approx(math.log(2))
    assert (c.run_n, c.run_bad) == (1, 1)
    c.update(100, 0)  # 100 good events outweigh one bad one
    assert c.clear and c.run_n == 0 and c.run_share is None
    c.update(10, 10)
    assert c.alarm and c.run_share == 1.0


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=40))
def test_score_is_never_negative_and_the_run_is_consistent(batches):
    c = Cusum(0.03, 0.10, threshold=10.0)
    for n, bad in batches:
        c.update(n, bad)
        assert c.score >= 0
        assert (c.score == 0) == (c.run_n == 0)
        assert 0 <= c.run_bad <= c.run_n


def test_rejects_shares_in_the_wrong_order():
    with pytest.raises(ValueError):
        Cusum(0.1, 0.05, threshold=1.0)


def test_false_alarms_stay_under_the_bound_at_the_acceptable_share():
    """At exactly p0 (the worst "acceptable" case), P(alarm within N) <= N * exp(-h)."""
    rng, n_events, runs = random.Random(7), 2000, 300
    h = math.log(n_events / 0.05)  # bound: 5%
    alarms = 0
    for _ in range(runs):
        c = Cusum(0.05, 0.10, threshold=h)
        for _ in range(n_events // 50):
            c.update(50, sum(rng.random() < 0.05 for _ in range(50)))
            if c.alarm:
                alarms += 1
                break
    assert alarms / runs <= 0.05
