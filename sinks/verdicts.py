"""Each criterion of a plan's phase judged on the stored history (rules: ``schemas.verdict``).

The criteria come from the shared rollout plan (``schemas.plan``); the numbers from
``sinks.history`` (ClickHouse, ``FINAL``), each metric measured as the registry
(``schemas.metrics``) defines it, so a report shows what the worker's gates
(``streams.gates``, on live windows) would say over the same events. The looks the
worker remembers (``schemas.looks``: one at the end of every minute window of the phase,
on the phase so far) are replayed here from the stored minutes, so the verdict is held
the same way.
"""

from __future__ import annotations

from datetime import datetime

from schemas.confseq import Interval
from schemas.looks import looks, remember, remembered
from schemas.metrics import Totals
from schemas.plan import Phase, Roles
from schemas.verdict import Verdict, judge
from sinks.history import Minutes, Sums

MINUTE = 60


def judge_gate(
    gate: Phase,
    candidate: Totals,
    baseline: Totals | None,
    previous: Totals | None,
    *,
    alpha: float,
    memory: dict[int, Interval] | None = None,
    elapsed: float | None = None,
) -> list[Verdict]:
    """Every criterion of ``gate`` judged on the stored history."""
    held = memory or {}
    return [
        judge(
            c, gate, candidate, baseline, previous, alpha=alpha, held=held.get(i), elapsed=elapsed
        )
        for i, c in enumerate(gate.advance)
    ]


def data_end(minutes: Minutes) -> int | None:
    """The end of the newest minute with data (the worker's newest window end)."""
    return max(minutes) + MINUTE if minutes else None


def replay(
    gate: Phase,
    minutes: Minutes,
    began: datetime,
    roles: Roles,
    previous: Totals | None,
    alpha: float,
) -> dict[int, Interval]:
    """The memory of the looks at every minute's end but the newest, as the worker has it."""
    end = data_end(minutes)
    if end is None or not any(remembered(c, gate) for c in gate.advance):
        return {}
    first = int(began.timestamp()) // MINUTE * MINUTE
    memory: dict[int, Interval] = {}
    cand, base = Sums(), Sums()
    for upto in range(first + MINUTE, end, MINUTE):
        minute = minutes.get(upto - MINUTE, {})
        cand += minute.get(roles.candidate, Sums())
        base += minute.get(roles.baseline, Sums())
        memory = remember(memory, looks(gate, cand, base, previous, alpha))
    return memory
