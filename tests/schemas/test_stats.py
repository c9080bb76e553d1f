"""The shared statistics against textbook values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.stats import normal_sf, split_evidence, two_means, two_proportions, wilson


def test_normal_tail() -> None:
    assert normal_sf(0) == pytest.approx(0.5)
    assert normal_sf(1.959963984540054) == pytest.approx(0.025)


def test_two_proportions_matches_the_textbook_pooled_z() -> None:
    # 45/50 vs 40/50: pooled p = 0.85, se = sqrt(.85*.15*(2/50)) = 0.0714
    cmp = two_proportions(45, 50, 40, 50)
    assert cmp is not None
    assert cmp.difference == pytest.approx(0.1)
    assert cmp.z == pytest.approx(0.1 / math.sqrt(0.85 * 0.15 * 2 / 50))
    assert cmp.p_two_sided == pytest.approx(2 * normal_sf(cmp.z))
    assert cmp.low < 0.1 < cmp.high
    assert two_proportions(1, 0, 1, 1) is None


def test_one_sided_worse_is_small_only_when_a_is_clearly_lower() -> None:
    worse = two_proportions(900, 1000, 960, 1000)
    same = two_proportions(955, 1000, 960, 1000)
    assert worse is not None and same is not None
    assert worse.p_worse() < 0.001
    assert same.p_worse() > 0.05
    assert worse.p_worse(margin=0.1) > 0.5  # within a 10-point margin


def test_two_means_higher_is_worse_for_latency() -> None:
    slow = two_means(
        (250.0 * 100, 250.0**2 * 100 + 99 * 100, 100), (200.0 * 100, 200.0**2 * 100 + 99 * 100, 100)
    )
    assert slow is not None
    assert slow.difference == pytest.approx(50)
    assert slow.p_worse(lower_is_worse=False) < 0.001
    assert slow.p_worse(lower_is_worse=True) > 0.999
    assert two_means((1, 1, 1), (1, 1, 5)) is None


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_contains_the_rate(successes: int, n: int) -> None:
    successes = min(successes, n)
    est = wilson(successes, n)
    assert est is not None
    assert 0 <= est.low <= est.value + 1e-12 and est.value <= est.high + 1e-12 <= 1 + 1e-12


@pytest.mark.parametrize(("c", "n", "share"), [(0, 1, 0.5), (45, 100, 0.5), (300, 1000, 0.25)])
def test_split_evidence_is_the_beta_binomial_over_the_binomial(c: int, n: int, share: float):
    from scipy.stats import betabinom, binom

    mixture = betabinom.logpmf(c, n, 100 * share, 100 * (1 - share))
    assert split_evidence(c, n, share) == pytest.approx(mixture - binom.logpmf(c, n, share))


def test_split_evidence_grows_with_a_mismatch_and_not_without() -> None:
    assert split_evidence(5_000, 10_000, 0.5) < 0  # the exact share: evidence against it falls
    assert split_evidence(4_500, 10_000, 0.5) > math.log(1_000)
    with pytest.raises(ValueError, match="share"):
        split_evidence(1, 2, 1.0)
