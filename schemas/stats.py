"""Interval estimates and two-sample tests for rates and means (pure functions, no state)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point value with its two-sided confidence interval."""

    value: float
    low: float
    high: float


def wilson(successes: float, n: float, z: float = Z95) -> Estimate | None:
    """Wilson score interval of a proportion; None without observations."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(total: float, sq_total: float, n: float, z: float = Z95) -> Estimate | None:
    """Normal-approximation interval of a mean from its sum and sum of squares."""
    if n <= 0:
        return None
    mean = total / n
    if n < 2:
        return Estimate(mean, mean, mean)
    var = max(0.0, (sq_total - n * mean * mean) / (n - 1))
    half = z * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True, slots=True)
class Comparison:
    """A difference ``a - b``, its standard error, and the z statistic of a test of ``a = b``."""

    difference: float
    se: float
    z: float
    z_crit: float = Z95

    @property
    def low(self) -> float:
        return self.difference - self.z_crit * self.se

    @property
    def high(self) -> float:
        return self.difference + self.z_crit * self.se

    def p_worse(self, margin: float = 0.0, lower_is_worse: bool = True) -> float:
        """One-sided p-value against "a is not worse than b by more than ``margin``".

        Small means a is significantly worse: lower when ``lower_is_worse``, else higher.
        """
        shift = (self.difference + margin) if lower_is_worse else (margin - self.difference)
        if self.se == 0:
            return 0.0 if shift < 0 else 1.0
        return 1.0 - normal_sf(shift / self.se)

    @property
    def p_two_sided(self) -> float:
        return min(1.0, 2 * normal_sf(abs(self.z)))


def two_proportions(
    successes_a: float, n_a: float, successes_b: float, n_b: float, z: float = Z95
) -> Comparison | None:
    """Two-proportion z-test of ``p_a = p_b`` (pooled); interval of ``p_a - p_b`` unpooled."""
    if n_a <= 0 or n_b <= 0:
        return None
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = p_a - p_b
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return Comparison(diff, se, diff / se0 if se0 > 0 else 0.0, z)


def two_means(
    a: tuple[float, float, float], b: tuple[float, float, float], z: float = Z95
) -> Comparison | None:
    """Welch z-test of ``mean_a = mean_b``; each side is (sum, sum of squares, count)."""
    (total_a, sq_a, n_a), (total_b, sq_b, n_b) = a, b
    if n_a < 2 or n_b < 2:
        return None
    m_a, m_b = total_a / n_a, total_b / n_b
    var_a = max(0.0, (sq_a - n_a * m_a * m_a) / (n_a - 1))
    var_b = max(0.0, (sq_b - n_b * m_b * m_b) / (n_b - 1))
    se = math.sqrt(var_a / n_a + var_b / n_b)
    diff = m_a - m_b
    return Comparison(diff, se, diff / se if se > 0 else 0.0, z)


def split_p_value(candidate: float, total: float, share: float) -> float | None:
    """Chi-square (1 dof) p-value of ``candidate`` of ``total`` against an expected ``share``.

    The sample ratio mismatch test; None when it cannot be computed (no events, or a
    share of 0 or 1, where any event on the other side is a mismatch by definition).
    """
    if total <= 0 or not 0 < share < 1:
        return None
    expected_c, expected_b = total * share, total * (1 - share)
    chi2 = (candidate - expected_c) ** 2 / expected_c
    chi2 += (total - candidate - expected_b) ** 2 / expected_b
    return math.erfc(math.sqrt(chi2 / 2))


def split_evidence(candidate: int, total: int, share: float, prior: float = 100.0) -> float:
    """Log-likelihood ratio for a mismatch of ``candidate`` of ``total`` units at ``share``.

    A mixture SPRT: the likelihood of the counts averaged over candidate shares drawn from
    Beta(``prior`` x share, ``prior`` x (1 - share)) (shares within about 5 points of
    ``share`` at 50%), over their likelihood at ``share``. Under ``share`` its exponential
    is a nonnegative martingale with mean 1 as units arrive one by one, so by Ville's
    inequality it ever reaches ln(1/alpha) with probability at most alpha.
    """
    if not 0 < share < 1:
        raise ValueError(f"share {share} is not inside (0, 1)")
    a, b, c, n = prior * share, prior * (1 - share), candidate, total
    return (
        _log_beta(a + c, b + n - c)
        - _log_beta(a, b)
        - c * math.log(share)
        - (n - c) * math.log(1 - share)
    )


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
