"""The confidence guardrail's test: an e-value for any distribution on [0, 1] (scipy)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import optimize, stats

from schemas.plan import Trigger
from streams.guardrails import mean_test
from streams.mean_drop import bet, log_e, penalty
from streams.sequential import RatioCusum


def moments(values: np.ndarray) -> tuple[float, float, float]:
    return float(values.sum()), float((values**2).sum()), float(len(values))


def expectation(points, cand_p, base_p, n_c, n_b, e_value) -> float:
    """E[e] exactly: every outcome of ``n_c`` and ``n_b`` draws from ``points``
    (scipy.stats.multinomial), each system's counts per point."""
    points = np.asarray(points)

    def outcomes(n, p):
        for counts in itertools.product(range(n + 1), repeat=len(points)):
            if sum(counts) == n:
                c = np.asarray(counts)
                yield stats.multinomial.pmf(c, n, p), (c @ points, c @ points**2, n)

    return sum(
        pc * pb * math.exp(e_value(x, y))
        for (pc, x), (pb, y) in itertools.product(outcomes(n_c, cand_p), outcomes(n_b, base_p))
    )


POINTS = (0.0, 0.6, 1.0)


def _boundary(base_p, margin, scale):
    """A candidate law on POINTS with mean exactly ``scale * mu_b - margin``."""
    mu = scale * float(np.dot(POINTS, base_p)) - margin
    p1 = mu - 0.6 * 0.3  # 0.3 on the 0.6 point, the rest on 0 and 1
    return (0.7 - p1, 0.3, p1)


@pytest.mark.parametrize(
    ("base_p", "margin", "scale", "centers", "k"),
    [
        ((0.1, 0.3, 0.6), 0.0, 1.0, (0.78, 0.78), 2.0),
        ((0.1, 0.3, 0.6), 0.05, 1.0, (0.5, 0.95), 3.0),  # centers far off: still valid
        ((0.05, 0.25, 0.7), 0.0, 0.9, (0.8, 0.85), 2.5),  # relative margin of 10%
        ((0.2, 0.4, 0.4), 0.1, 1.0, (0.99, 0.01), 1.0),  # centers at the range's ends
    ],
)
def test_the_e_value_has_expectation_at_most_one_on_the_null_boundary(
    base_p, margin, scale, centers, k
):
    cand_p = _boundary(base_p, margin, scale)
    n_c, n_b = 3, 4
    k = min(k, 0.9 * min(n_b / (scale * centers[1]), n_c / (1 - centers[0])))

    def valid(x, y):
        return log_e(x, y, centers, k, scale, margin)

    def unpenalized(x, y):
        return k * (scale * y[0] / n_b - x[0] / n_c - margin)

    assert expectation(POINTS, cand_p, base_p, n_c, n_b, valid) <= 1 + 1e-12
    # the penalty is what makes it valid: without it the expectation exceeds 1
    assert expectation(POINTS, cand_p, base_p, n_c, n_b, unpenalized) > 1.0


def test_a_lower_candidate_mean_makes_it_grow():
    base_p, cand_p = (0.05, 0.25, 0.7), (0.3, 0.4, 0.3)
    k, centers = 2.5, (0.6, 0.85)
    value = expectation(POINTS, cand_p, base_p, 3, 4, lambda x, y: log_e(x, y, centers, k, 1, 0))
    assert value > 1.5


def test_the_penalty_is_psi_over_the_range_squared():
    for kappa, low in [(0.5, 0.8), (2.0, 0.3), (1e-6, 0.5), (3.0, 1e-4)]:
        t = kappa * max(low, 1e-3)
        series = sum(t**j / j for j in range(2, 200)) / max(low, 1e-3) ** 2
        assert penalty(kappa, low) == pytest.approx(series, rel=1e-9)


def test_the_bet_maximizes_the_expected_growth():
    counts, centers, spreads, drift, s = (400, 380), (0.82, 0.87), (0.014, 0.011), 0.05, 1.0

    def growth(k):
        return (
            k * drift
            - penalty(k * s / counts[1], centers[1]) * counts[1] * spreads[1]
            - penalty(k / counts[0], 1 - centers[0]) * counts[0] * spreads[0]
        )

    k = bet(counts, centers, spreads, drift, s)
    limit = 0.9 * min(counts[1] / (s * centers[1]), counts[0] / (1 - centers[0]))
    best = optimize.minimize_scalar(lambda v: -growth(v), bounds=(0, limit), method="bounded")
    assert k == pytest.approx(best.x, rel=1e-4)


