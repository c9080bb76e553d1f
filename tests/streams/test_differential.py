"""The guardrails' conditional test: exact against scipy, valid under sequential looks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from schemas.plan import load_plan
from streams.differential import log_pmf, log_ratio, odds, odds_ratio
from streams.sequential import RatioCusum


@pytest.mark.parametrize(
    ("x", "n_c", "n_b", "total", "psi"),
    [(3, 100, 120, 10, 1.0), (0, 50, 60, 4, 2.5), (30, 600, 600, 45, 1.35), (7, 7, 900, 40, 0.5)],
)
def test_pmf_is_fishers_noncentral_hypergeometric(x, n_c, n_b, total, psi):
    expected = stats.nchypergeom_fisher(n_c + n_b, n_c, total, psi).logpmf(x)
    assert log_pmf(x, n_c, n_b, total, psi) == pytest.approx(expected, rel=1e-9)


def test_the_ratio_has_expectation_one_at_the_tolerated_odds_and_less_below():
    n_c, n_b, total, psi0, psi1 = 300, 280, 25, 1.3, 2.0

    def expectation(psi: float) -> float:
        law = stats.nchypergeom_fisher(n_c + n_b, n_c, total, psi)
        return sum(
            law.pmf(x) * math.exp(log_ratio((n_c, x, n_b, total - x), psi0, psi1))
            for x in range(0, total + 1)
        )

    assert expectation(psi0) == pytest.approx(1.0, rel=1e-9)
    assert expectation(1.0) < 1.0


def test_no_evidence_without_bad_events_or_without_a_baseline():
    assert log_ratio((100, 0, 100, 0), 1.0, 2.0) == 0.0
    assert log_ratio((100, 5, 0, 0), 1.0, 2.0) == 0.0
    assert log_ratio((10, 10, 10, 10), 1.0, 2.0) == 0.0


def test_a_shared_drop_leaves_no_evidence():
    """Both systems at 60% instead of 97%: the candidate's share of the failures is as
    usual, so the ratio favours "tolerated" (it only sees the odds ratio)."""
    assert log_ratio((300, 120, 300, 120), odds_ratio(0.03, 0.04), odds_ratio(0.03, 0.06)) < 0


def _false_alarms(runs: int, windows: int, h: float, level, n: int = 200) -> float:
    """A/A runs of ``n`` samples per window and system at the bad share ``level(w)``."""
    rng, alarms = np.random.default_rng(7), 0
    psi0, psi1 = 1.0, odds_ratio(level(1), 2 * level(1))
    for _ in range(runs):
        cusum = RatioCusum(threshold=h)
        for w in range(windows):
            x, y = (int(v) for v in rng.binomial(n, level(w), size=2))
            cusum.step(log_ratio((n, x, n, y), psi0, psi1), n, x)
            if cusum.alarm:
                alarms += 1
                break
    return alarms / runs


@pytest.mark.parametrize(
    ("level", "n"),
    [
        (lambda w: 0.03, 200),
        (lambda w: 0.4 if w % 5 == 0 else 0.03, 200),
        (lambda w: 0.1, 60),  # feedback: 60 verdicts a window, a tenth complaints
        (lambda w: 0.5 if w % 5 == 0 else 0.1, 60),  # and a complaint wave on both
    ],
)
def test_false_alarms_stay_within_the_union_bound(level, n):
    """h = ln(windows / alpha): at most alpha of A/A runs alarm within ``windows``, also
    with shared blips (every fifth window at 40% failures, or 50% complaints, in both
    systems)."""
    windows, alpha = 30, 0.2
    assert _false_alarms(300, windows, math.log(windows / alpha), level, n) <= alpha


def _drift(n: int, base: float, share: float, psi1: float) -> float:
    """The expected log-ratio (psi0 = 1) of a window of ``n`` samples per system, the
    baseline's bad share ``base`` and the candidate's ``share``."""
    y = np.arange(n + 1)
    px, py = stats.binom.pmf(y, n, share), stats.binom.pmf(y, n, base)
    return sum(
        px[i] * py[j] * log_ratio((n, i, n, j), 1.0, psi1)
        for i in range(n + 1)
        for j in range(n + 1)
        if px[i] * py[j] > 1e-12
    )


def test_the_documented_complaint_indifference_point():
    """docs/statistics.md: margin 0, detect 0.1 at a baseline of 10% complaints, 60
    verdicts per window and system: the expected ratio is zero at 14.2% complaints."""
    n, base = 60, 0.1
    psi1 = odds_ratio(base, base + 0.1)
    zero = optimize.brentq(lambda share: _drift(n, base, share, psi1), 0.1, 0.2, xtol=1e-4)
    assert zero == pytest.approx(0.142, abs=0.001)


def test_the_documented_indifference_points_of_the_default_plan():
    """docs/statistics.md, "Where each trigger fires eventually", from the default plan's
    own parameters: the fixed-limit CUSUMs drift up past 7.2% bad events; the success
    guardrail at a 97% baseline past an odds ratio of 1.43 (95.8% success), the latency
    guardrail past 1.45 (7.1% of events over the worsened P95); 300 samples a window."""
    triggers = {t.name: t for t in load_plan().rollback}
    for name in ("success-emergency", "latency-partial"):
        p0, p1 = triggers[name].shares()
        up, down = math.log(p1 / p0), math.log((1 - p0) / (1 - p1))
        assert down / (up + down) == pytest.approx(0.072, abs=0.0005), name

    success = triggers["success-guardrail"]
    base = 0.03
    psi1 = odds_ratio(base, success.worse(base, success.detect_by))
    zero = optimize.brentq(lambda p: _drift(300, base, p, psi1), 0.031, 0.06, xtol=1e-5)
    assert (odds(zero) / odds(base), 1 - zero) == pytest.approx((1.43, 0.958), abs=0.005)

    allowed, alarm = triggers["latency-guardrail"].shares()
    psi1 = odds_ratio(allowed, alarm)
    zero = optimize.brentq(lambda p: _drift(300, allowed, p, psi1), 0.051, 0.1, xtol=1e-5)
    assert (odds(zero) / odds(allowed), zero) == pytest.approx((1.45, 0.071), abs=0.005)
