"""Rollups: a time range cut into hour, minute, second and event pieces covers it exactly
once; ends in whole seconds need no event rows."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sinks.rollups import FAMILIES, pieces, whole_second

BASE = datetime(2024, 5, 1, tzinfo=UTC)
STEPS = (3600, 60)
offsets = st.one_of(
    st.none(),
    st.integers(0, 3 * 86400).map(lambda s: BASE + timedelta(seconds=s)),
    st.integers(0, 3 * 86400 * 1000).map(lambda ms: BASE + timedelta(milliseconds=ms)),
)


@given(offsets, offsets)
def test_pieces_partition_the_range_in_aligned_buckets(start, end) -> None:
    got = pieces(start, end, STEPS)
    if start is not None and end is not None and start >= end:
        assert got == []
        return
    assert got, "a non-empty range has pieces"
    assert got[0][1] == start and got[-1][2] == end  # from start to end ...
    for (_, _, hi), (_, lo, _) in itertools.pairwise(got):
        assert hi == lo is not None  # ... without gap or overlap
    for step, lo, hi in got:
        assert lo is None or hi is None or lo < hi
        if step:  # a rollup piece holds whole buckets
            for bound in (lo, hi):
                assert bound is None or bound.timestamp() % step == 0
    assert len(got) <= 2 * len(STEPS) + 1
    assert sum(step == 3600 for step, _, _ in got) <= 1


def test_pieces_use_the_coarsest_step_that_fits() -> None:
    start, end = BASE + timedelta(minutes=59, seconds=30), BASE + timedelta(hours=3, minutes=2)
    assert pieces(start, end, STEPS) == [
        (0, start, BASE + timedelta(hours=1)),
        (3600, BASE + timedelta(hours=1), BASE + timedelta(hours=3)),
        (60, BASE + timedelta(hours=3), end),
    ]
    short = BASE + timedelta(seconds=10), BASE + timedelta(seconds=50)
    assert pieces(*short, STEPS) == [(0, *short)]
    assert pieces(None, None, STEPS) == [(3600, None, None)]
    assert pieces(start, end, ()) == [(0, start, end)]


def test_naive_times_are_utc() -> None:
    naive = datetime(2024, 5, 1, 10, 30), datetime(2024, 5, 1, 12, 0)
    aware = tuple(t.replace(tzinfo=UTC) for t in naive)
    assert pieces(*naive, STEPS) == pieces(*aware, STEPS)


@given(offsets, offsets)
def test_ends_in_whole_seconds_never_need_event_rows(start, end) -> None:
    got = pieces(whole_second(start), whole_second(end), (3600, 60, 1))
    assert all(step for step, _, _ in got)


def test_a_range_not_on_minutes_reads_only_rollups() -> None:
    start = datetime(2024, 5, 31, 23, 58, 59, 250_000, tzinfo=UTC)  # across a month
    for family in FAMILIES:
        for group in (0, 60, 300):
            sql, _ = family.source(
                "db", "kai", start, start + timedelta(minutes=3, seconds=1.5), group=group
            )
            read = {t for t in re.findall(r"FROM (\S+)", sql) if not t.startswith("(")}
            assert read == {f"db.{family.rollup(step)}" for step in (1, 60)}, sql
