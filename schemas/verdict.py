"""Pass, fail or inconclusive for one gate criterion (pure).

:func:`judge` is the one judgement of a criterion; what it is judged on is any
:class:`schemas.metrics.Totals`: live windows in the worker (``streams.gates``) or stored
history in a report (``sinks.verdicts``), each metric measured as the registry
(``schemas.metrics``) defines it, so both always say the same over the same events.

A bound (``min``/``max``) passes when the whole 95% interval is on the right side of the
threshold, fails when it is wholly on the wrong side, and is inconclusive otherwise or
below the minimum sample. A comparison (candidate minus reference) passes when its
interval is within the allowed margin on the bad side, fails when wholly beyond it.
Critical errors are counts, not estimates: one more than allowed is a fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from schemas.metrics import Metric, Totals, metric
from schemas.plan import Criterion, Phase
from schemas.stats import Comparison, Estimate

Outcome = Literal["pass", "fail", "inconclusive"]


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
    candidate: Totals,
    baseline: Totals | None = None,
    previous: Totals | None = None,
) -> Verdict:
    """The verdict of one criterion of ``phase`` (see the module docstring)."""
    meaning = metric(criterion.metric)
    n = meaning.samples(candidate)
    needed = phase.min_feedback if meaning.feedback else phase.min_samples
    if criterion.compare is not None:
        reference = baseline if criterion.compare == "baseline" else previous
        return _comparison(criterion, meaning, candidate, reference, n, needed)
    threshold = criterion.max if criterion.max is not None else criterion.min
    assert threshold is not None
    est = meaning.estimate(candidate)
    if meaning.unit == "count":
        outcome = count_outcome(est.value if est else 0, threshold, n, needed)
    else:
        outcome = bound_outcome(est, criterion.min, criterion.max, n, needed)
    return Verdict(
        criterion.label,
        meaning.name,
        outcome,
        None if est is None else est.value,
        None if est is None else est.low,
        None if est is None else est.high,
        threshold,
        n,
        note=f"{n} of {needed} samples" if n < needed else "",
    )


def _comparison(
    criterion: Criterion,
    meaning: Metric,
    candidate: Totals,
    reference: Totals | None,
    n: int,
    needed: int,
) -> Verdict:
    name, margin = meaning.name, criterion.margin
    lower_better = meaning.lower_is_better
    threshold = margin if lower_better else -margin
    ref_n = 0 if reference is None else meaning.samples(reference)
    if reference is None or not ref_n:
        what = "the baseline" if criterion.compare == "baseline" else "the previous phase"
        return Verdict(
            criterion.label, name, "inconclusive", None, None, None, threshold, n,
            reference_samples=ref_n, note=f"no data for {what}",
        )  # fmt: skip
    test = meaning.compare(candidate, reference)
    smaller = min(n, ref_n)
    return Verdict(
        criterion.label,
        name,
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
