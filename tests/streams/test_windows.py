from collections import Counter, deque
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.internal import Partial
from streams.windows import PartitionAccumulator, RolloutView, merge_views, window_start
from tests.streams.conftest import T0, make_result

NOW = T0.timestamp() + 3600


def _acc(**kw) -> PartitionAccumulator:
    return PartitionAccumulator("results", 0, window_seconds=60, lateness=30, **kw)


def _feed(acc, offsets, **kw):
    for o in offsets:
        acc.add(o, make_result(o, seconds=o / 4, **kw), NOW)


def test_window_start_is_aligned():
    assert window_start(T0, 60) == int(T0.timestamp())
    assert window_start(make_result(0, seconds=119).ts, 60) == int(T0.timestamp()) + 60


def test_partial_offsets_cover_the_run():
    acc = _acc()
    _feed(acc, range(10))
    (p,) = acc.drain()
    assert (p.first_offset, p.last_offset, p.stats.count) == (0, 9, 10)
    assert acc.drain() == []


def test_late_events_are_counted_not_aggregated():
    acc = _acc()
    acc.add(0, make_result(0, seconds=300), NOW)
    acc.add(1, make_result(1, seconds=0), NOW)  # 300 s behind the watermark, lateness 30
    acc.add(2, make_result(2, seconds=290), NOW)  # within lateness
    by_window = {p.window_start: p.stats for p in acc.drain()}
    assert sum(s.count for s in by_window.values()) == 2
    assert sum(s.late for s in by_window.values()) == 1


def test_future_events_are_refused_and_do_not_move_the_watermark():
    acc = _acc()
    reason = acc.add(0, make_result(0, seconds=NOW - T0.timestamp() + 3600), NOW)
    assert reason is not None and "in the future" in reason
    assert acc.add(1, make_result(1, seconds=0), NOW) is None
    (p,) = acc.drain()
    assert (p.first_offset, p.last_offset, p.stats.count, p.stats.late) == (0, 1, 1, 0)


def test_events_before_1970_are_refused():
    acc = _acc()
    reason = acc.add(0, make_result(0, seconds=-T0.timestamp() - 1), NOW)
    assert reason is not None and "before 1970" in reason
    assert acc.last_offset == 0 and acc.drain() == []  # covered, nothing aggregated


def test_a_repeated_event_id_is_counted_once():
    acc = _acc(recent_ids=2)
    first, second, third = (make_result(i) for i in range(3))
    for offset, event in enumerate([first, first, second, third, first]):
        assert acc.add(offset, event, NOW) is None
    (p,) = acc.drain()
    # the last copy of ``first`` came after two other ids: no longer remembered
    assert (p.first_offset, p.last_offset, p.stats.count) == (0, 4, 4)


def _one_by_one(stream, recent: int, lateness: int = 30) -> dict[int, tuple[int, int]]:
    """The rule, event by event: (counted, late) by window start."""
    seen: deque = deque()
    watermark, counted, late = float("-inf"), Counter(), Counter()
    for event in stream:
        if event.event_id in seen:
            continue
        seen.append(event.event_id)
        if len(seen) > recent:
            seen.popleft()
        t, start = event.ts.timestamp(), window_start(event.ts, 60)
        if t > watermark:
            watermark = t
        elif t < watermark - lateness:
            late[start] += 1
            continue
        counted[start] += 1
    return {start: (counted[start], late[start]) for start in counted | late}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from([0, 29, 30, 31, 59, 60, 61, 90, 91, 150]), min_size=1, max_size=8),
    st.lists(st.integers(0, 7), max_size=60),  # the events in order, repeats among them
    st.integers(1, 5),
    st.lists(st.integers(1, 12), min_size=1, max_size=6),  # batch sizes, in turn
)
def test_batches_skip_repeats_and_count_late_events_as_the_rule(seconds, order, recent, sizes):
    events = [make_result(i, seconds=s) for i, s in enumerate(seconds)]
    stream = [events[i % len(events)] for i in order]
    acc, start, turn = _acc(recent_ids=recent), 0, 0
    while start < len(stream):
        size = sizes[turn % len(sizes)]
        acc.add_batch(
            range(start, start + size)[: len(stream) - start], stream[start : start + size], NOW
        )
        start, turn = start + size, turn + 1
    got = {int(p.window_start.timestamp()): (p.stats.count, p.stats.late) for p in acc.drain()}
    assert got == _one_by_one(stream, recent)


