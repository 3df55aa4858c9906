"""PSNR of the Y, U and V planes, and their size-weighted average.

For each plane, at the frame's own bit depth ``b``::

    mse  = sum((ref - dis)^2) / (rows * cols)
    psnr = 10 * log10(peak^2 / mse),     peak = 2^b - 1

which is what ffmpeg's ``psnr`` filter reports as ``psnr.y/u/v``.  ``psnr_avg``
is ffmpeg's ``psnr_avg``: the PSNR of the size-weighted mean of the planes'
MSEs, ``mse_avg = sum_p mse_p * n_p / sum_p n_p`` with ``n_p`` the plane's pixel
count (4:2:0 weights 4/6, 1/6, 1/6), with the same peak.

Cap.  ffmpeg reports ``inf`` for identical planes.  vqa follows libvmaf's
``psnr`` feature instead and clamps every value (Y, U, V and avg) to the finite
maximum ``psnr_max = 6 * b + 12`` dB: 60 dB at 8 bits, 72 dB at 10 bits, 84 dB
at 12 bits.  Below the cap (any real encode) the values equal ffmpeg's; mse == 0
gives exactly ``psnr_max``.  The option ``psnr_max`` overrides the cap (a
number in dB, or ``None`` for the rule above).

For the luma-only format "400" only ``psnr_y`` and ``psnr_avg`` (== psnr_y) are
given.
"""
from __future__ import annotations

import math

import numpy as np
from ._jit import njit

from .base import FeatureExtractor, FrameFormat
from .registry import register


@njit(cache=True, nogil=True)
def sse_plane(ref, dis):
    """Sum of squared differences of two 2-D integer planes (int64)."""
    rows, cols = ref.shape
    total = np.int64(0)
    for i in range(rows):
        r = ref[i]
        d = dis[i]
        acc = np.int64(0)
        for j in range(cols):
            e = np.int64(r[j]) - np.int64(d[j])
            acc += e * e
        total += acc
    return total


def psnr_max_for(bitdepth: int) -> float:
    """libvmaf's cap for PSNR in dB: 6 * bitdepth + 12."""
    return float(6 * bitdepth + 12)


def mse_to_psnr(mse: float, peak: int, cap: float) -> float:
    if mse <= 0.0:
        return cap
    return min(10.0 * math.log10(float(peak) * peak / mse), cap)


@register
class PSNR(FeatureExtractor):
    name = "psnr"
    warm_size = (64, 64)  # calls the kernels any larger frame calls (tests/test_warmup.py)
    provides = ("psnr_y", "psnr_u", "psnr_v", "psnr_avg")
    default_options = {"psnr_max": None}

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        cap = self.options["psnr_max"]
        self._cap = psnr_max_for(fmt.bitdepth) if cap is None else float(cap)
        self._peak = fmt.peak
        self._npix = [r * c for r, c in fmt.plane_shapes()]
        self._weights = fmt.plane_weights()
        self._names = ("psnr_y", "psnr_u", "psnr_v")[:fmt.nplanes]

    def extract(self, index, ref, dis):
        vals = {}
        mse_avg = 0.0
        for p, name in enumerate(self._names):
            mse = int(sse_plane(ref[p], dis[p])) / self._npix[p]
            vals[name] = mse_to_psnr(mse, self._peak, self._cap)
            mse_avg += mse * self._weights[p]
        vals["psnr_avg"] = mse_to_psnr(mse_avg, self._peak, self._cap)
        return [(index, vals)]
