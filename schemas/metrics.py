"""The metric registry: what each metric a plan can name means, in one place.

One :class:`Metric` per name: its unit, which direction is better, how its value and 95%
interval are estimated from a system's :class:`Totals` (the live window aggregate,
``streams.aggregate.WindowStats``, and the stored rollups, ``sinks.history.Side``, both
give them), the SQL that reads its value from a ``results`` rollup (``sinks.rollups``),
and the two-sample comparison a ``compare`` criterion uses. Live gates, stored
verdicts, ``/status``, ``/metrics``, the dashboard and the reports read meaning from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from schemas.stats import (
    Z95,
    Comparison,
    Estimate,
    mean_interval,
    two_means,
    two_proportions,
    wilson,
)

Unit = Literal["share", "ms", "score", "count"]
Better = Literal["higher", "lower"]

QUANTILE_RANK_ERROR = 0.01
"""Both latency sketches' stated accuracy: the value of a rank within 1% of the one asked
for (t-digest, stored), to within 1% of that value (DDSketch, live)."""


class Totals(Protocol):
    """The counts and sums of one system over a span that every metric is computed from."""

    @property
    def events(self) -> int: ...
    @property
    def successes(self) -> int: ...
    @property
    def fallbacks(self) -> int: ...
    @property
    def critical_errors(self) -> int: ...
    @property
    def confidence_sum(self) -> float: ...
    @property
    def confidence_sq_sum(self) -> float: ...
    @property
    def latency_sum(self) -> float: ...
    @property
    def latency_sq_sum(self) -> float: ...
    @property
    def feedback(self) -> Mapping[str, int]: ...

    def latency_quantiles(self, levels: Sequence[float]) -> list[float | None]:
        """The latency quantile at each of ``levels`` (0..1; None without events)."""
        ...


def feedback_total(t: Totals) -> int:
    return sum(t.feedback.values())


@dataclass(frozen=True)
class Rate:
    """A share of hits: Wilson interval; compared by a two-proportion z-test."""

    hits: Callable[[Totals], float]
    total: Callable[[Totals], float]
    sql: str  # its value over a rollup
    comparison: str | None = "two proportions"

    def estimate(self, t: Totals, z: float = Z95) -> Estimate | None:
        return wilson(self.hits(t), self.total(t), z=z)

    def compare(self, a: Totals, b: Totals, z: float = Z95) -> Comparison | None:
        return two_proportions(self.hits(a), self.total(a), self.hits(b), self.total(b), z)


@dataclass(frozen=True)
class Mean:
    """A mean from its sum and sum of squares: normal interval; compared by Welch's z."""

    moments: Callable[[Totals], tuple[float, float, float]]  # (sum, sum of squares, n)
    sql: str
    comparison: str | None = "Welch"

    def estimate(self, t: Totals, z: float = Z95) -> Estimate | None:
        return mean_interval(*self.moments(t), z=z)

    def compare(self, a: Totals, b: Totals, z: float = Z95) -> Comparison | None:
        return two_means(self.moments(a), self.moments(b), z)


@dataclass(frozen=True)
class Quantile:
    """A latency quantile from a sketch; its interval is distribution-free (the ranks of
    order statistics); no two-sample comparison."""

    q: float
    comparison: str | None = None

    @property
    def sql(self) -> str:
        return f"quantilesTDigestMerge({self.q:g})(latency)[1]"

    def levels(self, n: int, z: float = Z95) -> tuple[float, float, float]:
        """The quantile levels of the value and of its interval's ends over ``n`` events."""
        half = z * math.sqrt(self.q * (1 - self.q) / n)
        return self.q, max(0.0, self.q - half), min(1.0, self.q + half)

    def estimate(self, t: Totals, z: float = Z95) -> Estimate | None:
        if not t.events:
            return None
        value, low, high = t.latency_quantiles(self.levels(t.events, z))
        return Estimate(value, low, high)  # type: ignore[arg-type]

    def compare(self, a: Totals, b: Totals, z: float = Z95) -> Comparison | None:
        return None


@dataclass(frozen=True)
class Count:
    """A count of facts, not an estimate: the interval is the count itself."""

    count: Callable[[Totals], float]
    sql: str
    comparison: str | None = None

    def estimate(self, t: Totals, z: float = Z95) -> Estimate | None:
        n = self.count(t)
        return Estimate(n, n, n)

    def compare(self, a: Totals, b: Totals, z: float = Z95) -> Comparison | None:
        return None


Estimator = Rate | Mean | Quantile | Count


@dataclass(frozen=True)
class Bad:
    """What counts against a metric: its name (``failures``) and its amount in totals
    (for ``mean_confidence`` the deficit of each event's confidence from 1, summed); for
    a feedback metric, ``verdicts``: its amount among verdict counts (a rule's)."""

    name: str
    amount: Callable[[Totals], float]
    verdicts: Callable[[Mapping[str, int]], float] | None = None


