"""Retry delays that double up to a limit: one rule for every part that retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass
class Backoff:
    """Retry delays doubling from ``first`` up to ``most`` seconds."""

    first: float = 0.5
    most: float = 10.0
    clock: Clock = time.monotonic
    failures: int = 0
    next_try: float = 0.0

    def failed(self) -> float:
        """Record a failure; return the delay before the next try."""
        delay = min(self.most, self.first * 2**self.failures)
        self.failures += 1
        self.next_try = self.clock() + delay
        return delay

    def ready(self) -> bool:
        return self.clock() >= self.next_try

    def wait(self) -> float:
        """Seconds until the next try (0 if due)."""
        return max(0.0, self.next_try - self.clock())

    def reset(self) -> None:
        self.failures = 0
        self.next_try = 0.0
