"""The unit sample: exact below its hash bound, bounded, and mergeable in any order."""

from __future__ import annotations

import random

from schemas.internal import Partial, WindowStatsState
from streams.units import BITS, UnitSample, unit_hash
from streams.windows import PartitionAccumulator, RolloutView
from tests.streams.conftest import make_result


def hashes(n: int, prefix: str = "u") -> list[int]:
    return [unit_hash(f"{prefix}{i}") for i in range(n)]


def test_below_capacity_every_unit_is_kept_once():
    sample = UnitSample(capacity=100)
    for h in hashes(50) * 3:
        sample.add(h)
    assert sample.level == 0 and len(sample) == 50


def test_over_capacity_it_keeps_exactly_the_units_below_a_bound():
    all_units = hashes(1000)
    sample = UnitSample(capacity=100, hashes=all_units)
    assert len(sample) <= 100 and sample.level >= 3
    assert sample.hashes == {h for h in all_units if h < 1 << (BITS - sample.level)}


def test_merging_in_any_order_gives_the_sample_of_the_union():
    parts = [hashes(300, p) for p in "abcd"] + [hashes(300, "a")]  # "a" twice: a replay
    samples = [UnitSample(capacity=200, hashes=p) for p in parts]
    one = UnitSample(capacity=200, hashes=[h for p in parts for h in p])
    for seed in range(5):
        random.Random(seed).shuffle(samples)
        merged = UnitSample(capacity=200)
        for s in samples:
            merged.merge(UnitSample(capacity=200, level=s.level, hashes=s.hashes))
        assert (merged.level, merged.hashes) == (one.level, one.hashes)


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
    assert view.units("production", start, 0).hashes == set(hashes(10))  # type: ignore[union-attr]
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
