"""What each partial adds to the rollback triggers' evidence: new candidate events only.

Stage 2 applies partials that may repeat or replace earlier ones (a replayed run), so the
triggers never read a window's totals: :class:`WindowMarks` keeps, per window, the
highest counts (and latency bins) already taken as evidence, and hands out only what is
new. :class:`Evidence` is that increment: candidate events, "bad" events per trigger, and
the latency bins of the new events, which let an alert show the quantile of exactly the
events that fired it (:class:`RunSketch`). Bins are kept compact (``streams.sketch.Bins``,
a numpy array): a rollout keeps a window's worth per window and up to 1,000 increments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from uuid import NAMESPACE_URL, UUID, uuid5

from schemas.metrics import QUANTILES, metric
from schemas.plan import Trigger
from streams.aggregate import WindowStats
from streams.sketch import NO_BINS, Bins, LatencySketch, bins_highest, bins_over, bins_sum


def incident_id(rollout: str, name: str, opened: int, suffix: str = "") -> UUID:
    """The id of an incident's alert or action: a replay of the same evidence re-derives it."""
    return uuid5(NAMESPACE_URL, f"phasegate:{rollout}:incident:{name}:{opened}{suffix}")


def bad_events(trigger: Trigger, stats: WindowStats) -> float:
    """The trigger's "bad" events in ``stats``: what counts against its metric
    (``schemas.metrics``), for a latency the events over the trigger's limit."""
    bad = metric(trigger.metric).bad
    return stats.latency.count_above(trigger.limit) if bad is None else bad.amount(stats)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The candidate events one partial adds to window ``start``."""

    start: int  # window start (epoch seconds)
    read_at: float | None  # when stage 1 read them (None: unknown, from an older worker)
    n: int
    bad: dict[str, int]  # trigger name -> bad events among the n
    bins: Bins  # latency bins of the n (empty when no trigger needs them)
    newest: float | None = None  # the newest event time of the run read (None: unknown)

    def after(self, t: float) -> bool:
        """Whether these events are evidence after a person's change at ``t``: read after
        it, and not all made before it (unknown times count)."""
        read, newest = self.read_at, self.newest
        return (read is None or read > t) and (newest is None or newest >= t)


class Recent:
    """The last ``size`` increments, to judge again after a person's change read late, or
    to attribute. Kept as tuples of numbers, strings and bins, which a pass of Python's
    garbage collector untracks for good (it walks an :class:`Evidence` on every pass: 2,000
    a rollout at the worker's cadence); read back as :class:`Evidence`, equal."""

    __slots__ = ("_rows",)

    def __init__(self, size: int) -> None:
        self._rows: deque[tuple] = deque(maxlen=size)

    def append(self, e: Evidence) -> None:
        """Keep ``e`` as one flat tuple (its ``bad`` counts last, name and count in turn):
        one pass untracks it, nested tuples would take a pass a level."""
        self._rows.append((e.start, e.read_at, e.n, e.bins, e.newest, *chain(*e.bad.items())))

    def __iter__(self) -> Iterator[Evidence]:
        for row in self._rows:
            start, read_at, n, bins, newest = row[:5]
            bad = dict(zip(row[5::2], row[6::2], strict=True))
            yield Evidence(start, read_at, n, bad, bins, newest)


def _increase(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in now.items() if v > before.get(k, 0.0)}


@dataclass
class WindowMarks:
    """Per window, the counts already taken as evidence (a high-water mark each, every
    latency bucket's too: one a replay took away for a while is not new when it is back)."""

    triggers: list[Trigger]
    counts: dict[int, dict[str, float]] = field(default_factory=dict)
    bins: dict[int, Bins] = field(default_factory=dict)

    @property
    def _needs_bins(self) -> bool:
        return any(t.metric in QUANTILES for t in self.triggers)

    def take(
        self, start: int, stats: WindowStats, read_at: float | None, newest: float | None = None
    ) -> Evidence | None:
        """What ``stats`` (window ``start`` now) adds since the last take; None: nothing.
        ``read_at`` and ``newest``: the read time and the newest event time of the run."""
        counts = {"n": stats.count, **{t.name: bad_events(t, stats) for t in self.triggers}}
        before = self.counts.get(start, {})
        new = _increase(counts, before)
        self.counts[start] = {k: max(v, before.get(k, 0.0)) for k, v in counts.items()}
        bins = NO_BINS
        if self._needs_bins:
            now, seen = stats.latency.bins(), self.bins.get(start, NO_BINS)
            bins, self.bins[start] = bins_over(now, seen), bins_highest(now, seen)
        if not new:
            return None
        bad = {t.name: int(new.get(t.name, 0)) for t in self.triggers}
        return Evidence(start, read_at, int(new.get("n", 0)), bad, bins, newest)

    def forget(self, before: int) -> None:
        self.counts = {s: c for s, c in self.counts.items() if s >= before}
        self.bins = {s: b for s, b in self.bins.items() if s >= before}


class RunSketch:
    """The latency bins of one evidence run (the events a CUSUM counts since its zero)."""

    __slots__ = ("bins",)

    def __init__(self, bins: Bins = NO_BINS) -> None:
        self.bins = bins

    def add(self, bins: Bins) -> None:
        self.bins = bins_sum(self.bins, bins)

    def clear(self) -> None:
        self.bins = NO_BINS

    def quantile(self, q: float) -> float | None:
        return LatencySketch.of_bins(self.bins).quantile(q)
