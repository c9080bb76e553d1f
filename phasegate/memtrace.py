"""Opt-in allocation tracing for soak runs: where a process's Python memory grows.

Set ``PHASEGATE_MEMTRACE=DIR`` and every ``phasegate`` command traces its allocations
(``tracemalloc``, 8 frames; slows the process down) and appends to ``DIR/<pid>.txt``,
every ``PHASEGATE_MEMTRACE_SECONDS`` (60): the traced total, and from the
``PHASEGATE_MEMTRACE_WARM``-th sample (5) on, the 10 call sites whose memory grew most
since that sample. Off unless set.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

MIB = 1024 * 1024


def start_from_env() -> bool:
    """Start tracing if ``PHASEGATE_MEMTRACE`` is set; True if it started."""
    folder = os.environ.get("PHASEGATE_MEMTRACE")
    if not folder or tracemalloc.is_tracing():
        return False
    interval = float(os.environ.get("PHASEGATE_MEMTRACE_SECONDS", "60"))
    warm = int(os.environ.get("PHASEGATE_MEMTRACE_WARM", "5"))
    path = Path(folder) / f"{os.getpid()}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {' '.join(sys.argv)}\n")
    tracemalloc.start(8)
    threading.Thread(
        target=_sample, args=(path, interval, warm), name="memtrace", daemon=True
    ).start()
    return True


def _sample(path: Path, interval: float, warm: int) -> None:
    ignore = (tracemalloc.Filter(False, tracemalloc.__file__),)
    base = None
    for n in range(1, sys.maxsize):
        time.sleep(interval)
        if not tracemalloc.is_tracing():
            return
        snapshot = tracemalloc.take_snapshot().filter_traces(ignore)
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"sample {n} at {n * interval:.0f} s: traced {current / MIB:.1f} MiB "
                 f"(peak {peak / MIB:.1f})"]  # fmt: skip
        if n == warm:
            base = snapshot
        elif base is not None:
            for stat in snapshot.compare_to(base, "traceback")[:10]:
                lines.append(
                    f"  {stat.size_diff / MIB:+.2f} MiB {stat.count_diff:+d} blocks "
                    f"(now {stat.size / MIB:.2f} MiB)"
                )
                lines += [f"      {frame}" for frame in stat.traceback.format(limit=4)]
        with path.open("a") as out:
            out.write("\n".join(lines) + "\n")
