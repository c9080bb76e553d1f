"""The sink's duplicate checks, as pure bookkeeping."""

from __future__ import annotations

from kafka import TopicPartition

from sinks import ddl
from sinks.ledger import Ledger
from tests.sinks.conftest import make_result

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_offsets_at_or_below_the_stored_maximum_are_skipped_after_assignment() -> None:
    ledger = Ledger()
    ledger.assigned([P0, P1])
    assert ledger.unloaded == {P0, P1}
    ledger.load([P0, P1], {0: 4})
    assert not ledger.unloaded
    entries = [(P0, o, make_result(o)) for o in range(3, 7)] + [(P1, 0, make_result(99))]
    fresh = ledger.select(ddl.RESULTS, entries)
    assert [(p.partition, o) for p, o, _ in fresh] == [(0, 5), (0, 6), (1, 0)]


def test_an_id_seen_lately_or_twice_in_a_batch_is_skipped() -> None:
    ledger = Ledger(recent=3)
    events = [make_result(i) for i in range(5)]
    first = [(P0, i, e) for i, e in enumerate(events[:2])]
    assert ledger.select(ddl.RESULTS, [*first, (P0, 2, events[0])]) == first
    ledger.remember(ddl.RESULTS, first)
    again = [(P0, 10, events[1]), (P0, 11, events[2])]
    assert ledger.select(ddl.RESULTS, again) == again[1:]
    ledger.remember(ddl.RESULTS, [(P0, 12, e) for e in events[2:5]])  # pushes 0 and 1 out
    assert ledger.select(ddl.RESULTS, [(P0, 20, events[0])]) == [(P0, 20, events[0])]
    assert ledger.stored[P0] == 12


def test_reassignment_forgets_the_stored_offsets_until_reloaded() -> None:
    ledger = Ledger()
    ledger.load([P0], {0: 100})
    ledger.assigned([P0])
    assert P0 not in ledger.stored and P0 in ledger.unloaded
