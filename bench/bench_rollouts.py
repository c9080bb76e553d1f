"""Cost as work grows: 1, 100 and 1,000 concurrent rollouts through the real stage 2.

One rollout's traffic (two systems, 50/50, ``rate`` results/s, unit ids drawn from a pool
of 10,000 units) goes through the real stage 1 (``PartitionAccumulator``) once; its
partials are then merged into one :class:`~streams.stage2.Stage2` (default plan, every
rollout at phase 1) under each rollout's name. Each case runs in a fresh process:

- memory: the resident set (RSS) after stage 2 holds a full retention (60 windows of 60 s)
  of every rollout, minus the RSS before; per rollout. Stage 1 drained here every
  ``--flush`` seconds (60: one partial per system and window, which leaves the windows as
  the worker's one a second does; the triggers' last 1,000 increments of evidence are
  then fewer and larger than the worker's: ``--flush 1`` is its cadence, slow).
- the garbage collector: objects it tracks per rollout, and one full pass timed (process
  CPU) over stage 2's state. The bench's own inputs are frozen (``gc.freeze``) before,
  as the worker freezes what it holds at start-up.
- CPU: a further minute at the worker's cadence (a partial per system each second, per
  rollout), merged and judged (``Stage2.apply``); process CPU per partial.
- ``/status`` (every rollout), ``/status?rollout=R`` and ``/metrics``: the handler's
  work (``streams.scrape``'s builders; ``status_json`` and JSON encoding for one
  rollout), process CPU ms (the wall time on a loaded machine is not the handler's) and
  bytes; no HTTP. Each is timed after one more second of partials of every rollout (what
  a scrape meets in the worker: every rollout's newest window changed, the rest kept);
  ``/status?rollout=R`` the median of 3 such. Every rollout's gates have had their
  first look (untimed, as the worker's auto-advance timer takes it). "Loop held": the
  longest stretch between two of the builders' loop turns (one rollout's part), and in
  brackets the longest pass of Python's cyclic garbage collector during the scrapes (a
  full pass walks every object of the process: it may fall in any stretch).

    python -m bench.bench_rollouts [--rollouts 1 100 1000] [--rates 10 100] [--flush 60]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from multiprocessing import get_context

from bench.common import print_table
from rollout.state import RolloutState
from schemas.events import Result, RolloutEvent
from schemas.internal import Partial
from schemas.plan import load_plan
from schemas.settings import Settings
from streams.scrape import Pause, metrics_text, status_text
from streams.stage2 import Stage2
from streams.status import status_json
from streams.windows import PartitionAccumulator, to_datetime

DEFAULTS = Settings.model_fields
WINDOW = DEFAULTS["window_seconds"].default
RETENTION = DEFAULTS["retention_seconds"].default
ROLES = (DEFAULTS["rolling_seconds"].default, "pipeline", "production")
UNITS = 10_000
T0 = 1_798_761_600  # 2027-01-01, a window boundary
PAGE = 4096
SCRAPES = 3  # seconds of partials kept back for the scrapes


def traffic(rate: int, start: int, seconds: int, flush: int) -> list[list[Partial]]:
    """One rollout's partials, drained every ``flush`` seconds, through the real stage 1."""
    rng = random.Random(rate)
    acc = PartitionAccumulator("results", 0, window_seconds=WINDOW, lateness=WINDOW)
    runs, offset = [], 0
    for second in range(seconds):
        ts = to_datetime(start + second)
        for i in range(rate):
            system = ("pipeline", "production")[i % 2]
            result = Result(
                rollout="r",
                system=system,
                query_id=f"q{offset}",
                unit_id=f"u{rng.randrange(UNITS)}",
                ts=ts + timedelta(seconds=i / rate),
                success=rng.random() < 0.97,
                confidence=0.9,
                latency_ms=rng.lognormvariate(4.6, 0.4),
                weight=50,
            )
            acc.add(offset, result, start + second + 1.0)
            offset += 1
        if (second + 1) % flush == 0:
            runs.append(acc.drain())
            acc.committed(offset)  # the worker commits once the partials are on the broker
    return runs


def renamed(partials: list[Partial], rollout: str) -> list[Partial]:
    return [p.model_copy(update={"rollout": rollout}) for p in partials]


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Turns:
    """A scrape builder's ``pause`` that records the longest CPU stretch between two loop
    turns, and the longest pass of Python's cyclic garbage collector meanwhile."""

    def __init__(self) -> None:
        self.longest = self.longest_gc = 0.0
        self.last = self.gc_began = time.process_time()

    async def __call__(self) -> None:
        now = time.process_time()
        self.longest, self.last = max(self.longest, now - self.last), now

    def collecting(self, phase: str, info: dict[str, int]) -> None:  # a gc.callbacks entry
        now = time.process_time()
        if phase == "start":
            self.gc_began = now
        else:
            self.longest_gc = max(self.longest_gc, now - self.gc_began)


