"""Backoff: delays double up to a bound, a success starts again from the first."""

from __future__ import annotations

from schemas.backoff import Backoff
from tests.fakes import FakeClock


def test_backoff_doubles_up_to_a_bound_and_resets() -> None:
    clock = FakeClock()
    backoff = Backoff(first=0.5, most=3.0, clock=clock)
    assert backoff.ready()
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert not backoff.ready() and backoff.wait() == 3.0
    clock.now += 3.0
    assert backoff.ready()
    backoff.reset()
    assert backoff.failed() == 0.5
