"""Pooling of per-frame scores: vqa's percentiles are NumPy's, to the bit."""
import math

import numpy as np

from vqa_core.pooling import percentiles, pool


def test_percentiles_are_numpys_to_the_bit():
    rng = np.random.default_rng(0)
    qs = [1, 5, 50, 0, 100, 2.5, 97.5, 33.3, 99.9]
    for n in list(range(1, 130)) + [997, 1000, 4096]:
        for v in (rng.random(n) * 100, rng.integers(0, 5, n) * 17.3,
                  rng.standard_normal(n) * 1e6, np.full(n, 42.0)):
            got = percentiles(v, qs)
            want = np.percentile(v, qs)
            assert np.array_equal(got, want), (n, got - want)


def test_pool_skips_non_finite_and_handles_empty():
    p = pool([1.0, None, math.nan, 3.0, math.inf, 2.0])
    assert p["min"] == 1.0 and p["max"] == 3.0 and p["p50"] == 2.0
    assert p["p1"] == np.percentile([1.0, 3.0, 2.0], 1)
    assert all(math.isnan(x) for x in pool([]).values())
