"""Tumbling event-time windows: stage 1 accumulates per source partition, stage 2 merges.

Stage 1 (:class:`PartitionAccumulator`) keeps one :class:`WindowStats` per
(rollout, system, window) for the events read from a source partition since its last
flush, and turns them into :class:`Partial` messages. Stage 2 (:class:`RolloutView`) adds
the partials of every partition up. A partial names the offsets it covers, so when a
worker restarts and replays a run from its last commit, stage 2 replaces the run it had
instead of counting it twice.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate, chain, compress, islice

from schemas.events import Feedback, Result
from schemas.internal import Partial, WindowStatsState
from schemas.timebounds import ts_refusal
from streams.aggregate import WindowStats
from streams.units import UnitSample, unit_hash

Key = tuple[str, str, int]  # rollout, system, window start (epoch seconds)
ROLLED = 16  # rolling merges a view keeps (spans shown, the gates' span, the last phase's)
Event = Result | Feedback  # or its Struct from ``schemas.fastcodec``: the same fields
_NEVER = float("-inf")


def window_start(ts: datetime, size: int) -> int:
    """Start (epoch seconds) of the tumbling window of ``size`` seconds holding ``ts``."""
    return window_at(ts.timestamp(), size)


def window_at(t: float, size: int) -> int:
    """Start of the tumbling window of ``size`` seconds holding the epoch time ``t``."""
    start = int(t)
    return start - start % size


def first_window_after(ts: datetime | None, size: int) -> int:
    """Start of the first window wholly after ``ts`` (-1 when there is no ``ts``): where
    the evidence after a person's change begins."""
    return -1 if ts is None else window_start(ts, size) + size


