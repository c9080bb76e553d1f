"""What the commands print, worded as a user sees the rollout and the runs (pure)."""

from __future__ import annotations

from collections import Counter

import pytest
from rich.console import Console

from phasegate.rollout_cli import standing
from producers import cli as producers_cli
from producers.emitter import EmitterStats
from producers.live import Summary
from rollout.state import RolloutState
from schemas.plan import load_plan
from sinks.cli import summary
from sinks.consumer import SinkCounters
from tests.rollout import TEN_TO_HUNDRED


@pytest.mark.parametrize(
    ("phase", "weight", "says"),
    [
        (0, 0, "not running, weight 0% (all traffic on pipeline)"),
        (0, 50, "not running, weight 50% set directly, outside any phase"),
        (2, 25, "phase 2 (quarter), weight 25%"),
        (2, 10, "phase 2 (quarter), weight 10% set directly (the phase's is 25%)"),
        (7, 30, "phase 7, not in the plan 'canary: 10 -> 25 -> 50 -> 100', weight 30%"),
    ],
)
def test_rollout_status_says_where_the_traffic_stands(phase: int, weight: int, says: str):
    state = RolloutState("kai", weight=weight, phase=phase)
    assert standing(load_plan(TEN_TO_HUNDRED), state) == says


def test_the_sink_summary_is_a_sentence():
    counters = SinkCounters(
        messages=5120,
        rows={"results": 5000, "feedback": 118, "rollout_events": 1},
        dead_letters=1,
        duplicates=0,
    )
    assert summary(counters) == (
        "5,120 messages: stored 5,000 results, 118 feedback, 1 rollout event; "
        "1 to the dead-letter topic, 0 already stored (skipped)"
    )
    assert summary(SinkCounters()).startswith("0 messages: stored nothing;")


def test_the_simulate_summary_does_not_wrap_into_its_table():
    run = Summary(
        "critical-burst",
        generations=120_000,
        feedback=14_400,
        per_system=Counter(pipeline=60_000, production=60_000),
        successes=Counter(pipeline=58_800, production=57_000),
        elapsed_s=40.0,
        weight=50,
        emitter=EmitterStats(
            queued=0, sent=134_401, dropped=0, buffered=0, failed=0, buffered_bytes=0
        ),
    )
    console = Console(width=80, record=True, file=None)
    console.print(producers_cli.render(run))
    lines = console.export_text().splitlines()
    assert lines[0] == (
        "critical-burst: 120,000 generations at 3,000/s, weight 50%, 14,400 feedback"
    )
    assert lines[-1] == "emitter: sent 134,401, dropped 0, buffered 0"
    assert any(line.startswith("┃ system") for line in lines[1:4])
