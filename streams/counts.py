"""Counts by key in plain dicts: nothing for Python's garbage collector to walk.

CPython leaves a plain ``dict`` whose keys and values are all atoms (str, int, float,
tuples of them) out of its cyclic garbage collector's passes; a ``Counter``, a subclass,
it always walks. The window aggregates (``streams.aggregate``) keep their counts here
as plain dicts: a rollout's hour of windows holds a few thousand of them.
"""

from __future__ import annotations

from collections import _count_elements  # Counter.update's own loop, in C
from collections.abc import Iterable, Mapping
from heapq import nlargest
from operator import itemgetter
from typing import TypeVar

K = TypeVar("K")


def count(counts: dict[K, int], keys: Iterable[K]) -> None:
    """Add one to ``counts[k]`` for each ``k`` of ``keys`` (``Counter.update``'s)."""
    _count_elements(counts, keys)


def add(counts: dict[K, float], other: Mapping[K, float]) -> None:
    """Add each of ``other``'s counts (or sums) into ``counts``."""
    get = counts.get
    for key, n in other.items():
        counts[key] = n + get(key, 0)


def most_common(counts: Mapping[K, int], n: int) -> list[tuple[K, int]]:
    """The ``n`` largest counts, the first seen first among equal ones (``Counter``'s)."""
    return nlargest(n, counts.items(), key=itemgetter(1))
