"""The differential test of a guardrail: the candidate against the baseline, same windows.

Per window, condition on ``total``, the bad events of both systems together. Given it,
the candidate's bad events ``x`` follow Fisher's noncentral hypergeometric distribution
with the odds ratio ``psi`` of a bad event (candidate over baseline): a function of the
ratio only, not of the common level, so a cause both systems share (an upstream outage)
moves ``total``, not the evidence about ``psi``.

The guardrail compares ``psi1`` (the worsening to catch) with ``psi0`` (the worsening
tolerated, from the margin): the log-likelihood ratio of one window is
:func:`log_ratio`. For every ``psi <= psi0`` its exponential has expectation at most 1
(the family has a monotone likelihood ratio in ``x``), whatever happened in the windows
before and whatever ``total`` is, so the CUSUM of these ratios
(``streams.sequential.Cusum.step``) keeps the Ville and union-bound guarantee of the
fixed-limit triggers.
"""

from __future__ import annotations

import math

Counts = tuple[int, int, int, int]  # candidate n, candidate bad, baseline n, baseline bad


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _support(n_c: int, n_b: int, total: int) -> range:
    return range(max(0, total - n_b), min(total, n_c) + 1)


def log_norm(n_c: int, n_b: int, total: int, psi: float) -> float:
    """``ln sum_k C(n_c, k) C(n_b, total - k) psi**k`` over the support (log-sum-exp)."""
    log_psi = math.log(psi)
    terms = [
        _log_choose(n_c, k) + _log_choose(n_b, total - k) + k * log_psi
        for k in _support(n_c, n_b, total)
    ]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def log_pmf(x: int, n_c: int, n_b: int, total: int, psi: float) -> float:
    """Log-probability of ``x`` candidate bad events of ``total`` (Fisher's NCH)."""
    return (
        _log_choose(n_c, x)
        + _log_choose(n_b, total - x)
        + x * math.log(psi)
        - log_norm(n_c, n_b, total, psi)
    )


def log_ratio(counts: Counts, psi0: float, psi1: float) -> float:
    """ln of P(x | total, psi1) / P(x | total, psi0) for one window's counts."""
    n_c, x, n_b, y = counts
    total = x + y
    if n_c <= 0 or n_b <= 0 or total in (0, n_c + n_b):
        return 0.0  # no bad events, or nothing but: no evidence about the ratio
    return (
        x * math.log(psi1 / psi0)
        - log_norm(n_c, n_b, total, psi1)
        + log_norm(n_c, n_b, total, psi0)
    )


def odds(p: float) -> float:
    return p / (1 - p)


def odds_ratio(base: float, worse: float) -> float:
    """The odds ratio of a bad share ``worse`` over ``base`` (both clipped into (0, 1))."""
    clip = lambda p: min(max(p, 1e-6), 1 - 1e-6)  # noqa: E731
    return odds(clip(worse)) / odds(clip(base))
