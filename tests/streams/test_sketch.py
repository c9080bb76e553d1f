"""Latency quantiles: within the stated 1% of numpy's on random data, through a merge and
the portable state alike."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from ddsketch import DDSketch

from streams.sketch import RELATIVE_ACCURACY, LatencySketch, bin_key

QUANTILES = (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)


def latencies(seed: int, n: int = 5000) -> np.ndarray:
    """Heavy-tailed response times in ms, some of them 0 (answered from a cache)."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(mean=5.0, sigma=1.0, size=n)
    values[rng.random(n) < 0.02] = 0.0
    return values


def sketch_of(values: np.ndarray) -> LatencySketch:
    sketch = LatencySketch()
    for v in values:
        sketch.update(float(v))
    return sketch


def assert_within_accuracy(sketch: LatencySketch, values: np.ndarray) -> None:
    assert sketch.count == len(values)
    for q in QUANTILES:
        exact = float(np.quantile(values, q, method="lower"))  # the rank the sketch reads
        assert sketch.quantile(q) == pytest.approx(exact, rel=RELATIVE_ACCURACY, abs=1e-9), q


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_are_within_one_percent_of_numpy(seed):
    values = latencies(seed)
    assert_within_accuracy(sketch_of(values), values)


@pytest.mark.parametrize("seed", range(3))
def test_merged_partitions_keep_the_accuracy(seed):
    values = latencies(seed)
    merged = LatencySketch()  # empty: the first merge copies the other sketch
    for part in np.array_split(values, 4):
        merged.merge(sketch_of(part))
    assert_within_accuracy(merged, values)
    merged.update(100_000.0)  # its buckets, quantiles and state stay one sketch
    assert merged.quantile(1.0) == pytest.approx(100_000.0, rel=RELATIVE_ACCURACY)
    assert merged.count_above(90_000.0) == 1
    restored = LatencySketch.from_state(merged.to_state())
    assert restored.quantile(1.0) == pytest.approx(100_000.0, rel=RELATIVE_ACCURACY)


def test_the_portable_state_keeps_every_bucket_and_the_zeros():
    values = latencies(7)
    sketch = sketch_of(values)
    state = sketch.to_state()
    assert state.zero_count == np.sum(values == 0.0) > 0
    restored = LatencySketch.from_state(state)
    assert restored.to_state() == state
    assert_within_accuracy(restored, values)
    assert restored.count_above(300.0) == sketch.count_above(300.0)
    restored.update(5.0)
    assert restored.count == len(values) + 1


def test_count_above_is_within_the_buckets_accuracy():
    values = latencies(3)
    sketch = sketch_of(values)
    for limit in (50.0, 150.0, 400.0):
        low, high = np.sum(values > limit * 1.02), np.sum(values > limit / 1.02)
        assert low <= sketch.count_above(limit) <= high
    assert sketch.count_above(-1.0) == len(values)


def test_quantiles_in_one_pass_equal_ddsketchs_own_answer():
    values = latencies(5)
    sketch = sketch_of(values)
    levels = [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0]
    reference = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    for v in values:
        reference.add(float(v))
    assert sketch.quantiles(levels) == [reference.get_quantile_value(q) for q in levels]


def test_an_empty_sketch_has_no_quantile():
    assert LatencySketch().quantile(0.5) is None
    assert LatencySketch.from_state(LatencySketch().to_state()).count == 0


def test_a_batch_lands_in_the_buckets_of_ddsketchs_own_add():
    values = latencies(11).tolist()
    sketch, reference = LatencySketch(), DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    sketch.update_many(values[:2000])
    sketch.update_many(values[2000:])
    for v in values:
        reference.add(v)
    levels = [0.0, 0.01, 0.3, 0.5, 0.9, 0.99, 1.0]
    assert sketch.quantiles(levels) == [reference.get_quantile_value(q) for q in levels]
    assert sketch.count == reference.count and sketch.to_state() == sketch_of(values).to_state()


def test_merges_and_counts_above_equal_ddsketchs_own():
    values = latencies(13)
    parts = np.array_split(values, 5)
    merged, reference = LatencySketch(), DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    for part in parts[::-1]:  # ranges growing both ways
        merged.merge(sketch_of(part))
        other = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        for v in part:
            other.add(float(v))
        reference.merge(other)
    levels = [0.0, 0.02, 0.25, 0.5, 0.9, 0.999, 1.0]
    assert merged.quantiles(levels) == [reference.get_quantile_value(q) for q in levels]
    store, mapping = reference._store, reference._mapping
    for limit in (1.0, 150.0, 10_000.0):
        above = sum(c for i, c in enumerate(store.bins) if i + store.offset > mapping.key(limit))
        assert merged.count_above(limit) == above
    assert merged.count_above(0.0) == store.count  # the zeros are not above 0
    assert merged.count == reference.count


def held(make: Callable[[], object]) -> int:
    """The bytes still allocated by ``make``'s result."""
    tracemalloc.start()
    kept = make()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert kept is not None
    return size


def test_a_windows_sketch_takes_under_40_percent_of_ddsketchs_memory():
    """Its buckets are one float64 array (ddsketch: a list of Python floats, 32 bytes a
    bucket) and the mapping is shared."""
    values = latencies(3, n=1000).tolist()

    def reference() -> DDSketch:
        sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        for v in values:
            sketch.add(v)
        return sketch

    def ours() -> LatencySketch:
        sketch = LatencySketch()
        sketch.update_many(values)
        return sketch

    ours(), reference()  # the shared mapping and the caches of a first call, made once
    many = 50  # held by many windows: an allocation made once (a cache, a resize) is noise
    assert held(lambda: [ours() for _ in range(many)]) < 0.4 * held(
        lambda: [reference() for _ in range(many)]
    )


def test_a_latencys_bin_key_is_its_bucket_in_the_sketch():
    mapping = DDSketch(relative_accuracy=RELATIVE_ACCURACY)._mapping
    for value in latencies(17, n=200)[latencies(17, n=200) > 0]:
        sketch = LatencySketch()
        sketch.update(float(value))
        assert sketch.bins()["key"].tolist() == [bin_key(value)] == [mapping.key(value)]
    assert bin_key(0.0) is None