GUARDRAIL = Trigger(
    name="confidence", action="emergency", metric="mean_confidence", compare="baseline"
)


def _run(rng, windows: int, h: float, cand_mean, base_mean, n: int = 150) -> bool:
    """One rollout of ``windows`` windows of beta confidences (concentration 12); whether
    the guardrail's CUSUM alarms."""
    cusum, history = RatioCusum(threshold=h), []
    for w in range(windows):
        c, b = cand_mean(w), base_mean(w)
        x = moments(rng.beta(12 * c, 12 * (1 - c), n))
        y = moments(rng.beta(12 * b, 12 * (1 - b), n))
        if history:
            ref_c = tuple(map(sum, zip(*(h[0] for h in history[-10:]), strict=True)))
            ref_b = tuple(map(sum, zip(*(h[1] for h in history[-10:]), strict=True)))
            cusum.step(*mean_test(GUARDRAIL, x, y, ref_c, ref_b))
            if cusum.alarm:
                return True
        history.append((x, y))
    return False


@pytest.mark.parametrize(
    "shared",
    [lambda w: 0.85, lambda w: 0.45 if w % 5 == 0 else 0.85],
    ids=["A/A", "A/A with shared drops"],
)
def test_false_alarms_stay_within_the_union_bound(shared):
    """h = ln(windows / alpha): at most alpha of A/A rollouts alarm, also when every
    fifth window both systems' confidence falls to 0.45."""
    rng, windows, alpha, runs = np.random.default_rng(11), 40, 0.2, 300
    h = math.log(windows / alpha)
    alarms = sum(_run(rng, windows, h, shared, shared) for _ in range(runs))
    assert alarms / runs <= alpha


def test_a_candidate_five_points_lower_is_caught():
    """Mean 0.80 against 0.85 (the default detect): caught in nearly every rollout
    within 40 windows of 150 candidate events at the default plan's threshold (ln(1M /
    150 x 5 / 0.01) = 20.1)."""
    rng, h = np.random.default_rng(12), math.log(1e6 / 150 * 5 / 0.01)
    caught = sum(_run(rng, 40, h, lambda w: 0.80, lambda w: 0.85) for _ in range(100))
    assert caught >= 95


def _growth(drop: float, sd: float, margin: float, detect: float, n: int = 600) -> float:
    """Expected log e-value of a window of ``n`` values per system, the candidate
    ``drop`` below a baseline at 0.85, both with ``sd``, centers at the true means."""
    centers, var = (0.85 - drop, 0.85), sd * sd
    k = bet((n, n), centers, (var, var), detect - margin, 1.0)
    return (
        k * (drop - margin)
        - penalty(k / n, centers[1]) * n * var
        - penalty(k / n, 1 - centers[0]) * n * var
    )


@pytest.mark.parametrize(
    ("sd", "drop", "share"),
    [
        (0.1, 0.02, 0.73),
        (0.1, 0.03, 0.63),
        (0.1, 0.05, 0.49),
        (0.05, 0.02, 0.37),
        (0.05, 0.05, 0.19),
    ],
)
def test_its_evidence_per_event_against_a_normal_test_that_knew_the_variance(sd, drop, share):
    """docs/statistics.md: the share of a normal test's growth (drop^2 / (4 sd^2) per
    pair of values) it draws, margin 0, detect the drop."""
    n = 600
    ratio = _growth(drop, sd, 0.0, drop, n) / (n * drop * drop / (4 * sd * sd))
    assert ratio == pytest.approx(share, abs=0.01)


def test_the_documented_indifference_point():
    """Margin 0.02, detect 0.07, sd 0.1 at 0.85: it fires eventually from 0.036 below."""
    point = optimize.brentq(lambda d: _growth(d, 0.1, 0.02, 0.07), 0.021, 0.07)
    assert point == pytest.approx(0.036, abs=0.001)
