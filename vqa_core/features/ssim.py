"""SSIM per plane, computed as libvmaf's ``float_ssim`` feature computes it.

Algorithm (the IQA-library SSIM that libvmaf's ``float_ssim`` uses), for one
plane:

1. Samples become float32 on an 8-bit scale: ``v / 2^(b-8)`` for bit depth
   ``b`` (libvmaf does the same for 10, 12 and 16 bits).
2. Scale factor ``f = max(1, round_half_up(min(w, h) / 256))``.  If ``f > 1``
   both images are low-passed with an ``f x f`` box of weights
   ``float32(1/f^2)`` and decimated: output pixel ``(x, y)`` is the filter
   applied at input ``(f*x, f*y)``, taps at offsets ``-f//2 .. f-1-f//2``, with
   mirrored borders (``-1 -> 0``, ``w -> w-1``); the output size is
   ``w//f + (w & 1)`` by ``h//f + (h & 1)``.
3. Local statistics with the 11x11 Gaussian window (sigma 1.5) applied
   separably with libvmaf's rounded float taps, on the "valid" region only
   (no padding: the SSIM map is ``(w-10) x (h-10)``).  Each pass accumulates
   float32 products in float64 and stores float32, as libvmaf does.
4. Per pixel, with ``C1 = (0.01*255)^2``, ``C2 = (0.03*255)^2``, ``C3 = C2/2``
   and variances clamped at 0: ``l = (2 mu1 mu2 + C1)/(mu1^2 + mu2^2 + C1)``,
   ``c = (2 s1 s2 + C2)/(s1^2 + s2^2 + C2)``, ``s = (s12 + C3)/(s1 s2 + C3)``
   (``s12`` set to 0 when negative on a flat window, libvmaf's fix), and the
   plane's SSIM is the mean of ``l*c*s`` over the map, rounded to float32.

The same algorithm runs on the U and V planes (each with the scale factor from
its own size) for ``ssim_u`` and ``ssim_v``.  ``ssim`` is ffmpeg's "All"
combination: ``sum_p ssim_p * n_p / sum_p n_p`` with ``n_p`` the plane's pixel
count (4:2:0: weights 4/6, 1/6, 1/6).  For the luma-only format "400" only
``ssim_y`` and ``ssim`` (== ssim_y) are given.  A plane whose (decimated) size
is below 11 in either direction has no SSIM map: its value is NaN.

The helpers here (decimation, the SSIM core returning the l/c/s means) are
shared with :mod:`vqa_core.features.ms_ssim`.
"""
from __future__ import annotations

import numpy as np
from ._jit import njit

from ._par import KERNEL_THREADS
from .base import FeatureExtractor, FrameFormat
from .registry import register

#: separable 11-tap Gaussian window (sigma 1.5) with libvmaf's float taps
GAUSS = np.array([0.001028, 0.007599, 0.036001, 0.109361, 0.213006, 0.266012,
                  0.213006, 0.109361, 0.036001, 0.007599, 0.001028], dtype=np.float32)
WIN = 11

_K1 = np.float32(0.01)
_K2 = np.float32(0.03)
_L = np.float32(255)
C1 = np.float32(np.float32(_K1 * _L) * np.float32(_K1 * _L))
C2 = np.float32(np.float32(_K2 * _L) * np.float32(_K2 * _L))
C3 = np.float32(C2 / np.float32(2.0))


def scale_factor(w: int, h: int) -> int:
    """libvmaf's automatic SSIM downscale factor: max(1, round(min(w,h)/256))."""
    a = float(np.float32(min(w, h)) / np.float32(256.0))
    n = int(a)
    return max(1, n + 1 if a - n >= 0.5 else n)


def decimated_size(w: int, h: int, f: int):
    """Size after decimation by f: (w//f + (w&1), h//f + (h&1))."""
    return w // f + (w & 1), h // f + (h & 1)


def sample_scaler(bitdepth: int) -> np.float32:
    """Divisor that brings samples to an 8-bit scale."""
    return np.float32(1 << (bitdepth - 8))


@njit(cache=True, nogil=True, inline="always")
def _mirror(i, n):
    if i < 0:
        return -1 - i
    if i >= n:
        return 2 * n - 1 - i
    return i