def to_datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _stamp(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


@dataclass
class PartitionAccumulator:
    """Stage 1 for one source partition: aggregates since the last flush.

    Events older than the partition's watermark (its newest event time) minus
    ``lateness`` seconds are late: they are counted in their window's ``late`` field and
    left out of every metric (the sink still stores them: ClickHouse has every event).
    An event whose id came among the last ``recent_ids`` of the partition (a producer's
    retry) is skipped: counted once, as in ClickHouse. Each window also samples its
    distinct units by routed weight (``streams.units``, for the sample ratio check): the
    units seen are kept per window until it can take no more events, so a unit is in
    one partial of its window only.
    """

    topic: str
    partition: int
    window_seconds: int
    lateness: int
    max_future: int = 300
    committed_offset: int = 0
    watermark: float = float("-inf")
    first_offset: int | None = None
    last_offset: int = -1
    read_at: float | None = None  # the clock when the run's newest event was read
    windows: dict[Key, WindowStats] = field(default_factory=dict)
    newest: dict[Key, float] = field(default_factory=dict)  # the run's newest event time
    samples: dict[Key, dict[int, UnitSample]] = field(default_factory=dict)  # new units
    recent_ids: int = 20_000
    _seen: set[int] = field(default_factory=set, repr=False)  # ids as integers: a C hash
    _order: deque[int] = field(init=False, repr=False)  # _seen's ids, oldest first
    _units: dict[Key, dict[int, set[str]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._order = deque(maxlen=self.recent_ids)

    def add(self, offset: int, event: Result | Feedback, now: float) -> str | None:
        """Aggregate one event read at ``offset``; return why it was refused, or None."""
        refused = self.add_batch([offset], [event], now, isinstance(event, Feedback))
        return refused.get(offset)

    def add_batch(
        self,
        offsets: Sequence[int],
        events: Sequence[Event | None],
        now: float,
        feedback: bool = False,
    ) -> dict[int, str]:
        """Aggregate the events read at ``offsets`` (results, or ``feedback``; None: an
        unreadable one, only covered); return why each refused one was, by its offset.

        An event stamped more than ``max_future`` seconds after ``now``, or before 1970,
        is refused (``schemas.timebounds``).
        """
        if not offsets:
            return {}
        if self.first_offset is None:
            self.first_offset = offsets[0]
        self.last_offset, self.read_at = offsets[-1], now
        if None in events:
            offsets = [o for o, e in zip(offsets, events, strict=True) if e is not None]
            events = [e for e in events if e is not None]
        times = [e.ts.timestamp() for e in events]
        refused: dict[int, str] = {}
        if times and (min(times) < 0 or max(times) > now + self.max_future):  # ts_refusal's
            reasons = [ts_refusal(e.ts, now, self.max_future) for e in events]
            refused = {o: r for o, r in zip(offsets, reasons, strict=True) if r}
            kept = [r is None for r in reasons]
            events, times = list(compress(events, kept)), list(compress(times, kept))
        events, times = self._first_times(events, times)
        if events:
            self._aggregate(events, times, feedback)
        return refused

    def _aggregate(self, events: Sequence[Event], times: Sequence[float], feedback: bool) -> None:
        """Add new events to their windows: late ones counted, the rest aggregated."""
        in_time = self._in_time(times)
        size = self.window_seconds
        starts = [window_at(t, size) for t in times]
        rollouts, systems = [e.rollout for e in events], [e.system for e in events]
        keys = list(zip(rollouts, systems, starts, strict=True))
        fresh: dict[Key, list[Event]] = {key: [] for key in dict.fromkeys(keys)}
        late: Counter[Key] = Counter()
        if in_time is not None:
            late.update(compress(keys, [not ok for ok in in_time]))
        triples = zip(keys, events, times, strict=True)
        newest = self.newest
        for key, event, t in triples if in_time is None else compress(triples, in_time):
            fresh[key].append(event)
            if t > newest.get(key, _NEVER):
                newest[key] = t
        for key, events_in in fresh.items():
            stats = self.windows.get(key)
            if stats is None:
                stats = self.windows[key] = WindowStats()
            stats.late += late[key]
            if feedback:
                stats.add_feedback(events_in)
            else:
                stats.add_results(events_in)
                self._sample_units(key, events_in)

    def _first_times(
        self, events: Sequence[Event], times: Sequence[float]
    ) -> tuple[Sequence[Event], Sequence[float]]:
        """The events whose id is new here, remembered (the last ``recent_ids``)."""
        ids = [e.event_id.int for e in events]  # ids as integers: a C hash
        seen, order = self._seen, self._order
        if len(set(ids)) == len(ids) and seen.isdisjoint(ids):  # the rule: all new
            seen.update(ids)
            excess = len(order) + len(ids) - self.recent_ids
            if excess > 0:
                seen.difference_update(islice(chain(order, ids), excess))
            order.extend(ids)  # it keeps the last ``recent_ids``
            return events, times
        new = [self._first_time(key) for key in ids]
        return list(compress(events, new)), list(compress(times, new))

    def _first_time(self, key: int) -> bool:
        """Whether the id ``key`` is new here; remember it."""
        if key in self._seen:
            return False
        if len(self._order) == self.recent_ids:
            self._seen.discard(self._order[0])
        self._seen.add(key)
        self._order.append(key)
        return True

    def _in_time(self, times: Sequence[float]) -> list[bool] | None:
        """Which of ``times`` are not late (None: all); the watermark moves to the newest."""
        before, lateness = self.watermark, self.lateness
        self.watermark = max(before, max(times))
        if min(times) >= self.watermark - lateness:
            return None
        marks = accumulate(times, max, initial=before)  # the watermark each event meets
        return [t >= mark - lateness for t, mark in zip(times, marks, strict=False)]

    def _sample_units(self, key: Key, results: list[Event]) -> None:
        """Sample the window's units not seen in it yet, by routed weight (a fallback
        was not routed)."""
        seen = self._units.setdefault(key, {})
        for weight in {r.weight for r in results}:
            units = {r.unit_id for r in results if r.weight == weight and not r.fallback}
            new = units - seen.setdefault(weight, set())
            if new:
                seen[weight] |= new
                found = UnitSample(hashes=[unit_hash(unit) for unit in new])
                samples = self.samples.setdefault(key, {})
                samples.setdefault(weight, UnitSample()).merge(found)

    @property
    def pending(self) -> bool:
        return self.first_offset is not None

    def drain(self) -> list[Partial]:
        """The partials of everything since the last drain; then start a new run."""
        if self.first_offset is None:
            return []
        partials = [
            Partial(
                rollout=rollout,
                system=system,
                window_start=to_datetime(start),
                window_seconds=self.window_seconds,
                source_topic=self.topic,
                partition=self.partition,
                first_offset=self.first_offset,
                last_offset=self.last_offset,
                committed_offset=self.committed_offset,
                read_at=_stamp(self.read_at),
                newest_ts=_stamp(self.newest.get((rollout, system, start))),
                stats=self._state((rollout, system, start), stats),
            )
            for (rollout, system, start), stats in self.windows.items()
        ]
        self.windows, self.samples, self.newest = {}, {}, {}
        self.first_offset = None
        open_from = self.watermark - self.lateness - self.window_seconds  # later: late events
        self._units = {k: u for k, u in self._units.items() if k[2] >= open_from}
        return partials

    def _state(self, key: Key, stats: WindowStats) -> WindowStatsState:
        """The wire form of a window's run: its aggregate and its new units."""
        samples = self.samples.get(key, {})
        return stats.to_state().model_copy(
            update={"unit_sample": {w: s.to_state() for w, s in samples.items()}}
        )

    def committed(self, offset: int) -> None:
        """Everything below ``offset`` is committed."""
        self.committed_offset = max(self.committed_offset, offset)


Source = tuple[str, int]  # topic, partition
Run = tuple[int, int]  # first offset, last offset


@dataclass
class _WindowParts:
    """Stage 2's parts of one (system, window): a settled base plus replaceable runs, and
    their total once asked for (kept until a part changes)."""

    base: WindowStats = field(default_factory=WindowStats)
    runs: dict[Source, dict[Run, WindowStats]] = field(default_factory=dict)
    _total: WindowStats | None = None
    _shared: bool = False  # the base is a total handed out: copy it before adding to it

    def add(self, source: Source, run: Run, stats: WindowStats) -> None:
        self.runs.setdefault(source, {})[run] = stats
        self._total = None

    def supersede(self, source: Source, first: int) -> None:
        """Drop ``source``'s runs from offset ``first`` on (a replay replaces them)."""
        runs = self.runs.get(source)
        if runs:
            for run in [r for r in runs if r[0] >= first]:
                del runs[run]
                self._total = None

    def settle(self, source: Source, committed: int) -> bool:
        """Fold ``source``'s runs that end below ``committed`` into the base (the total
        stays as it is); return whether none of its runs is left."""
        runs = self.runs.get(source)
        settled = [runs.pop(r) for r in [r for r in runs if r[1] < committed]] if runs else []
        if settled and self._shared:
            self.base, self._shared = WindowStats().merge(self.base), False
        for stats in settled:
            self.base.merge(stats)
        return not runs

    def total(self) -> WindowStats:
        """Every part merged: one object until a part changes (never change it)."""
        if self._total is None:
            runs = [stats for runs in self.runs.values() for stats in runs.values()]
            self._shared = self._shared or not runs
            self._total = WindowStats.merged([self.base, *runs]) if runs else self.base
        return self._total


class RolloutView:
    """Stage 2 for one rollout: the merged windows of every system.

    Partials of one source arrive in order. A partial whose run starts at or before a run
    already held for that source is a replay: the runs it supersedes are dropped. Runs
    that end below the source's committed offset can never be replayed and are folded
    into the window's base. Each window's unit samples are a union (a replayed run adds
    the same units again), kept beside the sums so that merging windows never pays for
    them.

    Nothing is merged twice: a window's total is kept until a partial changes it, and a
    rolling merge keeps the merge of its windows but the newest, for the next span that
    begins with the same windows. ``version`` counts the changes (for the gates' cache).
    A partial visits only the windows holding runs of its source, and the newest end and
    each system's starts are kept as windows come and go.
    """

    def __init__(self, rollout: str, window_seconds: int) -> None:
        self.rollout = rollout
        self.window_seconds = window_seconds
        self._windows: dict[tuple[str, int], _WindowParts] = {}
        self._units: dict[tuple[str, int], dict[int, UnitSample]] = {}
        self._current: dict[Source, Run] = {}
        self._rolled: dict[tuple[str, int], tuple[tuple[WindowStats, ...], WindowStats]] = {}
        self._open: dict[Source, set[tuple[str, int]]] = {}  # windows with runs of a source
        self._starts: dict[str, list[int]] = {}  # per system, sorted (until a window comes)
        self._end: int | None = None
        self.version = 0

    def apply(self, partial: Partial) -> tuple[str, int]:
        """Merge one partial; return the (system, window start) it changed."""
        self.version += 1
        source = (partial.source_topic, partial.partition)
        run = (partial.first_offset, partial.last_offset)
        holding = self._open.setdefault(source, set())
        if self._current.get(source) != run:
            for key in holding:
                self._windows[key].supersede(source, partial.first_offset)
            self._current[source] = run
        key = (partial.system, int(partial.window_start.timestamp()))
        parts = self._windows.get(key)
        if parts is None:
            parts = self._windows[key] = _WindowParts()
            self._starts.clear()
            self._end = max(self._end or 0, key[1] + self.window_seconds)
        parts.add(source, run, WindowStats.from_state(partial.stats))
        holding.add(key)
        for k in [k for k in holding if self._windows[k].settle(source, partial.committed_offset)]:
            holding.discard(k)
        units = self._units.setdefault(key, {})
        for weight, sample in partial.stats.unit_sample.items():
            units.setdefault(weight, UnitSample()).merge(UnitSample.from_state(sample))
        return key

    def window(self, system: str, start: int) -> WindowStats:
        parts = self._windows.get((system, start))
        return parts.total() if parts else WindowStats()

    def units(self, system: str, start: int, weight: int) -> UnitSample | None:
        """The sample of the window's distinct units routed at ``weight``."""
        return self._units.get((system, start), {}).get(weight)

    def systems(self) -> list[str]:
        return sorted({system for system, _ in self._windows})

    def starts(self, system: str) -> list[int]:
        starts = self._starts.get(system)
        if starts is None:
            starts = self._starts[system] = sorted(t for s, t in self._windows if s == system)
        return list(starts)

    @property
    def end(self) -> int | None:
        """End of the newest window (event time): where rolling windows end."""
        return self._end

    def rolling(self, system: str, span: int, end: int | None = None) -> WindowStats:
        """The windows of ``system`` starting in [end - span, end), merged.

        ``end`` defaults to :attr:`end`; a span shorter than one window is one window.
        """
        end = self.end if end is None else end
        if end is None:
            return WindowStats()
        span = max(span, self.window_seconds)
        windows = [self.window(system, s) for s in self.starts(system) if end - span <= s < end]
        return WindowStats.merged([self._merged(system, end - span, windows[:-1]), *windows[-1:]])

    def _merged(self, system: str, first: int, windows: list[WindowStats]) -> WindowStats:
        """``windows`` (of ``system``, from ``first`` on) merged, starting from the last
        merge of windows from ``first`` when ``windows`` begin with those (the same
        objects: unchanged); the last few such merges are kept."""
        key = (system, first)
        held, merged = self._rolled.pop(key, ((), WindowStats()))
        if tuple(windows[: len(held)]) != held:
            held, merged = (), WindowStats()
        if len(windows) > len(held):
            held, merged = tuple(windows), WindowStats.merged([merged, *windows[len(held) :]])
        self._rolled[key] = held, merged
        while len(self._rolled) > ROLLED:
            del self._rolled[next(iter(self._rolled))]
        return merged

    def expire(self, before: int) -> int:
        """Forget windows that start before ``before``; return how many."""
        old = [k for k in self._windows if k[1] < before]
        self.version += bool(old)
        for k in old:
            del self._windows[k]
            self._units.pop(k, None)
            for holding in self._open.values():
                holding.discard(k)
        self._starts.clear()
        self._end = (
            max(t for _, t in self._windows) + self.window_seconds if self._windows else None
        )
        return len(old)

    def items(self) -> Iterator[tuple[str, int, WindowStats]]:
        for system, start in sorted(self._windows):
            yield system, start, self.window(system, start)


def merge_views(partials: Iterable[Partial], window_seconds: int) -> dict[str, RolloutView]:
    """Apply partials to one view per rollout (a convenience for tests and tools)."""
    views: dict[str, RolloutView] = {}
    for p in partials:
        view = views.get(p.rollout)
        if view is None:
            view = views[p.rollout] = RolloutView(p.rollout, window_seconds)
        view.apply(p)
    return views
