"""The unit sample: exact below its hash bound, bounded, and mergeable in any order."""

from __future__ import annotations

import random

from schemas.internal import Partial, WindowStatsState
from streams.units import BITS, UnitSample, unit_hash
from streams.windows import PartitionAccumulator, RolloutView
from tests.streams.conftest import make_result


def hashes(n: int, prefix: str = "u") -> list[int]:
    return [unit_hash(f"{prefix}{i}") for i in range(n)]


def kept(sample: UnitSample) -> set[int]:
    return set(sample.hashes.tolist())


def test_below_capacity_every_unit_is_kept_once():
    sample = UnitSample(capacity=100)
    for h in hashes(50) * 3:
        sample.add(h)
    assert sample.level == 0 and len(sample) == 50


def test_over_capacity_it_keeps_exactly_the_units_below_a_bound():
    all_units = hashes(1000)
    sample = UnitSample(capacity=100, hashes=all_units)
    assert len(sample) <= 100 and sample.level >= 3
    assert kept(sample) == {h for h in all_units if h < 1 << (BITS - sample.level)}


def test_merging_in_any_order_gives_the_sample_of_the_union():
    parts = [hashes(300, p) for p in "abcd"] + [hashes(300, "a")]  # "a" twice: a replay
    samples = [UnitSample(capacity=200, hashes=p) for p in parts]
    one = UnitSample(capacity=200, hashes=[h for p in parts for h in p])
    for seed in range(5):
        random.Random(seed).shuffle(samples)
        merged = UnitSample(capacity=200)
        for s in samples:
            merged.merge(UnitSample(capacity=200, level=s.level, hashes=s.hashes.tolist()))
        assert (merged.level, kept(merged)) == (one.level, kept(one))


def test_the_sample_travels_in_the_partial_and_old_partials_still_read():
    acc = PartitionAccumulator("results", 0, 60, 60, max_future=10**10)
    for i in range(30):  # ten units, three queries each, one fallback copy
        acc.add(i, make_result(i % 10, seconds=i), now=0)
    acc.add(30, make_result(99, system="pipeline").model_copy(update={"fallback": True}), now=0)
    (cand, base), view = acc.drain(), RolloutView("kai", 60)
    wire = Partial.model_validate_json(cand.model_dump_json())
    view.apply(wire)
    view.apply(wire)  # a replay adds the same units
    start = int(cand.window_start.timestamp())
    assert kept(view.units("production", start, 0)) == set(hashes(10))  # type: ignore[arg-type]
    assert base.stats.unit_sample == {}
    old = WindowStatsState.model_validate({"count": 3, "units": {"50": 3}})  # before samples
    assert old.unit_sample == {}


def test_the_hash_is_not_the_routers():
    """Units the Router sends to the candidate are kept as often as the others."""
    from producers.router import to_candidate

    units = [f"u{i}" for i in range(20_000)]
    kept = [u for u in units if unit_hash(u) < 1 << (BITS - 2)]  # a quarter
    share = sum(to_candidate("kai", u, 50) for u in kept) / len(kept)
    assert abs(share - 0.5) < 0.02


class SetSample:
    """The reference: the sample's definition on a Python set."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.level, self.hashes = capacity, 0, set[int]()

    def raise_to(self, level: int) -> None:
        self.level = max(self.level, level)
        self.hashes = {h for h in self.hashes if h < 1 << (BITS - self.level)}
        while len(self.hashes) > self.capacity:
            self.raise_to(self.level + 1)

    def add(self, h: int) -> None:
        self.hashes.add(h)
        self.raise_to(self.level)


def test_adds_merges_and_raises_in_any_mix_match_the_set_definition():
    rng = random.Random(7)
    pool = hashes(3000)
    for capacity in (50, 500, 5000):
        sample, reference = UnitSample(capacity), SetSample(capacity)
        for _ in range(400):
            op = rng.random()
            if op < 0.6:
                h = rng.choice(pool)
                sample.add(h)
                reference.add(h)
            elif op < 0.95:
                part = rng.sample(pool, rng.randrange(1, 40))
                other = UnitSample(capacity, rng.choice([0, 0, 1, 2]), part)
                sample.merge(other)
                reference.raise_to(other.level)
                for h in part:
                    if h < other.bound:
                        reference.add(h)
            else:
                level = rng.randrange(4)
                sample.raise_to(level)
                reference.raise_to(level)
            if rng.random() < 0.2:  # reads fold the new hashes in; the others must not tell
                assert (sample.level, len(sample)) == (reference.level, len(reference.hashes))
        assert (sample.level, kept(sample)) == (reference.level, reference.hashes)
        assert list(sample.hashes) == sorted(reference.hashes)


def test_a_unit_costs_about_four_bytes():
    """200 windows of 300 units, each built from 60 small partials as stage 2 does:
    under 8 bytes a unit held (a Python set of fresh ints takes about 60)."""
    import tracemalloc

    pool = hashes(60_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    windows = []
    for w in range(200):
        window = UnitSample()
        for p in range(60):
            window.merge(
                UnitSample.from_state(UnitSample(hashes=pool[w * 300 + p * 5 :][:5]).to_state())
            )
        windows.append(window)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert sum(map(len, windows)) == 200 * 300
    assert held / (200 * 300) < 8  # about 5.2: 4 a hash, the rest the arrays' headers
