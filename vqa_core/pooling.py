"""Pooling of per-frame scores into one summary per metric."""
from __future__ import annotations

import math
from typing import Dict, Iterable

import numpy as np

POOL_METHODS = ("mean", "harmonic_mean", "min", "max", "p1", "p5", "p50")


def harmonic_mean(values: np.ndarray) -> float:
    """libvmaf's harmonic mean: 1 / mean(1 / (x + 1)) - 1 (defined for x > -1)."""
    return float(1.0 / np.mean(1.0 / (values + 1.0)) - 1.0)


def percentiles(values: np.ndarray, qs) -> np.ndarray:
    """``np.percentile(values, qs)`` (linear interpolation between the
    nearest ranks), computed as NumPy 2 does it, to the bit, for a 1-D array
    of finite float64 values.

    NumPy's own goes through ``np.unique``, whose first call imports
    numpy.ma (15 ms at the end of every run, for the summary)."""
    s = np.sort(values)
    n = s.size
    virtual = (n - 1) * np.true_divide(np.asarray(qs, dtype=np.float64), 100)
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    prev[virtual < 0] = 0
    nxt[virtual < 0] = 0
    prev = prev.astype(np.intp)
    nxt = nxt.astype(np.intp)
    gamma = virtual - prev
    a = s[prev]
    b = s[nxt]
    diff = b - a
    out = a + diff * gamma
    hi = gamma >= 0.5
    out[hi] = (b - diff * (1 - gamma))[hi]
    return out


def pool(values: Iterable[float]) -> Dict[str, float]:
    """mean, harmonic_mean, min, max and the 1st, 5th and 50th percentiles.

    Percentiles use linear interpolation between the nearest ranks (numpy's
    default).  Non-finite values are skipped; an empty input gives NaNs.
    """
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {k: math.nan for k in POOL_METHODS}
    out = {
        "mean": float(v.mean()),
        "harmonic_mean": harmonic_mean(v) if np.all(v > -1) else math.nan,
        "min": float(v.min()),
        "max": float(v.max()),
    }
    p1, p5, p50 = percentiles(v, [1, 5, 50])
    out.update(p1=float(p1), p5=float(p5), p50=float(p50))
    return out
