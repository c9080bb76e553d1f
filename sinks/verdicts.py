"""The gates' memory replayed from the stored history (rules: ``schemas.looks``).

The worker remembers a look at the end of every minute window of a phase, on the phase
so far; :func:`replay` takes the same looks over the stored minutes (``sinks.history``),
so a report (``sinks.phase_report``) holds each verdict as the worker's gates
(``streams.gates``) do over the same events.
"""

from __future__ import annotations

from datetime import datetime

from schemas.confseq import Interval
from schemas.looks import looks, remember, remembered
from schemas.metrics import Totals
from schemas.plan import Phase, Roles
from sinks.history import Minutes, Sums

MINUTE = 60


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
