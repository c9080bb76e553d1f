"""Soak: the whole stack at a steady rate for N minutes, each process's memory every minute.

    python -m bench.soak                      # 30 minutes at 200 generations/s
    python -m bench.soak --minutes 4 --rate 300
    python -m bench.soak --minutes 20 --trace DIR   # where the worker's and sink's memory grows

Bounded: the load stops after ``--minutes``, then the run is judged like a fault scenario
(lost, doubled) and everything it started is stopped. Memory is the resident set size
(``/proc/PID/status`` VmRSS). Growth is judged from the "warm" sample (``--warm``
minutes, default a third of the run) to the end, with its rate in each half of that span
(a rate that falls is settling, one that holds is a leak). The bounded caches fill at
different speeds at 200/s: the sink's 100,000 recent ids in about 6 min, the worker's
20,000 ids per results partition in about 7 min, but per feedback partition (about 20
feedback/s over 4 partitions) only after about 67 min: through a shorter run that cache
grows by design, about 0.15 MiB/min. A memory:// broker holds the whole log: its growth is the data.

Warm means more than full caches: the sink and the worker hold a batch in hand while they
catch up after a stall (the sink up to two batches of 20,000 events), and CPython keeps
the memory arenas such a peak touched as long as one object in each lives on. So the
soak's warm-up includes the largest catch-up it will see: ``--catch-up`` seconds (120)
after the first minute, the worker and the sink are frozen (SIGSTOP) while the load goes
on, then resumed; at 200/s they come back to 24,000 events waiting, the sink's full batch
size. Growth after that is what the soak judges; ``--catch-up 0`` leaves it out. Not with
``--durable``: the local s3rver cannot serve that backlog while it takes the new writes
(measured at 200/s: s3rver at 100% of a core, the Emitter's deliveries failing for
minutes), so a durable soak has only the broker's own slow spells as catch-ups.

``--trace`` makes the worker and the sink several times slower (every allocation is
recorded with 8 frames): at 200/s they fall behind, so such a run says where memory grows,
not whether events arrive (its "lost" counts what was still unread when it stopped).
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import threading
import time
from pathlib import Path

from bench.common import print_table, proc_status_kb
from phasegate.testing.faults.outcome import Outcome
from phasegate.testing.faults.run import Run, Size
from phasegate.testing.faults.stack import Stack, freeze

GROWTH_LIMIT = 0.10  # more than 10% (and 5 MiB) after warm-up counts as growth
GROWTH_FLOOR_MIB = 5.0


def rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return proc_status_kb("VmRSS", pid) / 1024
    except (OSError, StopIteration):  # gone, or a zombie without memory
        return None


def pids(stack: Stack, run: Run) -> dict[str, int | None]:
    procs = {"worker": run.worker.proc, "sink": run.sink.proc}
    found = {name: p.pid if p and p.poll() is None else None for name, p in procs.items()}
    found.update({"tansu" if k == "broker" else k: v for k, v in stack.pids().items()})
    found["load (emitter + test ledger)"] = os.getpid()
    return found


def growth(series: list[float], warm_at: int) -> tuple[float, bool]:
    """MiB from the warm sample to the last, and whether that counts as growing."""
    warm, last = series[warm_at], series[-1]
    grown = last - warm
    return grown, grown > max(GROWTH_FLOOR_MIB, GROWTH_LIMIT * warm)


def catch_up(run: Run, after_s: float, seconds: float) -> None:
    """Freeze the worker and the sink for ``seconds``, ``after_s`` into the load, so they
    come back to a backlog and catch up."""
    time.sleep(after_s)
    print(f"worker and sink frozen for {seconds:.0f} s (a backlog to catch up on)", flush=True)
    freeze([p.pid for p in (run.worker.proc, run.sink.proc) if p and p.poll() is None], seconds)
    print("worker and sink resumed", flush=True)


def soak(
    minutes: float,
    rate: float,
    root: Path,
    sample_s: float,
    durable: bool,
    warm: float | None,
    catch_up_s: float = 0.0,
) -> int:
    size = Size(rate=rate, duration_s=minutes * 60, hostile=0, outage_s=0, window_s=60)
    stack = Stack(root / "stack", durable).start()
    run = Run(stack, f"soak {minutes:g} min", size, root / "soak")
    samples: list[tuple[float, int, dict[str, float | None]]] = []
    try:
        run.start()
        run.load()
        done = threading.Event()
        threading.Thread(target=lambda: (run.join_load(), done.set()), daemon=True).start()
        if catch_up_s > 0:
            threading.Thread(target=catch_up, args=(run, 60.0, catch_up_s), daemon=True).start()
        while True:
            elapsed = time.monotonic() - run.started
            found = {name: rss_mib(pid) for name, pid in pids(stack, run).items()}
            samples.append((elapsed, run.sent.count, found))
            print(
                f"{elapsed / 60:5.1f} min  {run.sent.count:>9} results  "
                + "  ".join(f"{k.split()[0]} {v:.0f}" for k, v in found.items() if v is not None),
                flush=True,
            )
            if done.wait(sample_s):
                break
        found = {name: rss_mib(pid) for name, pid in pids(stack, run).items()}
        samples.append((time.monotonic() - run.started, run.sent.count, found))
        outcome = run.outcome()
    finally:
        run.close()
        stack.stop()
    return report(samples, outcome, rate, durable, minutes / 3 if warm is None else warm)


def report(samples, outcome: Outcome, rate: float, durable: bool, warm: float) -> int:
    names = list(samples[0][2])
    rows = [
        [f"{t / 60:.1f}", str(n), *(f"{s[k]:.0f}" if s.get(k) else "-" for k in names)]
        for t, n, s in samples
    ]
    print_table("RSS (MiB) per process", ["minute", "results sent", *names], rows, width=200)
    warm_at = next((i for i, (t, _, _) in enumerate(samples) if t >= warm * 60), 1)
    verdict_rows, grows = [], False
    for name in names:
        series = [s[name] for _, _, s in samples if s.get(name) is not None]
        if len(series) <= warm_at:
            verdict_rows.append([name, "-", "-", "-", "-", "not sampled"])
            continue
        grown, growing = growth(series, warm_at)
        verdict = "GROWS" if growing else "flat"
        if name == "tansu" and not durable:
            growing, verdict = False, "holds the log (memory://)"
        grows |= growing and not name.startswith("load")
        times = [t / 60 for t, _, s in samples if s.get(name) is not None]
        halves = (warm_at, (warm_at + len(series) - 1) // 2, len(series) - 1)
        slopes = [
            (series[b] - series[a]) / max(1e-9, times[b] - times[a])
            for a, b in itertools.pairwise(halves)
        ]
        verdict_rows.append(
            [
                name,
                f"{series[warm_at]:.0f}",
                f"{series[-1]:.0f}",
                f"{grown:+.1f}",
                " / ".join(f"{v:+.2f}" for v in slopes),
                verdict,
            ]
        )
    print_table(
        f"after warm-up (minute {samples[warm_at][0] / 60:.1f}) at {rate:.0f} generations/s",
        ["process", "warm MiB", "end MiB", "change MiB", "MiB/min: 1st / 2nd half", "verdict"],
        verdict_rows,
        width=200,
    )
    print_table("the run", Outcome.COLUMNS, [outcome.row()], width=200)
    print("; ".join(outcome.problems + outcome.notes))
    return 0 if outcome.ok and not grows else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="generations per second")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--durable", action="store_true", help="Tansu on s3rver, not memory")
    parser.add_argument("--warm", type=float, help="minute growth is judged from (a third)")
    parser.add_argument(
        "--catch-up",
        type=float,
        default=120.0,
        help="seconds the worker and sink are frozen after minute 1 (0: not at all; "
        "never with --durable)",
    )
    parser.add_argument("--keep", type=Path, help="keep logs and state in this folder")
    parser.add_argument(
        "--trace",
        type=Path,
        help="trace the worker's and sink's allocations into this folder (phasegate.memtrace); "
        "slows them: judge memory, not loss",
    )
    args = parser.parse_args()
    if args.trace:  # inherited by the worker and sink processes
        warm = args.minutes / 3 if args.warm is None else args.warm
        os.environ["PHASEGATE_MEMTRACE"] = str(args.trace.resolve())
        os.environ["PHASEGATE_MEMTRACE_SECONDS"] = "60"
        os.environ["PHASEGATE_MEMTRACE_WARM"] = str(max(1, round(warm)))
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        catch_up_s = 0.0 if args.durable else args.catch_up
        code = soak(args.minutes, args.rate, root, args.sample, args.durable, args.warm, catch_up_s)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
