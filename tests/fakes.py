"""Fakes for pure-logic tests (the services themselves are always real)."""

from __future__ import annotations

from streams.clock import ManualClock


class FakeClock(ManualClock):
    """A manual clock whose ``sleep`` moves it (for code that waits by sleeping)."""

    def __init__(self, start: float = 100.0) -> None:
        super().__init__(start)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
