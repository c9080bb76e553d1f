"""Every fault scenario at the reduced size: nothing lost, doubled or unaccounted for.

The same scenarios at full size, as a table: ``python -m bench.faults``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.common import print_table
from phasegate.testing.faults.outcome import Outcome
from phasegate.testing.faults.run import REDUCED
from phasegate.testing.faults.scenarios import DURABLE, SCENARIOS

pytestmark = pytest.mark.timeout(420)

SIDE_BY_SIDE = ("outage_at_phase_3", "restart_after_person")
"""The two rollback scenarios: each on its own topics and database, neither stops, restarts
or freezes a service of the stack, and both mostly wait for the worker; so they run at the
same time on the one durable stack."""


def check(name: str, outcome: Outcome) -> None:
    print_table(name, Outcome.COLUMNS, [outcome.row()], width=200)
    details = f"{name}: " + "; ".join(outcome.problems + outcome.notes)
    assert outcome.crashes == 0, details
    assert (outcome.lost, outcome.doubled) == (0, 0), details
    assert outcome.stored == outcome.unique == outcome.emitted, details
    assert outcome.dlq_unmatched == 0 and outcome.dlq == outcome.dlq_expected, details
    assert outcome.rollbacks == outcome.rollbacks_expected, details
    assert outcome.alert_dups == 0, details
    assert outcome.windows_off == 0, details
    assert outcome.problems == [], details
    assert outcome.ok


@pytest.mark.parametrize("name", [name for name in SCENARIOS if name not in SIDE_BY_SIDE])
def test_scenario(name, stacks, tmp_path):
    check(name, SCENARIOS[name](stacks(name in DURABLE), REDUCED, tmp_path))


def test_rollbacks_hold_side_by_side(stacks, tmp_path):
    assert set(SIDE_BY_SIDE) <= DURABLE
    stack = stacks(True)
    with ThreadPoolExecutor(len(SIDE_BY_SIDE)) as pool:
        running = {
            name: pool.submit(SCENARIOS[name], stack, REDUCED, tmp_path / name)
            for name in SIDE_BY_SIDE
        }
    for name, outcome in running.items():
        check(name, outcome.result())
