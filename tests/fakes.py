"""Fakes for pure-logic tests (the services themselves are always real)."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock that moves only when told to (``sleep`` moves it too)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
