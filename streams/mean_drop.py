"""The differential test of a mean on [0, 1] (confidence): an empirical-Bernstein e-value.

Per window, the candidate's ``n_c`` values ``x`` and the baseline's ``n_b`` values ``y``,
all in [0, 1], are known by their counts, sums and sums of squares (what every window
carries). The guardrail's null: the candidate's mean is at least the tolerated one,
``mu_c >= s * mu_b - m`` (absolute margin: ``s = 1``; relative ``r``: ``s = 1 - r``,
``m = 0``). With centers ``a_c``, ``a_b`` and a multiplier ``k`` fixed before the window
(from the windows before it, and its counts), the window's log e-value is::

    k * (s * mean(y) - mean(x) - m)
      - P(k s / n_b, a_b) * sum((y - a_b)**2) - P(k / n_c, 1 - a_c) * sum((x - a_c)**2)

with ``P(kappa, low) = psi(kappa * low) / low**2`` and ``psi(t) = -ln(1 - t) - t``
(:func:`penalty`). Each value's deviation below its center is at most ``low`` (``a_b``
for a baseline value, ``1 - a_c`` for a candidate value read downwards), so by Fan,
Grama and Liu's inequality ``exp(t u - psi(t) u**2) <= 1 + t u`` (``u >= -1``,
``0 <= t < 1``) each value's factor has expectation at most 1 under the null, for any
distribution on [0, 1] (Howard, Ramdas, McAuliffe and Sekhon 2021, Theorem 4: the
empirical-Bernstein supermartingale). The product over the independent values is the
window's e-value, and the CUSUM of these (``streams.sequential.RatioCusum``) keeps the
Ville and union-bound guarantee of the other triggers. A drop both systems share moves
both means alike: only their difference is evidence (and the deviations, which only
lower the e-value).
"""

from __future__ import annotations

import math

Moments = tuple[float, float, float]  # sum, sum of squares, count (``schemas.metrics.Mean``)

LOW_MIN = 1e-3  # a center this close to the range's end is treated as this far from it
VAR_MIN = 1e-4  # the spread assumed at least when choosing ``k`` (sd 0.01)
CAP = 0.9  # kappa * low is kept at most this (the penalty grows without bound at 1)


def penalty(kappa: float, low: float) -> float:
    """``psi(kappa * low) / low**2``: the price of a squared deviation (``kappa * low < 1``)."""
    low = max(low, LOW_MIN)
    t = kappa * low
    if t < 1e-4:  # psi(t) = t**2 / 2 + t**3 / 3 + ...: avoid cancelling digits
        return kappa * kappa * (0.5 + t / 3)
    return (-math.log1p(-t) - t) / (low * low)


def deviation(moments: Moments, center: float) -> float:
    """``sum((v - center)**2)`` of the values with ``moments``."""
    total, squares, n = moments
    return max(0.0, squares - 2 * center * total + n * center * center)


def mean(moments: Moments) -> float:
    return moments[0] / moments[2]


def variance(moments: Moments) -> float:
    """The values' variance around their mean (0 without values)."""
    return deviation(moments, mean(moments)) / moments[2] if moments[2] else 0.0


def log_e(
    cand: Moments, base: Moments, centers: tuple[float, float], k: float, s: float, m: float
) -> float:
    """The window's log e-value (module doc); ``centers``: (candidate, baseline)."""
    a_c, a_b = centers
    n_c, n_b = cand[2], base[2]
    gap = s * mean(base) - mean(cand) - m
    return (
        k * gap
        - penalty(k * s / n_b, a_b) * deviation(base, a_b)
        - penalty(k / n_c, 1 - a_c) * deviation(cand, a_c)
    )


def bet(
    counts: tuple[float, float],
    centers: tuple[float, float],
    spreads: tuple[float, float],
    drift: float,
    s: float,
) -> float:
    """The ``k`` that maximizes the expected log e-value when ``s * mu_b - m - mu_c`` is
    ``drift`` and each system's values spread by ``spreads`` (variances) around its
    center: all known before the window. Bisection on the concave growth's slope."""
    (n_c, n_b), (a_c, a_b) = counts, centers
    v_c, v_b = (max(v, VAR_MIN) for v in spreads)
    low_c, low_b = max(1 - a_c, LOW_MIN), max(a_b, LOW_MIN)

    def slope(k: float) -> float:
        kb, kc = k * s / n_b, k / n_c
        return drift - s * v_b * kb / (1 - kb * low_b) - v_c * kc / (1 - kc * low_c)

    lo, hi = 0.0, CAP * min(n_b / (s * low_b), n_c / low_c)
    if slope(hi) >= 0:
        return hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slope(mid) > 0 else (lo, mid)
    return lo
