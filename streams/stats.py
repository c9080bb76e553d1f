"""Interval estimates for rates and means (pure functions, no state)."""

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
