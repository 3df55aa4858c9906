"""MS-SSIM of the luma plane, computed as libvmaf's ``float_ms_ssim`` does.

Algorithm (Wang's multi-scale SSIM as in the IQA library that libvmaf uses):

1. Luma samples become float32 on an 8-bit scale (``v / 2^(b-8)``).
2. Five scales.  Scale ``i+1`` is scale ``i`` low-passed with the 9x9
   biorthogonal 9/7 filter (libvmaf's rounded 2-D float table, applied as a
   full 2-D kernel with mirrored borders) and decimated by 2: output pixel
   ``(x, y)`` is the filter centred on ``(2x, 2y)``; the size becomes
   ``w//2 + (w&1)`` by ``h//2 + (h&1)``.
3. At each scale, the SSIM of :mod:`vqa_core.features.ssim` (11x11 Gaussian,
   valid region, no further downscaling) gives the means ``l``, ``c``, ``s``
   of the luminance, contrast and structure terms (float32).
4. ``ms_ssim = prod_i l_i^a_i * c_i^b_i * s_i^g_i`` with
   ``a = (0, 0, 0, 0, 0.1333)``, ``b = g = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``.

libvmaf refuses frames where ``w >> 4`` or ``h >> 4`` (the coarsest scale) is
below 11, i.e. smaller than 176 pixels in either direction; vqa reports NaN for
them.
"""
from __future__ import annotations

import math

import numpy as np
from ._jit import njit

from .base import FeatureExtractor, FrameFormat
from .registry import register
from .ssim import SsimPlan, WIN, _mirror, sample_scaler

SCALES = 5
LPF_LEN = 9
#: 9x9 low-pass (9/7 biorthogonal wavelet) with libvmaf's rounded float taps
LPF = np.array([
    [0.000714, -0.000450, -0.002090, 0.007132, 0.016114, 0.007132, -0.002090, -0.000450, 0.000714],
    [-0.000450, 0.000283, 0.001316, -0.004490, -0.010146, -0.004490, 0.001316, 0.000283, -0.000450],
    [-0.002090, 0.001316, 0.006115, -0.020867, -0.047149, -0.020867, 0.006115, 0.001316, -0.002090],
    [0.007132, -0.004490, -0.020867, 0.071207, 0.160885, 0.071207, -0.020867, -0.004490, 0.007132],
    [0.016114, -0.010146, -0.047149, 0.160885, 0.363505, 0.160885, -0.047149, -0.010146, 0.016114],
    [0.007132, -0.004490, -0.020867, 0.071207, 0.160885, 0.071207, -0.020867, -0.004490, 0.007132],
    [-0.002090, 0.001316, 0.006115, -0.020867, -0.047149, -0.020867, 0.006115, 0.001316, -0.002090],
    [-0.000450, 0.000283, 0.001316, -0.004490, -0.010146, -0.004490, 0.001316, 0.000283, -0.000450],
    [0.000714, -0.000450, -0.002090, 0.007132, 0.016114, 0.007132, -0.002090, -0.000450, 0.000714],
], dtype=np.float32)
ALPHAS = np.array([0.0, 0.0, 0.0, 0.0, 0.1333], dtype=np.float32)
BETAS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333], dtype=np.float32)
GAMMAS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333], dtype=np.float32)


