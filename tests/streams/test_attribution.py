"""Attribution: a shared cause stays shared; a candidate much worse than the baseline does not."""

import pytest

from schemas.plan import load_plan
from streams.attribution import attribute, tolerated

EMERGENCY = next(t for t in load_plan().rollback if t.name == "success-emergency")
BEFORE = (247, 5969)  # the baseline's 10 windows before: 4.1% failures (two earlier blips)


def test_the_triggers_own_odds_ratio_is_tolerated():
    assert tolerated(EMERGENCY) == pytest.approx((0.10 / 0.90) / (0.05 / 0.95))


def test_a_shared_blip_the_candidates_cusum_caught_early_stays_shared():
    # A/A with shared 8 s blips to 60%, 10 events/s, seed 57: the emergency trigger fired
    # 3 s into the blip at 1050 s, on 39 failures of 110 candidate events read in its
    # run; the baseline had 10 of 82 over the same moments (z = 3.7 at an odds ratio of 1)
    assert attribute(EMERGENCY, (39, 110), (10, 82), BEFORE) == "shared"


def test_a_shared_blip_at_100_events_a_second_stays_shared():
    # the same at 100 events/s, seed 49: fired 1 s into a blip on 60 failures of 113
    # candidate events against the baseline's 32 of 100 (z = 3.1 at an odds ratio of 1)
    assert attribute(EMERGENCY, (60, 113), (32, 100), (2430, 60225)) == "shared"


def test_a_candidate_much_worse_than_a_degraded_baseline_is_candidate_specific():
    assert attribute(EMERGENCY, (60, 110), (10, 82), BEFORE) == "candidate-specific"


def test_a_candidate_alone_degraded_is_candidate_specific():
    assert attribute(EMERGENCY, (17, 110), (2, 82), BEFORE) == "candidate-specific"


def test_both_at_the_same_share_is_shared():
    assert attribute(EMERGENCY, (30, 100), (30, 100), BEFORE) == "shared"