def _run(first, last, committed=0):
    acc = _acc(committed_offset=committed)
    _feed(acc, range(first, last + 1))
    return acc.drain()


def _count(view: RolloutView) -> int:
    return sum(stats.count for _, _, stats in view.items())


def test_view_adds_runs_and_replaces_a_replay():
    view = RolloutView("kai", 60)
    for p in _run(0, 49) + _run(50, 99):
        view.apply(p)
    assert _count(view) == 100
    # the worker died before committing offset 50: it replays from 0, further than before
    for p in _run(0, 119):
        view.apply(p)
    assert _count(view) == 120


def test_redelivered_partials_converge():
    runs = _run(0, 49) + _run(50, 99)
    view = merge_views(runs + runs, 60)["kai"]
    assert _count(view) == 100


def test_committed_runs_settle_into_the_base():
    view = RolloutView("kai", 60)
    for p in _run(0, 49) + _run(50, 99, committed=50):
        view.apply(p)
    parts = next(iter(view._windows.values()))
    assert sum(len(r) for r in parts.runs.values()) == 1 and parts.base.count == 50
    assert _count(view) == 100


def test_rolling_merges_windows_and_expire_forgets():
    view = RolloutView("kai", 60)
    acc = _acc()
    for i in range(300):
        acc.add(i, make_result(i, seconds=i), NOW)
    for p in acc.drain():
        view.apply(p)
    start = int(T0.timestamp())
    assert view.end == start + 300
    assert view.rolling("production", 300).count == 300
    assert view.rolling("production", 120).count == 120
    assert view.rolling("production", 10).count == 60  # at least one window
    assert view.rolling("production", 120, end=start + 120).count == 120
    assert view.expire(start + 120) == 2
    assert _count(view) == 180
    assert view.starts("production") == [start + 120, start + 180, start + 240]
    assert view.end == start + 300 and view.rolling("production", 300).count == 180
    assert view.expire(start + 600) == 3 and view.end is None and view.starts("production") == []


def test_partial_survives_the_codec():
    from schemas.codec import decode, encode

    (p,) = _run(0, 9)
    assert decode(encode(p), Partial) == p


def test_segments_add_up_across_partitions_through_stage_2():
    runs = []
    for partition in (0, 1):
        acc = PartitionAccumulator("results", partition, window_seconds=60, lateness=30)
        for o in range(4):
            event = make_result(10 * partition + o, success=o != 0, segment="de" if o % 2 else "en")
            acc.add(o, event, NOW)
        runs += acc.drain()
    stats = merge_views(runs, 60)["kai"].window("production", int(T0.timestamp()))
    assert (stats.segment_events, stats.segment_bad) == ({"de": 4, "en": 4}, {"en": 2})


def test_kept_totals_and_rolling_merges_follow_late_runs_and_replays():
    """A closed window's total handed out, then a late run settles into its base and
    another is replaced by a replay: the view's kept merges still add up what a fresh
    view of the same partials does."""
    one = _run(0, 3)[0]  # four events in the first window

    def at(window: int, first: int, last: int, committed: int) -> Partial:
        start = one.window_start + timedelta(minutes=window)
        return one.model_copy(
            update={
                "window_start": start,
                "first_offset": first,
                "last_offset": last,
                "committed_offset": committed,
            }
        )

    end = int(one.window_start.timestamp()) + 120
    partials = [
        at(0, 0, 9, 0),
        at(1, 10, 19, 10),  # settles the first window's run: its total is its base
        at(0, 20, 29, 20),  # a late run for the first window
        at(1, 30, 39, 30),  # settles it into the base
        at(0, 40, 49, 30),  # another late run
        at(1, 35, 49, 30),  # a replay from 35: the late run is gone again
    ]
    view = RolloutView("kai", 60)
    for n, partial in enumerate(partials):
        view.apply(partial)
        if n in (1, len(partials) - 1):  # looked at only now: the merge kept since n = 1
            fresh = merge_views(partials[: n + 1], 60)["kai"]
            shown = view.rolling("production", 120, end).count
            assert shown == fresh.rolling("production", 120, end).count
    assert view.rolling("production", 120, end).count == 20
    assert view.window("production", end - 120) is view.window("production", end - 120)