@njit(cache=True, nogil=True, error_model="numpy")
def decimate_box(src, scaler, f, out, col):
    """Box low-pass (f x f, weights float32(1/f^2)) and decimate by f.

    ``src``: integer (or float) plane; samples are taken as float32(v)/scaler
    (``scaler`` a power of two, so this is a multiplication by its inverse).
    ``out``: float32 array of the decimated size (see :func:`decimated_size`).
    ``col``: float64 scratch of at least ``src``'s width (one row of column
    sums; see _par on scratch).
    Products are float32 and are summed in float64 as libvmaf does.  Those
    sums are exact (every product is a multiple of a power of two >= 2^-40
    and the total is < 2^9), so the order of summation does not matter and
    the taps are summed by columns first.
    """
    h, w = src.shape
    sh, sw = out.shape
    kv = np.float32(1.0) / np.float32(f * f)
    inv = np.float32(1.0) / scaler
    lo = -(f // 2)
    hi = f - 1 - f // 2
    for y in range(sh):
        for c in range(w):
            col[c] = 0.0
        for v in range(lo, hi + 1):
            row = src[_mirror(y * f + v, h)]
            for c in range(w):
                col[c] += np.float32(np.float32(np.float32(row[c]) * inv) * kv)
        for x in range(sw):
            acc = 0.0
            for u in range(lo, hi + 1):
                acc += col[_mirror(x * f + u, w)]
            out[y, x] = np.float32(acc)


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _fsum(a):
    """Sum of a float64 vector (any order: the result is rounded to float32)."""
    t = 0.0
    for i in range(a.shape[0]):
        t += a[i]
    return t


@njit(cache=True, nogil=True, inline="always")
def _taps11(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, o, g, out):
    """out[x] = sum_t float32(r_t[x + t*o] ... ) * g[t]: the 11-tap filter.

    Each product is float32; they are summed in float64 in tap order, as
    libvmaf does, and the sum is stored as float32.  ``o`` is 1 for a
    horizontal pass over one row (all r_t the same row), 0 for a vertical
    pass over 11 rows."""
    g0 = g[0]
    g1 = g[1]
    g2 = g[2]
    g3 = g[3]
    g4 = g[4]
    g5 = g[5]
    g6 = g[6]
    g7 = g[7]
    g8 = g[8]
    g9 = g[9]
    g10 = g[10]
    for x in range(out.shape[0]):
        s = np.float64(r0[x] * g0)
        s += r1[x + o] * g1
        s += r2[x + 2 * o] * g2
        s += r3[x + 3 * o] * g3
        s += r4[x + 4 * o] * g4
        s += r5[x + 5 * o] * g5
        s += r6[x + 6 * o] * g6
        s += r7[x + 7 * o] * g7
        s += r8[x + 8 * o] * g8
        s += r9[x + 9 * o] * g9
        s += r10[x + 10 * o] * g10
        out[x] = np.float32(s)


@njit(cache=True, nogil=True, inline="always")
def _hrow(ref, cmp, y, inv, g, tmp, ring, slot):
    """Horizontal Gaussian pass of row y of ref, cmp, ref^2, cmp^2, ref*cmp
    into ring[:, slot]."""
    w = ref.shape[1]
    rr = ref[y]
    cr = cmp[y]
    for x in range(w):
        pa = np.float32(rr[x]) * inv
        pb = np.float32(cr[x]) * inv
        tmp[0, x] = pa
        tmp[1, x] = pb
        tmp[2, x] = pa * pa
        tmp[3, x] = pb * pb
        tmp[4, x] = pa * pb
    for q in range(5):
        t = tmp[q]
        _taps11(t, t, t, t, t, t, t, t, t, t, t, 1, g, ring[q, slot])


@njit(cache=True, nogil=True, error_model="numpy")
def ssim_rows(ref, cmp, scaler, g, c1, c2, c3, rings, tmps, sts, ress, rowsums):
    """SSIM map of two equal-size planes, reduced per map row.

    The 11x11 window is applied separably on the valid region; the map is
    (h-10) x (w-10).  ``rowsums`` (float64, (h-10, 4)) receives per map row
    the sums of l*c*s, l, c and s.  Rows are split into one band per scratch
    slot (``rings.shape[0]``); each band keeps its last 11 horizontally
    filtered rows in a ring buffer.  Scratch: rings float32 (n, 5, 11, w-10),
    tmps float32 (n, 5, w), sts float32 (n, 5, w-10), ress float64 (n, 4, w-10).
    """
    h, w = ref.shape
    k = 11
    dw = w - k + 1
    dh = h - k + 1
    inv = np.float32(1.0) / scaler
    zero = np.float32(0.0)
    nchunks = rings.shape[0]
    for ci in range(nchunks):
        y0 = ci * dh // nchunks
        y1 = (ci + 1) * dh // nchunks
        if y1 <= y0:
            continue
        ring = rings[ci]
        tmp = tmps[ci]
        st = sts[ci]
        res = ress[ci]
        for r in range(y0, y0 + k - 1):
            _hrow(ref, cmp, r, inv, g, tmp, ring, r % k)
        for y in range(y0, y1):
            _hrow(ref, cmp, y + k - 1, inv, g, tmp, ring, (y + k - 1) % k)
            for q in range(5):
                rq = ring[q]
                _taps11(rq[y % k], rq[(y + 1) % k], rq[(y + 2) % k], rq[(y + 3) % k],
                        rq[(y + 4) % k], rq[(y + 5) % k], rq[(y + 6) % k],
                        rq[(y + 7) % k], rq[(y + 8) % k], rq[(y + 9) % k],
                        rq[(y + 10) % k], 0, g, st[q])
            s0 = st[0]
            s1 = st[1]
            s2 = st[2]
            s3 = st[3]
            s4 = st[4]
            for x in range(dw):
                mu1 = s0[x]
                mu2 = s1[x]
                var1 = max(s2[x] - mu1 * mu1, zero)
                var2 = max(s3[x] - mu2 * mu2, zero)
                cov = s4[x] - mu1 * mu2
                sd12 = np.float32(np.sqrt(np.float64(var1 * var2)))
                lv = (2.0 * mu1 * mu2 + c1) / ((mu1 * mu1 + mu2 * mu2) + c1)
                cv = (2.0 * sd12 + c2) / ((var1 + var2) + c2)
                # libvmaf: a flat window of identical content gives s = 1
                cov = zero if (cov < zero) & (sd12 <= zero) else cov
                sv = np.float64((cov + c3) / (sd12 + c3))
                res[0, x] = lv * cv * sv
                res[1, x] = lv
                res[2, x] = cv
                res[3, x] = sv
            for q in range(4):
                rowsums[y, q] = _fsum(res[q])


@njit(cache=True, nogil=True)
def _reduce(rowsums, n):
    t0 = 0.0
    t1 = 0.0
    t2 = 0.0
    t3 = 0.0
    for y in range(rowsums.shape[0]):
        t0 += rowsums[y, 0]
        t1 += rowsums[y, 1]
        t2 += rowsums[y, 2]
        t3 += rowsums[y, 3]
    return (np.float32(t0 / n), np.float32(t1 / n), np.float32(t2 / n),
            np.float32(t3 / n))


class SsimPlan:
    """Scratch buffers for SSIM of one plane size (after any decimation)."""

    def __init__(self, w: int, h: int):
        self.w, self.h = w, h
        self.valid = w >= WIN and h >= WIN
        dw, dh = max(w - WIN + 1, 0), max(h - WIN + 1, 0)
        self.rowsums = np.empty((dh, 4), np.float64)
        self.n = float(dw * dh)
        # one band per kernel thread (each band filters 10 extra rows), >= 16 rows each
        n = max(1, min(dh // 16, KERNEL_THREADS))
        self.rings = np.empty((n, 5, WIN, dw), np.float32)
        self.tmps = np.empty((n, 5, w), np.float32)
        self.sts = np.empty((n, 5, dw), np.float32)
        self.ress = np.empty((n, 4, dw), np.float64)

    def run(self, ref, cmp, scaler):
        """(ssim, l, c, s) means, float32, of two equal-size planes."""
        if not self.valid:
            nan = float("nan")
            return nan, nan, nan, nan
        ssim_rows(ref, cmp, scaler, GAUSS, C1, C2, C3, self.rings, self.tmps, self.sts,
                  self.ress, self.rowsums)
        return _reduce(self.rowsums, self.n)


class PlaneSsim:
    """float_ssim of one plane size: optional box decimation, then SSIM."""

    def __init__(self, w: int, h: int, bitdepth: int, scale: int = 0):
        self.f = scale if scale > 0 else scale_factor(w, h)
        self.scaler = sample_scaler(bitdepth)
        if self.f > 1:
            sw, sh = decimated_size(w, h, self.f)
            self.dref = np.empty((sh, sw), np.float32)
            self.ddis = np.empty((sh, sw), np.float32)
            self.dcol = np.empty(w, np.float64)
            self.plan = SsimPlan(sw, sh)
        else:
            self.plan = SsimPlan(w, h)

    def __call__(self, ref, dis) -> float:
        if self.f > 1:
            decimate_box(ref, self.scaler, self.f, self.dref, self.dcol)
            decimate_box(dis, self.scaler, self.f, self.ddis, self.dcol)
            return float(self.plan.run(self.dref, self.ddis, np.float32(1.0))[0])
        return float(self.plan.run(ref, dis, self.scaler)[0])


@register
class SSIM(FeatureExtractor):
    name = "ssim"
    provides = ("ssim_y", "ssim_u", "ssim_v", "ssim")

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        shapes = fmt.plane_shapes()
        self._planes = [PlaneSsim(c, r, fmt.bitdepth) for r, c in shapes]
        self._weights = fmt.plane_weights()
        self._names = ("ssim_y", "ssim_u", "ssim_v")[:fmt.nplanes]

    def extract(self, index, ref, dis):
        vals = {}
        allv = 0.0
        for p, name in enumerate(self._names):
            v = self._planes[p](ref[p], dis[p])
            vals[name] = v
            allv += v * self._weights[p]
        vals["ssim"] = allv
        return [(index, vals)]
