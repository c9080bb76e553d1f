"""Stage 1's coarse latency bins come from the sketch's own keys: one logarithm a value."""

from __future__ import annotations

import numpy as np

from streams import slow
from streams.sketch import LatencySketch, mapping


def edges() -> list[float]:
    """Every sketch bucket's edge from 0.01 ms to 10 min, and the floats either side."""
    layout = mapping()
    out = []
    for key in range(-250, 1400):
        edge = layout._pow_gamma(key - layout._offset)
        out += [edge, float(np.nextafter(edge, 0.0)), float(np.nextafter(edge, np.inf))]
    return out


def values() -> list[float]:
    """Zeros, random latencies and values exactly at (and next to) bucket edges, where two
    float paths to a bin could part."""
    rng = np.random.default_rng(5)
    return [0.0, 1e-12, 5e-324, *rng.lognormal(5.0, 2.0, 20_000).tolist(), *edges()]


def test_a_batchs_keys_are_ddsketchs_own():
    layout, batch = mapping(), values()
    keys = LatencySketch().update_many(batch)
    assert keys == [layout.key(v) if v > layout.min_possible else None for v in batch]


def test_the_bins_of_a_batch_are_each_latencys_bin_of():
    batch, sketch = values(), LatencySketch()
    assert slow.bins(sketch.update_many(batch)) == [slow.bin_of(v) for v in batch]
    assert sketch.count == len(batch)


def test_a_coarse_bin_holds_step_sketch_bins():
    keys = [-slow.STEP, 1 - slow.STEP, 0, 1, slow.STEP, slow.STEP + 1, None]
    assert slow.bins(keys) == [-1, 0, 0, 1, 1, 2, slow.ZERO]
