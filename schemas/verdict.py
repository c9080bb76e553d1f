"""Pass, fail or inconclusive for one gate criterion (pure).

:func:`judge` is the one judgement of a criterion; what it is judged on is any
:class:`schemas.metrics.Totals`: live windows in the worker (``streams.gates``) or stored
history in a report (``sinks.verdicts``), each metric measured as the registry
(``schemas.metrics``) defines it, so both always say the same over the same events.

Every interval is a confidence sequence at the plan's ``gates.alpha`` (``schemas.confseq``):
it holds at every look at once. A bound (``min``/``max``) passes when the whole interval
is on the right side of the threshold, fails when it is wholly on the wrong side, and is
inconclusive otherwise or below the minimum sample. A comparison (candidate minus
reference) passes when its interval is within the allowed margin on the bad side, fails
when wholly beyond it. Critical errors are counts, not estimates: one more than allowed
is a fail.

``held``: the running intersection of the criterion's remembered looks (``schemas.looks``,
one at each window's end): the verdict is read on it, and the newest figures only add to
the display, so "pass" changes only at a window's end and stays until the evidence
contradicts it. ``elapsed``: seconds since the phase started; before the phase's
``min_duration`` a pass is shown as inconclusive with the time left. A ``dry_run``
criterion is judged and marked, and :func:`overall` leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from schemas.confseq import Interval, cs_z
from schemas.metrics import Metric, Totals, metric
from schemas.plan import Criterion, Phase, format_duration

Outcome = Literal["pass", "fail", "inconclusive"]
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Verdict:
    """One criterion's verdict with the evidence behind it (``low``/``high``: the
    confidence sequence at the plan's alpha, intersected over the phase's looks)."""

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
    upper: bool = False  # the threshold is a maximum (a comparison: lower is better)
    needed: int = 0  # samples it needs (on the smaller side of a comparison)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def interval(self) -> Interval | None:
        """Its interval, once it has the samples it needs (None before)."""
        smaller = min(self.samples, self.reference_samples or self.samples)
        if self.low is None or self.high is None or smaller < self.needed:
            return None
        return Interval(self.low, self.high)


def _z(n: int, needed: int, alpha: float) -> float:
    return cs_z(max(n, 1), needed, alpha)


def judge(
    criterion: Criterion,
    phase: Phase,
    candidate: Totals,
    baseline: Totals | None = None,
    previous: Totals | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    held: Interval | None = None,
    pending: bool = False,
    elapsed: float | None = None,
) -> Verdict:
    """The verdict of one criterion of ``phase`` (see the module docstring); ``pending``:
    judged only at remembered looks, and none has been taken yet."""
    verdict = look(criterion, phase, candidate, baseline, previous, alpha)
    if verdict.interval is not None:
        if held is not None:
            verdict = _held(verdict, held)
        elif pending:
            verdict = replace(verdict, outcome="inconclusive", note="judged at the window's end")
    return shown(verdict, criterion, phase, elapsed)


def look(
    criterion: Criterion,
    phase: Phase,
    candidate: Totals,
    baseline: Totals | None = None,
    previous: Totals | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> Verdict:
    """This look's verdict alone: its own interval, no memory, no duration, no marks."""
    meaning = metric(criterion.metric)
    n = meaning.samples(candidate)
    needed = phase.min_feedback if meaning.feedback else phase.min_samples
    if criterion.compare is not None:
        reference = baseline if criterion.compare == "baseline" else previous
        return _comparison(criterion, meaning, candidate, reference, n, needed, alpha)
    threshold = criterion.max if criterion.max is not None else criterion.min
    assert threshold is not None
    upper = criterion.max is not None
    est = meaning.estimate(candidate, _z(n, needed, alpha))
    if meaning.unit == "count":
        outcome = count_outcome(est.value if est else 0, threshold, n, needed)
    elif est is None or n < needed:
        outcome = "inconclusive"
    else:
        outcome = interval_outcome(Interval(est.low, est.high), threshold, upper)
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
        upper=upper,
        needed=needed,
    )


