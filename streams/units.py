"""A bounded, mergeable sample of distinct units, exact for the units it keeps.

The sample keeps every unit whose 32-bit hash is below ``2 ** (32 - level)``: at level 0
every unit, at level 1 half of them, and so on. When it would hold more than its
capacity, it raises the level and drops the units above the new bound. Two samples merge
into the sample at the higher of their levels, so a union over windows, partitions and
flushes is exact: it holds precisely the distinct units below its bound. The hash is
independent of the Router's bucket, so the kept units are a random subset of the units
whichever system serves them (the sample ratio check relies on it).

Layout: a sorted, distinct ``uint32`` array (4 bytes a unit) plus a small unsorted
buffer of new hashes (``array("I")``, also 4 bytes each) that is folded in when it
outgrows a quarter of the array, or when the sample is read. Every read (``len``,
``level``, ``hashes``, the wire form) sees the folded sample, so the semantics are those
of a set: the buffer only defers the sorting.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable

import numpy as np

from schemas.internal import UnitSampleState

BITS = 32
CAPACITY = 4096  # units per window, system and weight: what a partial carries at most
BUFFER = 64  # new hashes held unsorted at least before they are folded in

assert array("I").itemsize == 4, "array('I') must hold 32-bit hashes"


def unit_hash(unit_id: str) -> int:
    """The unit's sampling hash (blake2b, personalised: unrelated to the Router's)."""
    digest = hashlib.blake2b(unit_id.encode(), digest_size=4, person=b"phasegate-units")
    return int.from_bytes(digest.digest(), "big")


def bound_of(level: int) -> int:
    """The hashes a sample at ``level`` keeps are those below this."""
    return 1 << (BITS - level)


def _below(hashes: np.ndarray, bound: int) -> np.ndarray:
    """The prefix of sorted ``hashes`` below ``bound`` (``hashes`` itself if all are)."""
    n = len(hashes) if bound >> BITS else int(np.searchsorted(hashes, bound))
    return hashes if n == len(hashes) else hashes[:n]


class UnitSample:
    """The distinct unit hashes below ``2 ** (BITS - level)`` (see the module docstring)."""

    __slots__ = ("_level", "_new", "_sorted", "capacity")

    def __init__(self, capacity: int = CAPACITY, level: int = 0, hashes: Iterable[int] = ()):
        self.capacity = capacity
        self._level = level
        self._sorted = np.empty(0, dtype=np.uint32)
        self._new = array("I")
        self._extend(hashes)

    @property
    def level(self) -> int:
        if len(self._sorted) + len(self._new) > self.capacity:  # the level may have to rise
            self._fold()
        return self._level

    @property
    def bound(self) -> int:
        """The hashes kept are those below this."""
        return bound_of(self.level)

    @property
    def hashes(self) -> np.ndarray:
        """The kept hashes, sorted and distinct (read only)."""
        self._fold()
        return self._sorted

    def add(self, h: int) -> None:
        if h < bound_of(self._level):
            self._new.append(h)
            self._fold_when_full()

    def merge(self, other: UnitSample) -> UnitSample:
        """Add ``other``'s units in; return self."""
        self.raise_to(other.level)
        self._new.frombytes(_below(other._sorted, bound_of(self._level)).tobytes())
        self._extend(other._new)
        return self

    def raise_to(self, level: int) -> None:
        """Keep only the units below the bound of ``level`` (if it is higher)."""
        if level > self._level:
            self._level = level
            self._keep(_below(self._sorted, bound_of(level)))

    def _extend(self, hashes: Iterable[int]) -> None:
        bound = bound_of(self._level)
        self._new.extend(h for h in hashes if h < bound)
        self._fold_when_full()

    def _fold_when_full(self) -> None:
        if len(self._new) > max(BUFFER, len(self._sorted) >> 2):
            self._fold()

    def _fold(self) -> None:
        """Sort the new hashes in (dropping repeats and those above the bound), then raise
        the level while the sample is over capacity."""
        if self._new:
            both = np.concatenate((self._sorted, np.frombuffer(self._new, dtype=np.uint32)))
            both.sort()
            distinct = np.empty(len(both), dtype=bool)
            distinct[:1] = True
            np.not_equal(both[1:], both[:-1], out=distinct[1:])
            self._new = array("I")
            self._keep(_below(both[distinct], bound_of(self._level)))
        while len(self._sorted) > self.capacity:
            self._level += 1
            self._keep(_below(self._sorted, bound_of(self._level)))

    def _keep(self, hashes: np.ndarray) -> None:
        """Hold ``hashes`` in an array of their own (a prefix would pin the whole)."""
        self._sorted = hashes.copy() if hashes.base is not None else hashes
        self._sorted.flags.writeable = False

    def __len__(self) -> int:
        self._fold()
        return len(self._sorted)

    def to_state(self) -> UnitSampleState:
        return UnitSampleState(level=self.level, hashes=self.hashes.tolist())

    @classmethod
    def from_state(cls, state: UnitSampleState) -> UnitSample:
        return cls(level=state.level, hashes=state.hashes)
