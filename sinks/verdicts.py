"""Each criterion of a plan's phase judged on the stored history (rules: ``schemas.verdict``).

The criteria come from the shared rollout plan (``schemas.plan``); the numbers from
``sinks.history`` (ClickHouse, ``FINAL``), each metric measured as the registry
(``schemas.metrics``) defines it, so a report shows what the worker's gates
(``streams.gates``, on live windows) would say over the same events.
"""

from __future__ import annotations

from schemas.plan import Phase
from schemas.verdict import Verdict, judge
from sinks.history import Side


def judge_gate(
    gate: Phase, candidate: Side, baseline: Side | None, previous: Side | None
) -> list[Verdict]:
    """Every criterion of ``gate`` judged on the stored history."""
    return [judge(c, gate, candidate, baseline, previous) for c in gate.advance]
