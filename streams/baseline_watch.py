"""The fixed-limit triggers run on the baseline too, to tell a baseline-only degradation.

The same CUSUMs as the candidate's (``streams.sequential``), fed the baseline's new
events (``streams.evidence``). When one fires and the candidate did not degrade in the
same windows (``streams.attribution`` with the roles swapped), the monitor alerts
"baseline-only": a warning, never an action (a rollback moves traffic to the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.plan import Plan, Trigger
from streams.evidence import Evidence, Recent, WindowMarks
from streams.sequential import Cusum

RECENT = 1_000  # baseline evidence kept to compare with a candidate's evidence run


@dataclass(frozen=True)
class Degraded:
    """A baseline CUSUM that fired (``opened``: its run's first window) or cleared."""

    trigger: Trigger
    opened: int
    start: int
    share: float  # the run's share of bad events
    samples: int
    cleared: bool = False
    since: float | None = None  # read time of the run's first events
    read_at: float | None = None  # read time of the events that fired (or cleared) it


@dataclass
class BaselineWatch:
    plan: Plan
    cusums: dict[str, Cusum] = field(default_factory=dict)
    run_start: dict[str, int | None] = field(default_factory=dict)
    run_read: dict[str, float | None] = field(default_factory=dict)  # the run's first read
    opened: dict[str, int] = field(default_factory=dict)  # trigger -> window it fired in

    def __post_init__(self) -> None:
        self.triggers = [t for t in self.plan.statistical_triggers if not t.guardrail]
        self.marks = WindowMarks(self.triggers)
        self.recent = Recent(RECENT)  # for attribution
        self.reset()

    def reset(self) -> None:
        h = self.plan.sequential.threshold(len(self.plan.statistical_triggers))
        self.cusums = {t.name: Cusum(*t.shares(), threshold=h) for t in self.triggers}
        self.run_start = dict.fromkeys(self.cusums)
        self.run_read = dict.fromkeys(self.cusums)
        self.opened = {}

    def judge(self, evidence: Evidence) -> list[Degraded]:
        """Feed the baseline's new events; what fired or cleared."""
        self.recent.append(evidence)
        out = []
        for t in self.triggers:
            cusum = self.cusums[t.name]
            cusum.update(evidence.n, evidence.bad[t.name])
            if cusum.clear:
                self.run_start[t.name] = self.run_read[t.name] = None
            elif self.run_start[t.name] is None:
                self.run_start[t.name], self.run_read[t.name] = evidence.start, evidence.read_at
            share, since, read = cusum.run_share or 0.0, self.run_read[t.name], evidence.read_at
            if t.name not in self.opened and cusum.alarm:
                opened = self.run_start[t.name] or evidence.start
                self.opened[t.name] = opened
                out.append(
                    Degraded(t, opened, evidence.start, share, cusum.run_n, False, since, read)
                )
            elif t.name in self.opened and cusum.clear:
                opened = self.opened.pop(t.name)
                out.append(Degraded(t, opened, evidence.start, share, evidence.n, True))
        return out
