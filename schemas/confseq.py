"""Confidence sequences: intervals that hold at every look at once (pure functions).

A fixed 95% interval covers the truth at one pre-chosen sample size; re-judged at every
look, one of many looks misses it far more often than 5%. A confidence sequence at level
``1 - alpha`` covers it at all sample sizes simultaneously:
``P(exists n: truth outside CS_n) <= alpha``, so a verdict read at any look, or at the
moment somebody chooses to act, carries the bound.

The boundary is the two-sided normal mixture of Howard, Ramdas, McAuliffe and Sekhon
(2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences", eq. (14)): for a
sum ``S_n`` of centred increments with variance process ``V_n``, mixing the exponential
supermartingale ``exp(l S - l^2 V / 2)`` over ``l ~ N(0, 1/rho)`` gives
``M_n = sqrt(rho / (V_n + rho)) * exp(S_n^2 / (2 (V_n + rho)))``, and Ville's inequality
bounds ``P(sup M_n >= 1/alpha) <= alpha``. Solving ``M_n = 1/alpha`` for ``|S_n|``::

    |S_n| <= sqrt((V_n + rho) * ln((V_n + rho) / (rho * alpha^2)))

With ``V_n = n sigma^2`` and ``rho = m sigma^2`` this is the usual interval
``estimate +- z * standard error`` with ``z`` = :func:`cs_z` ``(n, m, alpha)`` in place of
1.96: every estimator of ``schemas.metrics`` takes it as its ``z``. ``m`` tunes where the
sequence is narrowest (near ``8 m`` at alpha 0.05); the gates use the phase's minimum
sample. With the variance estimated from the data (rates: Wilson's score form, means:
the sample variance) the bound is asymptotic (Waudby-Smith et al. 2021, "Time-uniform
central limit theory"); tests/schemas/test_confseq.py measures its coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def cs_z(n: float, m: float, alpha: float) -> float:
    """The normal-mixture boundary in standard errors after ``n`` samples (tuning ``m``)."""
    if n <= 0 or m <= 0 or not 0 < alpha < 1:
        raise ValueError(f"need n > 0, m > 0, 0 < alpha < 1 (got {n}, {m}, {alpha})")
    ratio = 1 + n / m
    return math.sqrt((1 + m / n) * math.log(ratio / (alpha * alpha)))


def mixture(s: float, v: float, rho: float) -> float:
    """The normal-mixture martingale ``M`` at sum ``s`` and variance process ``v``."""
    return math.sqrt(rho / (v + rho)) * math.exp(s * s / (2 * (v + rho)))


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval; ``empty`` when the evidence of two looks contradicts itself."""

    low: float
    high: float

    @property
    def empty(self) -> bool:
        return self.low > self.high

    def __and__(self, other: Interval) -> Interval:
        """The intersection (associative and commutative: a running one merges)."""
        return Interval(max(self.low, other.low), min(self.high, other.high))
