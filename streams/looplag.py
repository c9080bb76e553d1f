"""How late the worker's event loop wakes a short sleep: the proof it never waits.

A task sleeps ``period_s`` again and again and records how much longer each sleep took:
the loop was busy, or blocked, for that long, or the machine had no CPU free for the
process. ``queued`` (on Linux, the thread's run-queue time from
``/proc/thread-self/schedstat``) tells the last apart: ``held`` is the lag without it,
the time the process itself held its loop. ``/status`` shows, in milliseconds, the
largest lag since the worker started, the largest of the last ``span_s`` seconds, and
the largest held lag since start.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from pathlib import Path

SCHEDSTAT = Path("/proc/thread-self/schedstat")


def run_queue_s() -> float:
    """Seconds this thread has waited for a CPU (0 where the kernel does not say)."""
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class LoopLag:
    """The event loop's lag: record each sleep's overshoot (see the module docstring)."""

    def __init__(
        self,
        period_s: float = 0.01,
        span_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        queued: Callable[[], float] = run_queue_s,
    ) -> None:
        self.period_s, self.span_s, self.clock, self.queued = period_s, span_s, clock, queued
        self.max_ms = self.held_max_ms = 0.0
        self._recent: collections.deque[tuple[float, float]] = collections.deque()

    def record(self, slept_s: float, queued_s: float = 0.0) -> None:
        """One sleep of ``period_s`` that took ``slept_s``, ``queued_s`` of it without a CPU."""
        lag_ms = max(0.0, slept_s - self.period_s) * 1000
        now = self.clock()
        self.max_ms = max(self.max_ms, lag_ms)
        self.held_max_ms = max(self.held_max_ms, lag_ms - queued_s * 1000)
        self._recent.append((now, lag_ms))
        while self._recent[0][0] < now - self.span_s:
            self._recent.popleft()

    def recent_ms(self) -> float:
        """The largest lag of the last ``span_s`` seconds."""
        cutoff = self.clock() - self.span_s
        return max((lag for at, lag in self._recent if at >= cutoff), default=0.0)

    def json(self) -> dict[str, float]:
        return {
            "max": round(self.max_ms, 1),
            "recent": round(self.recent_ms(), 1),
            "held_max": round(self.held_max_ms, 1),
        }

    async def run(self) -> None:
        """Sleep and record, until cancelled (the calling thread runs the loop)."""
        while True:
            start, queued = self.clock(), self.queued()
            await asyncio.sleep(self.period_s)
            self.record(self.clock() - start, self.queued() - queued)
