"""The sink's duplicate checks, as pure bookkeeping."""

from __future__ import annotations

from kafka import TopicPartition

from sinks import ddl
from sinks.ledger import Entries, Ledger
from tests.sinks.conftest import make_result

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_offsets_at_or_below_the_stored_maximum_are_skipped_after_assignment() -> None:
    ledger = Ledger()
    ledger.assigned([P0, P1])
    assert ledger.unloaded == {P0, P1}
    ledger.load([P0, P1], {0: 4})
    assert not ledger.unloaded
    entries = Entries.of(
        [(P0, o, make_result(o)) for o in range(3, 7)] + [(P1, 0, make_result(99))]
    )
    fresh = ledger.select(ddl.RESULTS, entries)
    assert [(p.partition, o) for p, o in zip(fresh.partitions, fresh.offsets, strict=True)] == [
        (0, 5), (0, 6), (1, 0)
    ]  # fmt: skip
    assert fresh.lowest == {P0: 5, P1: 0} and fresh.highest == {P0: 6, P1: 0}


def test_an_id_seen_lately_or_twice_in_a_batch_is_skipped() -> None:
    ledger = Ledger(recent=3)
    events = [make_result(i) for i in range(5)]
    first = [(P0, i, e) for i, e in enumerate(events[:2])]
    assert ledger.select(ddl.RESULTS, Entries.of([*first, (P0, 2, events[0])])).events == events[:2]
    ledger.remember(ddl.RESULTS, Entries.of(first))
    again = Entries.of([(P0, 10, events[1]), (P0, 11, events[2])])
    assert ledger.select(ddl.RESULTS, again).events == [events[2]]
    ledger.remember(ddl.RESULTS, Entries.of([(P0, 12, e) for e in events[2:5]]))  # 0, 1 out
    assert ledger.select(ddl.RESULTS, Entries.of([(P0, 20, events[0])])).events == [events[0]]
    assert ledger.stored[P0] == 12


def test_a_clean_batch_is_passed_through_whole() -> None:
    ledger = Ledger()
    ledger.load([P0], {0: 9})
    entries = Entries()
    entries.extend(P0, list(range(10, 20)), [make_result(i) for i in range(10)])
    assert ledger.select(ddl.RESULTS, entries) is entries
    ledger.remember(ddl.RESULTS, entries)
    assert ledger.stored[P0] == 19
    entries.extend(P1, [0, 1], [entries.events[3], make_result(99)])  # an id stored before
    assert ledger.select(ddl.RESULTS, entries).offsets == [1]


def test_reassignment_forgets_the_stored_offsets_until_reloaded() -> None:
    ledger = Ledger()
    ledger.load([P0], {0: 100})
    ledger.assigned([P0])
    assert P0 not in ledger.stored and P0 in ledger.unloaded


def test_rows_read_again_are_skipped_only_where_the_store_holds_them() -> None:
    """At or below the stored offset: held unless the store's answer (``held``) says not."""
    ledger = Ledger()
    ledger.load([P0], {0: 5})
    entries = Entries.of([(P0, o, make_result(o)) for o in range(3, 8)])
    assert ledger.again(entries).offsets == [3, 4, 5]
    assert ledger.select(ddl.RESULTS, entries).offsets == [6, 7]
    assert ledger.select(ddl.RESULTS, entries, held={(0, 3), (0, 5)}).offsets == [4, 6, 7]
    assert not ledger.again(Entries.of([(P0, 6, make_result(6))]))


def test_remember_keeps_the_ids_of_the_rows_stored_after_select() -> None:
    """``select`` reads the ids once for ``remember``; rows added after it count too, and a
    batch that dropped duplicates remembers only what it kept."""
    ledger = Ledger()
    a, b, c, d = (make_result(i) for i in range(4))
    entries = ledger.select(ddl.RESULTS, Entries.of([(P0, 0, a)]))
    entries.extend(P0, [1], [b])
    ledger.remember(ddl.RESULTS, entries)
    kept = ledger.select(ddl.RESULTS, Entries.of([(P0, 2, c), (P0, 3, c), (P0, 4, b)]))
    assert kept.events == [c]
    ledger.remember(ddl.RESULTS, kept)
    fresh = Entries.of([(P0, 5, x) for x in (a, b, c, d)])
    assert ledger.select(ddl.RESULTS, fresh).events == [d]
