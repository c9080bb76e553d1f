"""A bounded, mergeable sample of distinct units, exact for the units it keeps.

The sample keeps every unit whose 32-bit hash is below ``2 ** (32 - level)``: at level 0
every unit, at level 1 half of them, and so on. When it would hold more than its
capacity, it raises the level and drops the units above the new bound. Two samples merge
into the sample at the higher of their levels, so a union over windows, partitions and
flushes is exact: it holds precisely the distinct units below its bound. The hash is
independent of the Router's bucket, so the kept units are a random subset of the units
whichever system serves them (the sample ratio check relies on it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from schemas.internal import UnitSampleState

BITS = 32
CAPACITY = 4096  # units per window, system and weight: what a partial carries at most


def unit_hash(unit_id: str) -> int:
    """The unit's sampling hash (blake2b, personalised: unrelated to the Router's)."""
    digest = hashlib.blake2b(unit_id.encode(), digest_size=4, person=b"phasegate-units")
    return int.from_bytes(digest.digest(), "big")


class UnitSample:
    """The distinct unit hashes below ``2 ** (BITS - level)`` (see the module docstring)."""

    __slots__ = ("capacity", "hashes", "level")

    def __init__(self, capacity: int = CAPACITY, level: int = 0, hashes: Iterable[int] = ()):
        self.capacity = capacity
        self.level = level
        self.hashes: set[int] = set(hashes)
        self._bound()

    @property
    def bound(self) -> int:
        """The hashes kept are those below this."""
        return 1 << (BITS - self.level)

    def add(self, h: int) -> None:
        if h < self.bound:
            self.hashes.add(h)
            self._bound()

    def merge(self, other: UnitSample) -> UnitSample:
        """Add ``other``'s units in; return self."""
        self.raise_to(other.level)
        if other.level == self.level:
            self.hashes |= other.hashes
        else:
            bound = self.bound
            self.hashes.update(h for h in other.hashes if h < bound)
        self._bound()
        return self

    def raise_to(self, level: int) -> None:
        """Keep only the units below the bound of ``level`` (if it is higher)."""
        if level > self.level:
            self.level, bound = level, 1 << (BITS - level)
            self.hashes = {h for h in self.hashes if h < bound}

    def _bound(self) -> None:
        while len(self.hashes) > self.capacity:
            self.raise_to(self.level + 1)

    def __len__(self) -> int:
        return len(self.hashes)

    def to_state(self) -> UnitSampleState:
        return UnitSampleState(level=self.level, hashes=sorted(self.hashes))

    @classmethod
    def from_state(cls, state: UnitSampleState) -> UnitSample:
        return cls(level=state.level, hashes=state.hashes)
