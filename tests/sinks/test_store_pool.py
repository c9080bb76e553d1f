"""The stores' connection pool (pure logic: the connections are plain objects)."""

from __future__ import annotations

import pytest

from sinks.store import StoreError
from sinks.store.base import Pool


def pool() -> tuple[Pool[int], list[int], list[int]]:
    """A pool of numbered connections, the numbers it opened and those it released."""
    opened: list[int] = []
    released: list[int] = []

    def connect() -> int:
        opened.append(len(opened))
        return opened[-1]

    return Pool(connect, released.append), opened, released


def test_a_connection_is_lent_to_one_borrower_at_a_time_and_then_reused() -> None:
    connections, opened, _ = pool()
    with connections.borrow() as first, connections.borrow() as second:
        assert first != second
    with connections.borrow() as again:
        assert again in (first, second)
    assert opened == [0, 1]


def test_close_releases_the_idle_now_and_the_lent_when_returned() -> None:
    connections, _, released = pool()
    with connections.borrow() as first, connections.borrow() as second:
        pass
    with connections.borrow() as lent:
        (idle,) = {first, second} - {lent}
        connections.close()
        assert released == [idle]
    assert released == [idle, lent]
    with pytest.raises(StoreError, match="closed"), connections.borrow():
        pass


def test_a_failed_connect_lends_nothing_and_keeps_nothing() -> None:
    attempts: list[int] = []

    def connect_second_time() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise StoreError("refused")
        return len(attempts)

    connections: Pool[int] = Pool(connect_second_time, print)
    with pytest.raises(StoreError, match="refused"), connections.borrow():
        pass
    with connections.borrow() as connection:
        assert connection == 2  # a new one: no failed one was kept idle
