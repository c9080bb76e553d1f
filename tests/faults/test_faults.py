"""Every fault scenario at the reduced size: nothing lost, doubled or unaccounted for.

The same scenarios at full size, as a table: ``python -m bench.faults``.
"""

from __future__ import annotations

import pytest

from bench.common import print_table
from phasegate.testing.faults.outcome import Outcome
from phasegate.testing.faults.run import REDUCED
from phasegate.testing.faults.scenarios import DURABLE, SCENARIOS

pytestmark = pytest.mark.timeout(420)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name, stacks, tmp_path):
    outcome = SCENARIOS[name](stacks(name in DURABLE), REDUCED, tmp_path)
    print_table(name, Outcome.COLUMNS, [outcome.row()], width=200)
    details = "; ".join(outcome.problems + outcome.notes)
    assert outcome.crashes == 0, details
    assert (outcome.lost, outcome.doubled) == (0, 0), details
    assert outcome.stored == outcome.unique == outcome.emitted, details
    assert outcome.dlq_unmatched == 0 and outcome.dlq == outcome.dlq_expected, details
    assert outcome.rollbacks == outcome.rollbacks_expected, details
    assert outcome.alert_dups == 0, details
    assert outcome.windows_off == 0, details
    assert outcome.problems == [], details
    assert outcome.ok
