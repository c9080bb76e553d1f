"""One fault scenario's run: its own topics and database on a :class:`Stack`, a real
``phasegate worker`` and ``phasegate sink``, the simulator through the real Router and
Emitter in a thread (:class:`Sent` records every accepted event), and
:meth:`Run.outcome`, which compares what was sent with ClickHouse, the DLQ, the alerts
and the worker's windows.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from phasegate.stack import ensure_topics
from phasegate.testing.faults.hostile import Bad
from phasegate.testing.faults.outcome import Outcome
from phasegate.testing.faults.stack import Stack
from phasegate.testing.processes import SinkProcess, WorkerProcess
from phasegate.testing.topics import read_topic
from producers import live
from producers.emitter import Emitter
from schemas.codec import DecodeError, decode
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.internal import DeadLetter
from sinks.migrations import migrate
from sinks.store import Store, open_store
from streams.alerts import ROLLBACK_KINDS
from streams.triggers import WORKER
from streams.windows import window_start

ROLLOUT = "kai"
ROLLBACKS = {"degrade": 1, "outage": 1}  # the worker's rollbacks a load scenario calls for
OPERATOR = "fault-operator"  # the person in the scenarios that steer a rollout


@dataclass(frozen=True)
class Size:
    """How big a run is: the load's rate and length, the hostile messages, the outages.

    ``hang_s``: how long the broker hangs; longer than the clients' request timeout (30 s),
    so their requests time out and their connections are dropped."""

    rate: float
    duration_s: float
    hostile: int
    outage_s: float
    window_s: int = 10
    hang_s: float = 40


REDUCED = Size(rate=200, duration_s=20, hostile=1000, outage_s=3)
FULL = Size(rate=500, duration_s=60, hostile=10_000, outage_s=10)


class Sent:
    """What the Emitter accepted: result ids, exact counts per window, recent results."""

    def __init__(self, window_s: int) -> None:
        self.window_s = window_s
        self.ids: set[UUID] = set()
        self.windows: Counter[tuple[str, int]] = Counter()
        self.feedback = 0
        self.refused = 0
        self._recent: deque[Result] = deque(maxlen=500)
        self._lock = threading.Lock()

    def record(self, event: Result | Feedback, accepted: bool) -> None:
        with self._lock:
            if not accepted:
                self.refused += 1
            elif isinstance(event, Result):
                self.add(event)
            else:
                self.feedback += 1

    def add(self, event: Result) -> None:
        self.ids.add(event.event_id)
        self.windows[(event.system, window_start(event.ts, self.window_s))] += 1
        self._recent.append(event)

    @property
    def count(self) -> int:
        return len(self.ids)

    def recent(self) -> list[Result]:
        with self._lock:
            return list(self._recent)


@dataclass(frozen=True)
class Seen:
    """The topics a run is judged on, read at one moment: dead letters (decoded), every
    alert sent (copies included) and the rollout log (what cannot be read left out)."""

    letters: list[DeadLetter]
    alerts: list[Alert]
    log: list[RolloutEvent]


class Run:
    """One scenario's topics, database, worker, sink and load on a :class:`Stack`."""

    def __init__(self, stack: Stack, name: str, size: Size, folder: Path) -> None:
        uid = uuid.uuid4().hex[:8]
        folder.mkdir(parents=True, exist_ok=True)
        self.stack, self.name, self.size, self.folder = stack, name, size, folder
        self.settings = stack.settings.model_copy(
            update={
                "topic_prefix": f"f{uid}.",
                "database": f"f{uid}",
                "state_dir": folder,
                "window_seconds": size.window_s,
                "flush_seconds": 0.5,
            }
        )
        ensure_topics(self.settings)
        self.store: Store = open_store(self.settings)
        migrate(self.store, self.settings.database)
        self.worker = WorkerProcess(self.settings, folder / "worker.log")
        self.sink = SinkProcess(self.settings, folder / "sink.log")
        self.sent = Sent(size.window_s)
        self.bad: dict[tuple[int, int], Bad] = {}  # (partition, offset) -> injected
        self.problems: list[str] = []
        self.expected_rollbacks = 0
        self.summary: live.Summary | None = None
        self.seen: Seen | None = None  # what outcome() judged
        self._load: threading.Thread | None = None
        self.started = time.monotonic()

    # -- the moving parts ---------------------------------------------------------------

    def start(self, sink: bool = True) -> Run:
        self.worker.start()
        if sink:
            self.sink.start()
        self.worker.wait_assigned(90)
        return self

    def load(self, scenario: str = "healthy", weight: int | None = 50) -> None:
        """The simulator at ``size.rate`` for ``size.duration_s``, in a thread; ``weight``
        first set by the load (None: the rollout log's weight as it stands)."""
        self.expected_rollbacks = ROLLBACKS.get(scenario, 0)

        def run() -> None:
            self.summary = live.run(
                self.settings,
                scenario,
                duration_s=self.size.duration_s,
                rate=self.size.rate,
                rollout=ROLLOUT,
                set_weight=weight,
                on_emit=self.sent.record,
            )

        self._load = threading.Thread(target=run, name="load", daemon=True)
        self.started = time.monotonic()
        self._load.start()

    def steer(self, type: str, weight: int, phase: int) -> RolloutEvent:
        """A person's rollout event (``OPERATOR``), as ``phasegate rollout`` appends it."""
        event = RolloutEvent(rollout=ROLLOUT, type=type, weight=weight, phase=phase, actor=OPERATOR)
        with Emitter(self.settings) as emitter:
            emitter.emit(event)
            if not emitter.flush(30):
                self.problems.append(f"{type} by {OPERATOR} was not delivered")
        return event

    def at(self, fraction: float) -> None:
        """Sleep until ``fraction`` of the load's duration has passed."""
        time.sleep(max(0.0, self.started + fraction * self.size.duration_s - time.monotonic()))

    def mid_window(self) -> None:
        """Sleep until the middle of the current event-time window."""
        w = self.size.window_s
        time.sleep((w / 2 - time.time() % w) % w)

    def join_load(self) -> None:
        assert self._load is not None
        self._load.join(self.size.duration_s + 120)
        assert not self._load.is_alive(), "the load did not finish"

    # -- looking -------------------------------------------------------------------------

    def ch(self, sql: str) -> Any:
        return self.store.query(sql.format(db=self.settings.database)).scalar()

    def rollout_log(self) -> list[RolloutEvent]:
        """The rollout log (one partition) in order; what cannot be read left out."""
        return _log(read_topic(self.settings, self.settings.topics.rollout))

    def read(self) -> Seen:
        """The dead letters, the alerts and the rollout log, read at once (each read ends
        with seconds of quiet polls, so the three run side by side)."""
        topics = self.settings.topics
        with ThreadPoolExecutor(3) as pool:
            letters, alerts, log = pool.map(
                lambda topic: read_topic(self.settings, topic),
                (topics.dlq, topics.alerts, topics.rollout),
            )
        return Seen(
            letters=[decode(r.value, DeadLetter) for r in letters],
            alerts=[decode(r.value, Alert) for r in alerts],
            log=_log(log),
        )

    def stored_ids(self) -> set[UUID]:
        rows = self.store.query(f"SELECT event_id FROM {self.settings.database}.results FINAL")
        return {r[0] if isinstance(r[0], UUID) else UUID(str(r[0])) for r in rows}

    def worker_windows(self) -> Counter[tuple[str, int]] | None:
        status = self.worker.status()
        if status is None:
            return None
        systems = status["rollouts"].get(ROLLOUT, {}).get("systems", {})
        return Counter(
            {
                (system, int(datetime.fromisoformat(w["start"]).timestamp())): w["count"]
                for system, windows in systems.items()
                for w in windows
                if w["count"]
            }
        )

    def expected_windows(self) -> Counter[tuple[str, int]]:
        want = Counter(self.sent.windows)
        for bad in self.bad.values():
            if bad.counted and bad.stored is not None:
                want[(bad.stored.system, window_start(bad.stored.ts, self.size.window_s))] += 1
        return want

    def expected_ids(self) -> set[UUID]:
        return self.sent.ids | {b.stored.event_id for b in self.bad.values() if b.stored}

    def _counts(self) -> tuple[int, Counter[tuple[str, int]] | None]:
        try:
            stored = self.ch("SELECT uniqExact(event_id) FROM {db}.results")
        except Exception:  # ClickHouse may be down for a moment
            stored = -1
        return stored, self.worker_windows()

    def _wait(self, done: Callable[..., bool], timeout: float, stall: float = 30.0) -> bool:
        """Poll until ``done(stored, windows)``; False after ``timeout``, or sooner when
        nothing has changed for ``stall`` seconds."""
        deadline, last, changed = time.monotonic() + timeout, None, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - changed < stall:
            counts = self._counts()
            if done(*counts):
                return True
            if counts != last:
                last, changed = counts, time.monotonic()
            time.sleep(0.25)
        return False

    def caught_up(self, count: int, since: float, timeout: float = 90.0) -> float | None:
        """Seconds from ``since`` until ClickHouse and the worker both hold ``count`` results
        (None, and a problem noted, if they do not)."""

        def done(stored: int, windows: Counter | None) -> bool:
            return windows is not None and sum(windows.values()) >= count and stored >= count

        if self._wait(done, timeout):
            return time.monotonic() - since
        self.problems.append(f"not caught up with {count} results")
        return None

    def recovered(self, since: float | None = None) -> Outcome:
        """After a fault: the outcome, with the seconds from ``since`` (default: now) until
        ClickHouse and the worker held everything sent so far; the load ends first."""
        recover = self.caught_up(self.sent.count, time.monotonic() if since is None else since)
        self.join_load()
        return self.outcome(recover)

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until ClickHouse and the worker hold everything sent (or give up)."""
        want_ids, want_windows = len(self.expected_ids()), self.expected_windows()
        if self._wait(lambda s, w: s >= want_ids and w == want_windows, timeout):
            time.sleep(2 * self.settings.flush_seconds + 1)  # room for a late extra

    # -- judging -------------------------------------------------------------------------

    def outcome(self, recover_s: float | None = None) -> Outcome:
        self.settle()
        out = Outcome(self.name, recover_s=recover_s, problems=self.problems)
        summary = self.summary
        if summary is not None and summary.emitter is not None:
            stats = summary.emitter
            if stats.dropped or stats.sent != stats.queued:
                out.notes.append(f"emitter dropped {stats.dropped} ({stats.dropped_by_reason})")
        want = self.expected_ids()
        out.emitted = len(want)
        out.stored = self.ch("SELECT count() FROM {db}.results FINAL")
        out.unique = self.ch("SELECT uniqExact(event_id) FROM {db}.results")
        raw = self.ch("SELECT count() FROM {db}.results")
        got = self.stored_ids()
        out.lost = len(want - got)
        out.doubled = raw - out.unique
        if extra := len(got - want):
            out.notes.append(f"{extra} stored events nobody sent")
            out.lost += extra  # counted as a failure too
        self.seen = seen = self.read()
        self._judge_dlq(out, seen.letters)
        self._judge_alerts(out, seen)
        want_windows, have = self.expected_windows(), self.worker_windows() or Counter()
        keys = set(want_windows) | set(have)
        out.windows = len(keys)
        out.windows_off = sum(want_windows[k] != have[k] for k in keys)
        out.crashes = self._crashes(out)
        return out

    def _judge_dlq(self, out: Outcome, dead: list[DeadLetter]) -> None:
        letters: dict[tuple[str, int, int], str] = {}
        for letter in dead:
            if letter.source_topic == self.settings.topics.results:
                letters[(letter.component, letter.partition, letter.offset)] = letter.reason
            else:
                out.notes.append(f"dead letter from {letter.source_topic}: {letter.reason}")
                out.dlq_unmatched += 1
        out.dlq = len(letters)
        wrong: Counter[str] = Counter()
        for (partition, offset), bad in self.bad.items():
            for component, word in (("sink", bad.sink), ("streams", bad.streams)):
                if word is None:
                    continue
                out.dlq_expected += 1
                reason = letters.pop((component, partition, offset), None)
                if reason is None or word.lower() not in reason.lower():
                    wrong[f"{component}: {bad.kind}"] += 1
        out.dlq_unmatched += sum(wrong.values()) + len(letters)
        if wrong:
            out.notes.append(f"missing or wrong letters: {dict(wrong)}")
        if letters:
            sample = list(letters.items())[:3]
            out.notes.append(f"{len(letters)} unexpected letters, e.g. {sample}")

    def _judge_alerts(self, out: Outcome, seen: Seen) -> None:
        """The rollbacks (:func:`judge_rollbacks`); ClickHouse holds each alert once."""
        alerts = judge_rollbacks(seen.alerts, seen.log, out)
        out.rollbacks_expected = self.expected_rollbacks
        stored = self.ch("SELECT count() FROM {db}.alerts FINAL")
        out.alert_dups = max(0, stored - len(alerts))
        if stored < len(alerts):
            out.problems.append(f"{len(alerts) - stored} alerts missing in ClickHouse")
        if kinds := Counter(a.kind for a in alerts.values()):
            out.notes.append(f"alerts {dict(kinds)}")

    def _crashes(self, out: Outcome) -> int:
        """Processes that died without being told to; tracebacks in the logs are noted."""
        crashes = 0
        for proc in (self.worker, self.sink):
            if proc.proc is not None and proc.proc.poll() is not None:
                crashes += 1
                out.notes.append(f"{proc.log.stem} exited with {proc.proc.returncode}")
            text = proc.log.read_text(errors="replace") if proc.log.exists() else ""
            if tracebacks := len(re.findall(r"^Traceback", text, re.M)):
                out.notes.append(f"{proc.log.name}: {tracebacks} tracebacks")
        for name, pid in self.stack.pids().items():
            if pid is None:
                crashes += 1
                out.notes.append(f"{name} is not running")
        return crashes

    def close(self) -> None:
        """Stop what this run started (the worker and the sink)."""
        self.worker.stop()
        self.sink.stop()
        self.store.close()


def _decoded(value: bytes, model: type) -> Any:
    try:
        return decode(value, model)
    except DecodeError:
        return None


def _log(records: list[Any]) -> list[RolloutEvent]:
    return [e for e in (_decoded(r.value, RolloutEvent) for r in records) if e is not None]


def judge_rollbacks(sent: list[Alert], log: list[RolloutEvent], out: Outcome) -> dict[UUID, Alert]:
    """Count the worker's rollbacks into ``out``: the alerts that act (distinct ids; a
    replayed copy keeps its id), each of a kind that rolls back, one for each rollback
    event of the worker in the rollout ``log``. Return the distinct alerts.

    An alert of such a kind that does not act is noted: a dry run, or a trigger that
    fired after an earlier one had rolled back already."""
    alerts: dict[UUID, Alert] = {}
    for alert in sent:
        known = alerts.get(alert.alert_id)
        if known is None or known.action is None:  # keep a copy that acts
            alerts[alert.alert_id] = alert
    rollbacks = {e.event_id for e in log if e.type == "rollback" and e.actor == WORKER}
    acting = [a for a in alerts.values() if a.action is not None]
    out.rollbacks = len(acting)
    if len(rollbacks) != out.rollbacks:
        out.problems.append(f"{len(rollbacks)} rollback events for {out.rollbacks} alerts")
    if odd := sorted({a.kind for a in acting} - ROLLBACK_KINDS):
        out.problems.append(f"alerts of kinds {odd} act")
    if inert := sum(a.kind in ROLLBACK_KINDS and a.action is None for a in alerts.values()):
        out.notes.append(f"{inert} rollback alerts without a rollback (dry run, or done)")
    return alerts