def _bad_verdicts(name: str, of: Callable[[Mapping[str, int]], float]) -> Bad:
    return Bad(name, lambda t: of(t.feedback), of)


@dataclass(frozen=True)
class Metric:
    """One metric: its name and unit, the better direction and its estimator."""

    name: str
    title: str  # what a person reads: "success rate", "P95 response time"
    unit: Unit
    better: Better
    estimator: Estimator
    feedback: bool = False  # computed from feedback verdicts (sample: ``min_feedback``)
    trigger: bool = False  # a rollback trigger (fixed-limit or guardrail) may watch it
    bad: Bad | None = None  # None: a latency (slower than a limit: ``streams.slow``)

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"

    @property
    def comparable(self) -> bool:
        """Whether a ``compare`` criterion can judge it."""
        return self.estimator.comparison is not None

    @property
    def sql(self) -> str:
        """Its value over a span of a rollup (``results``; ``feedback`` for feedback)."""
        return self.estimator.sql

    @property
    def sample_name(self) -> str:
        """What its samples are: ``verdicts`` (feedback metrics) or ``events``."""
        return "verdicts" if self.feedback else "events"

    def samples(self, t: Totals) -> int:
        """Events (feedback verdicts for feedback metrics) behind it."""
        return feedback_total(t) if self.feedback else t.events

    def estimate(self, t: Totals, z: float = Z95) -> Estimate | None:
        """Its value with its 95% interval (None without data)."""
        return self.estimator.estimate(t, z)

    def compare(self, a: Totals, b: Totals, z: float = Z95) -> Comparison | None:
        """The two-sample test of ``a`` minus ``b`` (None: not comparable, or no data);
        ``z``: its interval's half-width in standard errors."""
        return self.estimator.compare(a, b, z)


def _verdicts(verdict: str) -> Rate:
    return Rate(
        lambda t: t.feedback.get(verdict, 0),
        feedback_total,
        f"sumIf(events, verdict = '{verdict}') / sum(events)",
    )


def _failures(t: Totals) -> float:
    return t.events - t.successes


def _latency(q: float) -> Metric:
    name, title = f"p{round(q * 100)}_latency_ms", f"P{round(q * 100)} response time"
    return Metric(name, title, "ms", "lower", Quantile(q), trigger=True)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "success_rate",
            "success rate",
            "share",
            "higher",
            Rate(lambda t: t.successes, lambda t: t.events, "sum(successes) / sum(events)"),
            trigger=True,
            bad=Bad("failures", _failures),
        ),
        Metric(
            "feedback_positive_rate",
            "positive feedback",
            "share",
            "higher",
            _verdicts("correct"),
            feedback=True,
            trigger=True,
            bad=_bad_verdicts(
                "verdicts not correct", lambda v: sum(v.values()) - v.get("correct", 0)
            ),
        ),
        Metric(
            "complaint_rate",
            "complaints",
            "share",
            "lower",
            _verdicts("incorrect"),
            feedback=True,
            trigger=True,
            bad=_bad_verdicts("complaints", lambda v: v.get("incorrect", 0)),
        ),
        Metric(
            "fallback_rate",
            "fallback rate",
            "share",
            "lower",
            Rate(lambda t: t.fallbacks, lambda t: t.events, "sum(fallbacks) / sum(events)"),
            bad=Bad("fallbacks", lambda t: t.fallbacks),
        ),
        Metric(
            "mean_latency_ms",
            "mean response time",
            "ms",
            "lower",
            Mean(
                lambda t: (t.latency_sum, t.latency_sq_sum, t.events),
                "sum(latency_sum) / sum(events)",
            ),
        ),
        Metric(
            "mean_confidence",
            "mean confidence",
            "score",
            "higher",
            Mean(
                lambda t: (t.confidence_sum, t.confidence_sq_sum, t.events),
                "sum(confidence_sum) / sum(events)",
            ),
            trigger=True,
            bad=Bad("confidence deficit", lambda t: t.events - t.confidence_sum),
        ),
        *(_latency(q) for q in (0.5, 0.9, 0.95, 0.99)),
        Metric(
            "critical_errors",
            "critical errors",
            "count",
            "lower",
            Count(lambda t: t.critical_errors, "sum(critical_errors)"),
            trigger=True,
            bad=Bad("critical errors", lambda t: t.critical_errors),
        ),
    )
}
NAMES = tuple(METRICS)
TRIGGER_NAMES = tuple(name for name, m in METRICS.items() if m.trigger)
QUANTILES = {n: m.estimator for n, m in METRICS.items() if isinstance(m.estimator, Quantile)}
"""The latency quantile metrics' estimators, by name."""


def metric(name: str) -> Metric:
    """The registry's metric ``name`` (KeyError naming the known ones otherwise)."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r} (known: {', '.join(NAMES)})") from None


def quantile_of(name: str) -> float:
    """0.95 for ``p95_latency_ms``."""
    if name not in QUANTILES:
        raise ValueError(f"{name} is not a latency quantile")
    return QUANTILES[name].q
