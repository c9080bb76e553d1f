"""The stores' connection pool (pure logic: the connections are plain objects)."""

from __future__ import annotations

import itertools

import pytest

from sinks.store import StoreError
from sinks.store.base import Pool


def pool() -> tuple[Pool[int], list[int]]:
    released: list[int] = []
    return Pool(itertools.count().__next__, released.append), released


def test_a_connection_is_lent_to_one_borrower_at_a_time_and_then_reused() -> None:
    connections, _ = pool()
    with connections.borrow() as first, connections.borrow() as second:
        assert first != second
        assert connections.size == 2
    with connections.borrow() as again:
        assert again in (first, second)
    assert connections.size == 2


def test_close_releases_the_idle_now_and_the_lent_when_returned() -> None:
    connections, released = pool()
    with connections.borrow() as first, connections.borrow() as second:
        pass
    with connections.borrow() as lent:
        (idle,) = {first, second} - {lent}
        connections.close()
        assert released == [idle]
    assert released == [idle, lent]
    with pytest.raises(StoreError, match="closed"), connections.borrow():
        pass


def test_a_failed_connect_lends_nothing() -> None:
    def refuse() -> int:
        raise StoreError("refused")

    connections: Pool[int] = Pool(refuse, print)
    with pytest.raises(StoreError, match="refused"), connections.borrow():
        pass
    assert connections.size == 0
