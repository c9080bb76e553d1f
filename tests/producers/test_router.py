"""Routing: sticky buckets, split accuracy, step-back, and following the rollout log."""

from __future__ import annotations

import time
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from producers.emitter import Emitter
from producers.router import BUCKETS, Router, bucket, to_candidate
from schemas.events import RolloutEvent

UNITS = [f"user-{i}" for i in range(100_000)]
CHI2_1DOF_999 = 10.83  # chi-square critical values at p = 0.001
CHI2_99DOF_999 = 148.23


def test_bucket_is_stable_and_in_range():
    assert bucket("r", "u1") == bucket("r", "u1")
    assert bucket("r", "u1") != bucket("other", "u1") or bucket("r", "u2") != bucket("other", "u2")
    assert all(0 <= bucket("r", u) < BUCKETS for u in UNITS[:1000])


def test_buckets_are_uniform():
    counts = Counter(bucket("kai-response", u) // 100 for u in UNITS)
    expected = len(UNITS) / 100
    chi2 = sum((counts[b] - expected) ** 2 / expected for b in range(100))
    assert chi2 < CHI2_99DOF_999


def test_split_accuracy_over_100k_units():
    for weight in (1, 10, 50, 75, 99):
        n = sum(to_candidate("kai-response", u, weight) for u in UNITS)
        p = weight / 100
        expect_c, expect_b = len(UNITS) * p, len(UNITS) * (1 - p)
        chi2 = (n - expect_c) ** 2 / expect_c + (len(UNITS) - n - expect_b) ** 2 / expect_b
        assert chi2 < CHI2_1DOF_999, (weight, n)
    assert not any(to_candidate("r", u, 0) for u in UNITS[:1000])
    assert all(to_candidate("r", u, 100) for u in UNITS[:1000])


@given(st.integers(0, 100), st.integers(0, 100), st.text(min_size=1, max_size=20))
def test_raising_the_weight_only_moves_units_to_the_candidate(w1, w2, unit):
    low, high = sorted((w1, w2))
    assert to_candidate("r", unit, low) <= to_candidate("r", unit, high)


def test_step_back_returns_exactly_the_units_that_moved_last():
    at = {w: {u for u in UNITS[:20_000] if to_candidate("r", u, w)} for w in (50, 75, 100)}
    moved_last = at[100] - at[75]
    assert at[100] - moved_last == at[75]  # 100 -> 75 moves back exactly those
    assert at[50] < at[75] < at[100]


def test_router_follows_the_log_within_a_second(kafka_settings):
    with Emitter(kafka_settings) as emitter:
        emitter.emit(RolloutEvent(rollout="r", type="phase_started", weight=50, phase=1))
        emitter.emit(RolloutEvent(rollout="other", type="weight_set", weight=100))
        assert emitter.flush(10)
        with Router(kafka_settings, "r", candidate="new", baseline="old") as router:
            assert router.wait_ready(10)
            assert (router.weight, router.state.phase) == (50, 1)  # replayed at start
            share = sum(router.choose(u) == "new" for u in UNITS[:10_000]) / 10_000
            assert 0.47 < share < 0.53
            for weight in (75, 0):
                emitter.emit(RolloutEvent(rollout="r", type="rollback", weight=weight))
                assert emitter.flush(5)
                t0 = time.monotonic()
                while router.weight != weight and time.monotonic() - t0 < 5:
                    time.sleep(0.01)
                assert router.weight == weight
                assert time.monotonic() - t0 < 1.0
            assert router.choose("anyone") == "old"


def test_unreadable_log_routes_at_the_safe_default(no_broker_settings, caplog):
    with Router(no_broker_settings, "r", default_weight=0, retry_s=0.2) as router:
        assert router.choose("u1") == "pipeline"
        assert not router.wait_ready(1.0)  # through several attempts
        assert router.choose("u1") == "pipeline"
    warnings = [r for r in caplog.records if r.name == "rollout.reading"]
    assert len(warnings) == 1 and "cannot read phasegate.rollout" in warnings[0].getMessage()