@njit(cache=True, nogil=True, error_model="numpy")
def split_pad(src, inv, even, odd):
    """Mirror-pad each row by 4 and split it into even and odd columns.

    With ``P[i] = float32(src[r, mirror(i - 4)]) * inv``, ``even[r, j] = P[2j]``
    and ``odd[r, j] = P[2j + 1]``; so the decimating filter reads contiguous
    memory."""
    h, w = src.shape
    ne = even.shape[1]
    no = odd.shape[1]
    half = LPF_LEN // 2
    # j with 2j - half (even) / 2j + 1 - half (odd) inside [0, w)
    ea = (half + 1) // 2
    eb = min(ne, (w - 1 + half) // 2 + 1)
    oa = half // 2
    ob = min(no, (w - 2 + half) // 2 + 1)
    for r in range(h):
        row = src[r]
        for j in range(ea):
            even[r, j] = np.float32(row[_mirror(2 * j - half, w)]) * inv
        for j in range(ea, eb):
            even[r, j] = np.float32(row[2 * j - half]) * inv
        for j in range(max(ea, eb), ne):
            even[r, j] = np.float32(row[_mirror(2 * j - half, w)]) * inv
        for j in range(oa):
            odd[r, j] = np.float32(row[_mirror(2 * j + 1 - half, w)]) * inv
        for j in range(oa, ob):
            odd[r, j] = np.float32(row[2 * j + 1 - half]) * inv
        for j in range(max(oa, ob), no):
            odd[r, j] = np.float32(row[_mirror(2 * j + 1 - half, w)]) * inv


@njit(cache=True, nogil=True, error_model="numpy")
def decimate_lpf(even, odd, k, out, acc):
    """9x9 low-pass at every other pixel of the image held in (even, odd).

    Products are float32, summed in float64 in libvmaf's order (tap rows
    outer, columns inner), and stored float32.  ``acc``: float64 scratch of
    at least the output's width (one output row's sums; see _par on
    scratch)."""
    h = even.shape[0]
    sh, sw = out.shape
    for y in range(sh):
        for x in range(sw):
            acc[x] = 0.0
        for v in range(LPF_LEN):
            r = _mirror(2 * y + v - LPF_LEN // 2, h)
            e = even[r]
            o = odd[r]
            k0 = k[v, 0]
            k1 = k[v, 1]
            k2 = k[v, 2]
            k3 = k[v, 3]
            k4 = k[v, 4]
            k5 = k[v, 5]
            k6 = k[v, 6]
            k7 = k[v, 7]
            k8 = k[v, 8]
            for x in range(sw):
                s = acc[x]
                s += e[x] * k0
                s += o[x] * k1
                s += e[x + 1] * k2
                s += o[x + 1] * k3
                s += e[x + 2] * k4
                s += o[x + 2] * k5
                s += e[x + 3] * k6
                s += o[x + 3] * k7
                s += e[x + 4] * k8
                acc[x] = s
        for x in range(sw):
            out[y, x] = np.float32(acc[x])


def scale_sizes(w: int, h: int):
    sizes = [(w, h)]
    for _ in range(SCALES - 1):
        w, h = w // 2 + (w & 1), h // 2 + (h & 1)
        sizes.append((w, h))
    return sizes


def supported(w: int, h: int) -> bool:
    """libvmaf's check: every scale of plain halving is at least 11x11."""
    return (w >> (SCALES - 1)) >= WIN and (h >> (SCALES - 1)) >= WIN


class MsSsimPlan:
    """Scratch buffers and the per-frame driver for one luma size."""

    def __init__(self, w: int, h: int, bitdepth: int):
        self.ok = supported(w, h)
        self.scaler = sample_scaler(bitdepth)
        self.sizes = scale_sizes(w, h)
        self.plans = [SsimPlan(sw, sh) for sw, sh in self.sizes]
        # decimated images of scales 1..4 (ref, dis)
        self.imgs = [(np.empty((sh, sw), np.float32), np.empty((sh, sw), np.float32))
                     for sw, sh in self.sizes[1:]]
        # padded even/odd split of scales 0..3
        self.split = []
        for sw, sh in self.sizes[:-1]:
            ne, no = (sw + 9) // 2, (sw + 8) // 2
            self.split.append((np.empty((sh, ne), np.float32), np.empty((sh, no), np.float32)))
        self.lpf_acc = np.empty(max(1, self.sizes[0][0]), np.float64)

    def scales(self, ref, dis):
        """Per scale (l, c, s) means, float32, as libvmaf computes them."""
        out = []
        cur_r, cur_d, scaler = ref, dis, self.scaler
        one = np.float32(1.0)
        for i in range(SCALES):
            _, l, c, s = self.plans[i].run(cur_r, cur_d, scaler)
            out.append((l, c, s))
            if i + 1 < SCALES:
                ev, od = self.split[i]
                nr, nd = self.imgs[i]
                inv = one / scaler
                split_pad(cur_r, inv, ev, od)
                decimate_lpf(ev, od, LPF, nr, self.lpf_acc)
                split_pad(cur_d, inv, ev, od)
                decimate_lpf(ev, od, LPF, nd, self.lpf_acc)
                cur_r, cur_d, scaler = nr, nd, one
        return out

    def __call__(self, ref, dis) -> float:
        if not self.ok:
            return float("nan")
        msssim = 1.0
        for i, (l, c, s) in enumerate(self.scales(ref, dis)):
            msssim *= (_pow(l, ALPHAS[i]) * _pow(c, BETAS[i])) * _pow(s, GAMMAS[i])
        return msssim


def _pow(x, e) -> float:
    # C pow() of two doubles (x, e are float32 values)
    try:
        return math.pow(float(x), float(e))
    except ValueError:  # negative base, fractional exponent
        return float("nan")


@register
class MSSSIM(FeatureExtractor):
    name = "ms_ssim"
    reads_chroma = False  # the luma planes only
    provides = ("ms_ssim",)

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        self._plan = MsSsimPlan(fmt.width, fmt.height, fmt.bitdepth)

    def extract(self, index, ref, dis):
        return [(index, {"ms_ssim": self._plan(ref[0], dis[0])})]