def scraped(build: Callable[[Pause], Awaitable[str]]) -> tuple[float, Turns, str]:
    """CPU seconds of one scrape built by ``build(pause)``, its loop turns, and its text."""
    turns = Turns()
    gc.callbacks.append(turns.collecting)
    t = time.process_time()
    text = asyncio.run(build(turns))
    cpu = time.process_time() - t
    gc.callbacks.remove(turns.collecting)
    return cpu, turns, text


def every(run: list[Partial], names: list[str]) -> list[Partial]:
    """One second's partials of one rollout, as every rollout's."""
    return [q for name in names for q in renamed(run, name)]


def full_pass() -> float:
    """Process CPU seconds of one full pass of the garbage collector."""
    t = time.process_time()
    gc.collect()
    return time.process_time() - t


def case(n: int, rate: int, flush: int = WINDOW) -> dict[str, float]:
    """One row: ``n`` rollouts at ``rate`` results/s each (run in a fresh process)."""
    history = [p for run in traffic(rate, T0, RETENTION, flush) for p in run]
    live = traffic(rate, T0 + RETENTION, 60 + SCRAPES, 1)
    names = [f"rollout-{i:04d}" for i in range(n)]
    event = RolloutEvent(rollout="r", type="phase_started", phase=1, weight=50)
    states = {r: RolloutState(r).apply(event.model_copy(update={"rollout": r})) for r in names}
    gc.collect()
    gc.freeze()  # the inputs: not stage 2's state
    before, objects = rss(), len(gc.get_objects())
    stage2 = Stage2(WINDOW, RETENTION, load_plan(), state_of=states.get)
    for name in names:
        for partial in renamed(history, name):
            stage2.apply(partial)
    gc.collect()
    per_rollout, objects = (rss() - before) / n, (len(gc.get_objects()) - objects) / n
    gc_pass = min(full_pass() for _ in range(3))
    cpu = partials = 0
    for run in live[:-SCRAPES]:
        second = every(run, names)
        t = time.process_time()
        for partial in second:
            stage2.apply(partial)
        cpu += time.process_time() - t
        partials += len(second)
    worker = {"counters": {"partials": partials}}
    for name in names:  # the gates' first look (every window since the phase began), as
        stage2.gates(name)  # the worker's auto-advance timer takes it
    ones = []
    for run in live[-SCRAPES:]:
        for partial in every(run, names):
            stage2.apply(partial)
        t = time.process_time()
        one = json.dumps(status_json(stage2, names[-1], ROLES, worker)[0])
        ones.append(time.process_time() - t)
    whole_s, whole_turns, whole = scraped(lambda p: status_text(stage2, ROLES, worker, p))
    for partial in every(live[-1], names):  # one more second: the scrape after
        stage2.apply(partial)
    metrics_s, metrics_turns, metrics = scraped(lambda p: metrics_text(stage2, ROLES, worker, p))
    return {
        "rollouts": n,
        "rate": rate,
        "bytes_per_rollout": per_rollout,
        "objects_per_rollout": objects,
        "gc_pass_ms": gc_pass * 1e3,
        "partials_per_s": partials / cpu,
        "us_per_partial": cpu / partials * 1e6,
        "status_ms": whole_s * 1e3,
        "status_kb": len(whole) / 1e3,
        "one_ms": sorted(ones)[len(ones) // 2] * 1e3,
        "one_kb": len(one) / 1e3,
        "metrics_ms": metrics_s * 1e3,
        "metrics_kb": len(metrics) / 1e3,
        "held_ms": max(whole_turns.longest, metrics_turns.longest) * 1e3,
        "gc_ms": max(whole_turns.longest_gc, metrics_turns.longest_gc) * 1e3,
    }


def cost(ms: float, kb: float) -> str:
    return f"{ms:,.1f} / {kb:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--flush", type=int, default=WINDOW, help="history's drain, seconds")
    args = parser.parse_args()
    rows = []
    ctx = get_context("spawn")  # a fresh interpreter per case: its RSS is its own
    for rate in args.rates:
        for n in args.rollouts:
            pool = ctx.Pool(1)
            r = pool.apply(case, (n, rate, args.flush))
            pool.close()
            pool.join()
            print(json.dumps(r), flush=True)
            rows.append(
                [
                    f"{n:,}",
                    f"{rate}",
                    f"{r['bytes_per_rollout'] / 1e6:.2f}",
                    f"{r['objects_per_rollout']:,.0f}",
                    f"{r['gc_pass_ms']:,.0f}",
                    f"{r['partials_per_s']:,.0f}",
                    f"{r['us_per_partial']:.0f}",
                    cost(r["status_ms"], r["status_kb"]),
                    cost(r["one_ms"], r["one_kb"]),
                    cost(r["metrics_ms"], r["metrics_kb"]),
                    f"{r['held_ms']:,.1f} ({r['gc_ms']:,.0f})",
                ]
            )
    print_table(
        f"concurrent rollouts through stage 2 (pid {os.getpid()}; baseline: 1 rollout)",
        [
            "rollouts",
            "results/s each",
            "MB RSS per rollout",
            "GC objects per rollout",
            "full GC pass ms",
            "partials/s",
            "CPU us/partial",
            "/status ms / kB",
            "/status?rollout=R ms / kB",
            "/metrics ms / kB",
            "loop held ms (GC pass)",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
