"""The gates' memory: each criterion's running intersection over the phase's looks (pure).

A look is taken at the end of every window of the phase, on the totals from the phase's
start to that end, and only there is a remembered criterion's verdict decided
(``streams.gates`` over live windows, ``sinks.verdicts`` over the stored minutes: the
same looks over the same events). Since every look's interval is a
confidence sequence (``schemas.confseq``), all of them cover the true value at once with
probability ``1 - alpha``, and so does their intersection: it only narrows, so a "pass"
stays a pass and a "fail" a fail until the evidence contradicts them (an empty
intersection: the criterion is then judged on the newest look alone, and its memory
starts again from it).

Remembered: rates, means and comparisons judged over the phase so far. Not remembered:
counts (already cumulative), latency quantiles (their interval comes from a sketch that
stored minutes cannot add up), and phases judged over a sliding ``window_seconds`` (the
value they estimate moves with the window).
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.confseq import Interval
from schemas.metrics import Quantile, Totals, metric
from schemas.plan import Criterion, Phase
from schemas.verdict import Verdict, judge, look

Memory = Mapping[int, Interval]
"""Criterion index in the phase's ``advance`` -> the intersection of its looks."""


def remembered(criterion: Criterion, phase: Phase) -> bool:
    """Whether ``criterion``'s looks are intersected (see the module docstring)."""
    meaning = metric(criterion.metric)
    return (
        phase.window_seconds is None
        and meaning.unit != "count"
        and not isinstance(meaning.estimator, Quantile)
    )


def looks(
    phase: Phase,
    candidate: Totals,
    baseline: Totals | None,
    previous: Totals | None,
    alpha: float,
) -> dict[int, Verdict]:
    """One look: each remembered criterion's verdict on these totals, by index."""
    return {
        i: look(c, phase, candidate, baseline, previous, alpha)
        for i, c in enumerate(phase.advance)
        if remembered(c, phase)
    }


def remember(memory: Memory, seen: Mapping[int, Verdict]) -> dict[int, Interval]:
    """``memory`` after one more look (``seen``: :func:`looks`)."""
    out = dict(memory)
    for i, verdict in seen.items():
        now = verdict.interval
        if now is None:
            continue
        both = now & out[i] if i in out else now
        out[i] = now if both.empty else both
    return out


def judge_phase(
    phase: Phase,
    candidate: Totals,
    baseline: Totals | None,
    previous: Totals | None,
    *,
    alpha: float,
    memory: Memory | None,
    elapsed: float | None = None,
) -> list[Verdict]:
    """Every criterion of ``phase`` on these totals, held by ``memory`` (None: no looks
    known, each verdict on these totals alone)."""
    return [
        judge(
            c,
            phase,
            candidate,
            baseline,
            previous,
            alpha=alpha,
            held=None if memory is None else memory.get(i),
            pending=memory is not None and remembered(c, phase),
            elapsed=elapsed,
        )
        for i, c in enumerate(phase.advance)
    ]