def _comparison(
    criterion: Criterion,
    meaning: Metric,
    candidate: Totals,
    reference: Totals | None,
    n: int,
    needed: int,
    alpha: float,
) -> Verdict:
    name, margin = meaning.name, criterion.margin
    lower_better = meaning.lower_is_better
    threshold = margin if lower_better else -margin
    ref_n = 0 if reference is None else meaning.samples(reference)
    if reference is None or not ref_n:
        what = "the baseline" if criterion.compare == "baseline" else "the previous phase"
        return Verdict(
            criterion.label, name, "inconclusive", None, None, None, threshold, n,
            reference_samples=ref_n, note=f"no data for {what}", upper=lower_better,
            needed=needed,
        )  # fmt: skip
    smaller = min(n, ref_n)
    test = meaning.compare(candidate, reference, _z(smaller, needed, alpha))
    if test is None or smaller < needed:
        outcome: Outcome = "inconclusive"
    else:
        outcome = interval_outcome(Interval(test.low, test.high), threshold, lower_better)
    return Verdict(
        criterion.label,
        name,
        outcome,
        None if test is None else test.difference,
        None if test is None else test.low,
        None if test is None else test.high,
        threshold,
        n,
        reference_samples=ref_n,
        p_value=None if test is None else test.p_worse(margin, lower_is_worse=not lower_better),
        note=f"{smaller} of {needed} samples on the smaller side" if smaller < needed else "",
        upper=lower_better,
        needed=needed,
    )


def interval_outcome(interval: Interval, threshold: float, upper: bool) -> Outcome:
    """pass: wholly on the allowed side of ``threshold`` (below it when ``upper``)."""
    low, high = interval.low, interval.high
    if upper:
        return "pass" if high <= threshold else "fail" if low > threshold else "inconclusive"
    return "pass" if low >= threshold else "fail" if high < threshold else "inconclusive"


def count_outcome(count: float, maximum: float, samples: int, needed: int) -> Outcome:
    if count > maximum:
        return "fail"
    return "pass" if samples >= needed else "inconclusive"


def _held(verdict: Verdict, held: Interval) -> Verdict:
    """``verdict`` as the earlier looks ``held`` judge it: their interval and outcome
    (this look only adds its figures), unless it contradicts them."""
    now = verdict.interval
    assert now is not None
    if (now & held).empty:  # the truth moved: this look alone
        return replace(verdict, note="earlier looks contradicted: judged on this look")
    return replace(
        verdict,
        low=held.low,
        high=held.high,
        outcome=interval_outcome(held, verdict.threshold, verdict.upper),
    )


def shown(verdict: Verdict, criterion: Criterion, phase: Phase, elapsed: float | None) -> Verdict:
    """``verdict`` as shown: a pass waits for ``min_duration``; a dry run is marked."""
    notes = [verdict.note] if verdict.note else []
    left = phase.min_duration - elapsed if elapsed is not None else 0
    if verdict.outcome == "pass" and left > 0:
        verdict = replace(verdict, outcome="inconclusive")
        notes.append(f"{format_duration(left)} left of min_duration")
    if criterion.dry_run:
        notes.insert(0, "dry-run")
    return replace(verdict, note="; ".join(notes), dry_run=criterion.dry_run)


def overall(verdicts: Iterable[Verdict]) -> Outcome:
    """The phase's outcome from its verdicts; dry runs do not count."""
    return combined([v.outcome for v in verdicts if not v.dry_run])


def combined(outcomes: list[Outcome]) -> Outcome:
    """fail if any fails, pass if all pass, else inconclusive."""
    if "fail" in outcomes:
        return "fail"
    return "pass" if outcomes and set(outcomes) <= {"pass"} else "inconclusive"
