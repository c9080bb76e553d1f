"""Pass, fail or inconclusive for one gate criterion (pure).

:func:`judge` is the one judgement of a criterion; what it is judged on is any
:class:`Evidence`: live windows in the worker (``streams.gates``) or stored history in a
report (``sinks.verdicts``), so both always say the same over the same events.

A bound (``min``/``max``) passes when the whole 95% interval is on the right side of the
threshold, fails when it is wholly on the wrong side, and is inconclusive otherwise or
below the minimum sample. A comparison (candidate minus reference) passes when its
interval is within the allowed margin on the bad side, fails when wholly beyond it.
Critical errors are counts, not estimates: one more than allowed is a fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, Self

from schemas.plan import FEEDBACK_METRICS, LOWER_IS_BETTER, Criterion, Phase
from schemas.stats import Comparison, Estimate

Outcome = Literal["pass", "fail", "inconclusive"]


class Evidence(Protocol):
    """One system's numbers over a span, as a criterion needs them."""

    def samples(self, metric: str) -> int:
        """Events (feedback verdicts for feedback metrics) behind ``metric``."""
        ...

    def measure(self, metric: str) -> Estimate | None:
        """The metric's value with its 95% interval (counts: the value alone)."""
        ...

    def compare(self, other: Self, metric: str) -> Comparison | None:
        """Two-sample test of this minus ``other``."""
        ...


@dataclass(frozen=True)
class Verdict:
    """One criterion's verdict with the evidence behind it (``low``/``high``: 95%)."""

    criterion: str
    metric: str
    outcome: Outcome
    observed: float | None
    low: float | None
    high: float | None
    threshold: float
    samples: int
    reference_samples: int | None = None
    p_value: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    criterion: Criterion,
    phase: Phase,
    candidate: Evidence,
    baseline: Evidence | None = None,
    previous: Evidence | None = None,
) -> Verdict:
    """The verdict of one criterion of ``phase`` (see the module docstring)."""
    metric = criterion.metric
    n = candidate.samples(metric)
    needed = phase.min_feedback if metric in FEEDBACK_METRICS else phase.min_samples
    if criterion.compare is not None:
        reference = baseline if criterion.compare == "baseline" else previous
        return _comparison(criterion, candidate, reference, n, needed)
    threshold = criterion.max if criterion.max is not None else criterion.min
    assert threshold is not None
    est = candidate.measure(metric)
    if metric == "critical_errors":
        outcome = count_outcome(est.value if est else 0, threshold, n, needed)
    else:
        outcome = bound_outcome(est, criterion.min, criterion.max, n, needed)
    return Verdict(
        criterion.label,
        metric,
        outcome,
        None if est is None else est.value,
        None if est is None else est.low,
        None if est is None else est.high,
        threshold,
        n,
        note=f"{n} of {needed} samples" if n < needed else "",
    )


def _comparison(
    criterion: Criterion, candidate: Evidence, reference: Evidence | None, n: int, needed: int
) -> Verdict:
    metric, margin = criterion.metric, criterion.margin
    lower_better = metric in LOWER_IS_BETTER
    threshold = margin if lower_better else -margin
    ref_n = 0 if reference is None else reference.samples(metric)
    if reference is None or not ref_n:
        what = "the baseline" if criterion.compare == "baseline" else "the previous phase"
        return Verdict(
            criterion.label, metric, "inconclusive", None, None, None, threshold, n,
            reference_samples=ref_n, note=f"no data for {what}",
        )  # fmt: skip
    test = candidate.compare(reference, metric)
    smaller = min(n, ref_n)
    return Verdict(
        criterion.label,
        metric,
        comparison_outcome(test, margin, lower_better, smaller, needed),
        None if test is None else test.difference,
        None if test is None else test.low,
        None if test is None else test.high,
        threshold,
        n,
        reference_samples=ref_n,
        p_value=None if test is None else test.p_worse(margin, lower_is_worse=not lower_better),
        note=f"{smaller} of {needed} samples on the smaller side" if smaller < needed else "",
    )


def bound_outcome(
    est: Estimate | None,
    minimum: float | None,
    maximum: float | None,
    samples: int,
    needed: int,
) -> Outcome:
    if est is None or samples < needed:
        return "inconclusive"
    if maximum is not None:
        return "pass" if est.high <= maximum else "fail" if est.low > maximum else "inconclusive"
    assert minimum is not None
    return "pass" if est.low >= minimum else "fail" if est.high < minimum else "inconclusive"


def count_outcome(count: float, maximum: float, samples: int, needed: int) -> Outcome:
    if count > maximum:
        return "fail"
    return "pass" if samples >= needed else "inconclusive"


def comparison_outcome(
    test: Comparison | None, margin: float, lower_is_better: bool, samples: int, needed: int
) -> Outcome:
    if test is None or samples < needed:
        return "inconclusive"
    if lower_is_better:
        return "pass" if test.high <= margin else "fail" if test.low > margin else "inconclusive"
    return "pass" if test.low >= -margin else "fail" if test.high < -margin else "inconclusive"


def overall(outcomes: list[Outcome]) -> Outcome:
    """fail if any fails, pass if all pass, else inconclusive."""
    if "fail" in outcomes:
        return "fail"
    return "pass" if outcomes and set(outcomes) <= {"pass"} else "inconclusive"
