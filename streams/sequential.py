"""The sequential decision rule of the rollback triggers: a Bernoulli CUSUM (Page, 1954).

Each event is "bad" (a failure, or slower than a latency limit) or not. ``p0`` is the
share of bad events that is acceptable, ``p1 > p0`` the share that must trigger. The
statistic is the log-likelihood ratio of p1 over p0 summed since it last fell to zero
(an SPRT restarted whenever the evidence favours "acceptable")::

    S = max(0, S + bad * ln(p1/p0) + good * ln((1-p1)/(1-p0)))

and the trigger fires when ``S >= h``. For every stream whose bad share is at most p0,
``exp`` of each partial sum is a non-negative supermartingale, so by Ville's inequality a
run starting at a given event reaches ``h`` with probability at most ``exp(-h)``; a union
bound over the possible starts gives P(false alarm within N events) <= N * exp(-h). With
``h = ln(N / alpha)`` the false-alarm chance over the first N events is at most alpha,
however often it is looked at (every partial that arrives is a look). Evidence arrives
in batches (a window's new counts); checking at batch ends only removes looks.

S is capped at ``h``, so however long an incident lasts, it clears (hysteresis) once S
is back at zero: the events since it fired favour the acceptable share by ``h`` again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(kw_only=True)
class RatioCusum:
    """A CUSUM of log-likelihood ratios: fires at ``threshold``, clears back at zero."""

    threshold: float
    score: float = 0.0
    # events and bad events since the score was last zero: the evidence of an incident
    run_n: int = 0
    run_bad: int = 0
    total: int = 0

    def step(self, log_ratio: float, n: int, bad: int) -> float:
        """Add a batch's log-likelihood ratio (``n`` events, ``bad`` bad); return the score.

        Any ratio whose exponential has expectation at most 1 under "acceptable" keeps the
        guarantee (the differential guardrails add theirs, ``streams.differential``).
        """
        self.total += n
        score = self.score + log_ratio
        if score <= 0:
            self.score, self.run_n, self.run_bad = 0.0, 0, 0
        else:
            self.score = min(score, self.threshold)
            self.run_n += n
            self.run_bad += bad
        return self.score

    @property
    def alarm(self) -> bool:
        return self.score >= self.threshold

    @property
    def clear(self) -> bool:
        return self.score == 0.0

    @property
    def run_share(self) -> float | None:
        """Share of bad events in the evidence run (None when there is none)."""
        return self.run_bad / self.run_n if self.run_n else None

    def reset(self) -> None:
        self.score, self.run_n, self.run_bad, self.total = 0.0, 0, 0, 0


@dataclass
class Cusum(RatioCusum):
    """Bernoulli CUSUM between an acceptable share ``p0`` and an alarm share ``p1``."""

    p0: float
    p1: float
    _bad_step: float = field(init=False, repr=False)
    _good_step: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.p0 < self.p1 < 1:
            raise ValueError(f"need 0 < p0 < p1 < 1 (got p0={self.p0}, p1={self.p1})")
        self._bad_step = math.log(self.p1 / self.p0)
        self._good_step = math.log((1 - self.p1) / (1 - self.p0))

    def update(self, n: int, bad: int) -> float:
        """Add a batch of ``n`` events, ``bad`` of them bad; return the score."""
        if n <= 0:
            return self.score
        bad = min(max(bad, 0), n)
        return self.step(bad * self._bad_step + (n - bad) * self._good_step, n, bad)
