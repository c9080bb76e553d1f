"""The confidence sequence: its closed form against the mixture integral (scipy), and its
coverage at every look by simulation (numpy, fixed seeds, stated tolerances)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from schemas.confseq import Interval, cs_z, mixture
from schemas.stats import mean_interval, wilson

ALPHA = 0.05


@pytest.mark.parametrize(("v", "rho"), [(10.0, 1.0), (1000.0, 125.0), (5e5, 1e3)])
def test_the_boundary_is_where_the_mixture_reaches_one_over_alpha(v: float, rho: float) -> None:
    """The closed form against the defining integral over the mixing distribution."""
    s = cs_z(v, rho, ALPHA) * math.sqrt(v)  # the boundary on the sum, standardised

    def integrand(lam: float) -> float:
        return math.exp(lam * s - lam * lam * v / 2) * stats.norm.pdf(lam, scale=rho**-0.5)

    width = 12 / math.sqrt(v + rho)
    centre = s / (v + rho)
    value, _ = integrate.quad(integrand, centre - width, centre + width, limit=200)
    assert value == pytest.approx(1 / ALPHA, rel=1e-6)
    assert mixture(s, v, rho) == pytest.approx(1 / ALPHA, rel=1e-9)


def test_it_is_wider_than_a_fixed_interval_and_narrowest_near_eight_times_m() -> None:
    assert cs_z(1000, 1000, ALPHA) > 1.96 * 1.8
    widths = {k: cs_z(k * 100, 100, ALPHA) for k in (1, 2, 4, 8, 16, 64, 1024)}
    assert min(widths, key=widths.get) == 8
    assert widths[8] == pytest.approx(3.03, abs=0.01)
    with pytest.raises(ValueError):
        cs_z(0, 100, ALPHA)


def _first_miss_share(low: np.ndarray, high: np.ndarray, truth: float) -> float:
    """Share of runs (rows) whose interval missed ``truth`` at any look (column)."""
    return float(np.mean(((low > truth) | (high < truth)).any(axis=1)))


def _wilson(k: np.ndarray, n: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """schemas.stats.wilson, vectorised (checked against it below)."""
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def test_a_rate_is_covered_at_every_look_in_at_least_95_percent_of_runs() -> None:
    """2,000 rollouts at 97% success, a look every 25 events from 1,000 to 50,000.

    Coverage over all 1,961 looks at once must be >= 0.95 - 0.015 (three standard
    errors of a share near 0.95 over 2,000 runs); a fixed 95% interval misses far more.
    """
    rng = np.random.default_rng(17)
    runs, step, m, p = 2000, 25, 1000, 0.97
    k = np.cumsum(rng.binomial(step, p, size=(runs, 50_000 // step)), axis=1)
    n = np.arange(1, k.shape[1] + 1) * step
    keep = n >= m
    k, n = k[:, keep], n[keep]
    z = np.array([cs_z(x, m, ALPHA) for x in n])
    low, high = _wilson(k, n, z)
    est = wilson(int(k[0, -1]), int(n[-1]), float(z[-1]))
    assert (est.low, est.high) == pytest.approx((low[0, -1], high[0, -1]))
    sequence_miss = _first_miss_share(low, high, p)
    fixed_miss = _first_miss_share(*_wilson(k, n, np.full(n.shape, 1.959964)), p)
    assert sequence_miss <= ALPHA + 0.015
    assert fixed_miss > 3 * ALPHA  # what looking often does to a fixed interval


def test_a_mean_is_covered_at_every_look_in_at_least_95_percent_of_runs() -> None:
    """2,000 runs of skewed (log-normal) latencies, a look every 20 from 1,000 to 20,000."""
    rng = np.random.default_rng(8)
    runs, m, sigma = 2000, 1000, 0.35
    x = rng.lognormal(np.log(120.0), sigma, size=(runs, 20_000))
    truth = 120.0 * math.exp(sigma**2 / 2)
    looks = np.arange(m, 20_001, 20)
    total, squares = np.cumsum(x, axis=1)[:, looks - 1], np.cumsum(x * x, axis=1)[:, looks - 1]
    mean = total / looks
    sd = np.sqrt((squares - looks * mean * mean) / (looks - 1))
    z = np.array([cs_z(n, m, ALPHA) for n in looks])
    half = z * sd / np.sqrt(looks)
    est = mean_interval(float(total[0, -1]), float(squares[0, -1]), int(looks[-1]), float(z[-1]))
    assert est.low == pytest.approx(mean[0, -1] - half[0, -1])
    assert _first_miss_share(mean - half, mean + half, truth) <= ALPHA + 0.015


def test_intervals_intersect_and_know_when_they_contradict() -> None:
    assert Interval(0.1, 0.5) & Interval(0.3, 0.9) == Interval(0.3, 0.5)
    assert (Interval(0.1, 0.2) & Interval(0.3, 0.9)).empty
