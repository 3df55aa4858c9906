"""SpEED-QA on the chroma planes, as libvmaf's ``speed_chroma`` feature.

Outputs: ``speed_chroma_u``, ``speed_chroma_v`` and ``speed_chroma_uv`` (the
VMAF v1.0.16 models use ``speed_chroma_uv``).  SpEED (spatial efficient
entropic differencing, Bampis, Gupta, Soundararajan, Bovik 2017) compares the
local entropies of the reference and distorted planes in a Gaussian scale
mixture model.  libvmaf's version, which vqa reproduces in float32 step by step
(its rounding included), for each chroma plane of the reference and of the
distorted frame:

1. **Samples.**  The chroma plane as float32, ``x / 2^(b-8) - 128`` at bit depth
   ``b``.  libvmaf works on ``floor(w / 2)`` x ``floor(h / 2)`` for 4:2:0
   (``floor(w / 2)`` x ``h`` for 4:2:2): for odd luma sizes the last chroma
   column/row is left out.
2. **Prescale** (``speed_prescale`` != 1): resize to ``int(w * p + 0.5)`` x
   ``int(h * p + 0.5)`` with ``speed_prescale_method`` (``nearest``,
   ``bilinear``, ``bicubic`` (a = -0.75) or ``lanczos4``; pixel-centre
   aligned, mirrored borders), as libvmaf's VIF prescaler.
3. **Anti-alias and decimate by 16.**  A separable Gaussian of
   ``vif_get_filter_size(1, ks)`` taps (9 for ``speed_kernelscale`` ks = 1)
   with sigma ``2 * taps / 5``; borders mirrored without repeating the edge
   (``-1 -> 1``, ``n -> n - 2``); then every 16th sample of every 16th row
   (``w >> 4`` x ``h >> 4``).  Only the decimated samples are computed.
4. **Local mean removal.**  Subtract a Gaussian-filtered copy
   (``vif_get_filter_size(4, ks)`` taps, 3 for ks = 1, sigma ``taps / 5``).
5. **GSM parameters** on the top-left ``5 * floor(w' / 5)`` x
   ``5 * floor(h' / 5)`` samples, in 5x5 blocks (``N = 25``):
   the 25x25 covariance matrix ``K`` of the 25 shifted sub-images of size
   ``(tw - 4) x (th - 4)`` (means in float32, products summed in double);
   its eigenvalues ``L`` (Householder tridiagonalisation and implicit-shift QR
   in float32, adapted from GSL's ``symmtd`` / ``symm``); per block the local
   variance ``s = y' K^-1 y / N`` (``y`` the block's 25 samples; the linear
   system solved by libvmaf's Householder QR in float32); per block the
   entropy ``E = sum_k log2(max(L_k, 0) * s + sigma_nn) + log2(2 pi e)``.
   When an eigenvalue is below 1e-6 (or a pivot of ``R`` is), ``K`` counts as
   singular: ``s = 0`` for every block and the plane is flagged.
6. **Score**: the mean over blocks of ``|E_r * log2(1 + v_r) - E_d * log2(1 +
   v_d)|``, where blocks with both entropies below ``N * (log2((1 + nn_floor)
   * sigma_nn) + log2(2 pi e))`` count 0 and the variance weights ``v_r``,
   ``v_d`` follow ``speed_weight_var_mode``: 0 own variances, 1 both the
   reference's, 2 both the distorted's, 3 both the mean, 4 reference own /
   distorted the mean, 5 reference own / distorted ``0.75 s_r + 0.25 s_d``,
   6 reference own / distorted ``0.25 s_r + 0.75 s_d``.  When exactly one of
   reference and distorted is singular the plane's score is 0.

``speed_chroma_uv`` is ``(u + v) / 2``; when only one of the planes is
singular it is the other plane's score.  Each output is capped at
``speed_max_val``.

Convolution rounding.  Every filter output is accumulated in float32 in tap
order, a rounded product added to a rounded sum (libvmaf's AVX2 convolution
and its C fallback agree on that; the bundled libvmaf does not fuse them into
FMAs, which would move the scores by about 1e-5).

Options (libvmaf's names, defaults and ranges; the aliases ``ks``, ``ps``,
``psm``, ``snn``, ``nnf``, ``mxv``, ``wvm`` are accepted too):
``speed_kernelscale`` (1.0, one of libvmaf's 21 VIF kernel scales),
``speed_prescale`` (1.0, 0.1..4), ``speed_prescale_method`` ("nearest"),
``speed_sigma_nn`` (0.29, 0.1..2), ``speed_nn_floor`` (0.0, 0..1),
``speed_max_val`` (1000, 0..1000), ``speed_weight_var_mode`` (0, 0..6).

Accuracy: the outputs equal libvmaf's to its printed 6 decimals (differences
at most 5e-7 on natural and x264/rescaled content, 8 to 16 bits, every option
set of the v1.0.16 models, all prescale methods, several kernel scales).

Limits.  The planes must be big enough for at least one 5x5 block after the
decimation by 16: chroma (after prescale) at least 80x80; libvmaf fails there
("image too small"), vqa raises ``ValueError``.  Luma-only
("400") input has no chroma: ``ValueError`` as in libvmaf.  At 9, 11, 13, 14
and 15 bits libvmaf's sample conversion mishandles the samples; vqa uses
``x / 2^(b-8) - 128`` for every depth (libvmaf's values at 8, 10, 12, 16).

libvmaf also has ``speed_temporal`` (SpEED on the luma difference of
consecutive frames); no shipped model uses it and vqa does not provide it.
"""
from __future__ import annotations

import math

import numpy as np
from ._jit import njit

from .base import FeatureExtractor, FrameFormat
from .registry import register

_F32 = np.float32
_LOG2_2PIE = math.log2(2 * math.pi * math.e)
_EPS = 1e-6
_MAX_ITERS = 500
_B = 5  # block size
_NB = _B * _B
_NP = 32  # a row of covariance_matrix's work arrays: _NB padded to whole vectors
_NUM_SCALES = 4

_VALID_KERNELSCALES = tuple(_F32(v) for v in (
    1.0, 1.0 / 2.0, 3.0 / 2.0, 2.0, 2.0 / 3.0, 24.0 / 10.0, 360.0 / 97.0, 4.0 / 3.0,
    3.5 / 3.0, 3.75 / 3.0, 4.25 / 3.0, 5.0 / 3.0, 3.0, 1.0 / 2.25, 1.4746, 1.54, 1.6,
    1.06667, 0.711111, 0.740740, 1.111111))
_METHODS = {"nearest": 0, "bilinear": 1, "bicubic": 2, "lanczos4": 3}

OPTION_ALIASES = {"ks": "speed_kernelscale", "ps": "speed_prescale",
                  "psm": "speed_prescale_method", "snn": "speed_sigma_nn",
                  "nnf": "speed_nn_floor", "mxv": "speed_max_val",
                  "wvm": "speed_weight_var_mode"}
_RANGES = {"speed_kernelscale": (0.1, 4.0), "speed_prescale": (0.1, 4.0),
           "speed_sigma_nn": (0.1, 2.0), "speed_nn_floor": (0.0, 1.0),
           "speed_max_val": (0.0, 1000.0), "speed_weight_var_mode": (0, 6)}


# ---------------------------------------------------------------- filters

def filter_size(scale: int, kernelscale: float) -> int:
    """libvmaf's vif_get_filter_size: the odd ceiling of (2^(4-scale)+1) * ks, >= 3."""
    n = (1 << (4 - scale)) + 1
    c = math.ceil(float(_F32(_F32(n) * _F32(kernelscale))))
    if c % 2 == 0:
        c += 1
    return max(c, 3)


def gaussian_taps(size: int, sigma) -> np.ndarray:
    """Normalised Gaussian taps, float32 with libvmaf's order of operations."""
    sd = float(_F32(sigma))
    k = (size - 1) // 2
    den = _F32(1.0 / (sd * math.sqrt(2 * math.pi)))
    vals = []
    total = _F32(0.0)
    for i in range(size):
        x = float(_F32(i - k))
        num = _F32(math.exp(-0.5 * x / sd * x / sd))
        v = _F32(num / den)
        vals.append(v)
        total = _F32(total + v)
    return np.array([_F32(v / total) for v in vals], dtype=np.float32)


def speed_filters(kernelscale: float):
    """(anti-alias taps, scale-4 taps) for a kernel scale."""
    n1 = filter_size(1, kernelscale)
    aa = gaussian_taps(n1, math.sqrt(_NUM_SCALES) * n1 / float(_F32(5.0)))
    n4 = filter_size(_NUM_SCALES, kernelscale)
    lm = gaussian_taps(n4, _F32(_F32(n4) / _F32(5.0)))
    return aa, lm


# ---------------------------------------------------------------- kernels

@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mirror(i, n):
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@njit(cache=True, nogil=True, error_model="numpy")
def to_float(src, w, h, inv_scale, offset, dst):
    """dst[:h, :w] = src * inv_scale + offset in float32 (libvmaf divides by a
    power of two: the same)."""
    for i in range(h):
        for j in range(w):
            dst[i, j] = np.float32(src[i, j]) * inv_scale + offset


@njit(cache=True, nogil=True, error_model="numpy")
def blur_decimate16(src, w, h, inv_scale, offset, filt, rows, tmp, out):
    """out[i, j] = G(src * inv_scale + offset)[16 i, 16 j] for the (h >> 4,
    w >> 4) output samples: vertical then horizontal pass, mirrored borders.
    ``inv_scale`` is a power of two (so the product is libvmaf's exact
    division); the sums run in tap order as libvmaf's."""
    fw = filt.shape[0]
    r = fw // 2
    for i in range(h >> 4):
        for k in range(fw):
            rows[k] = _mirror(16 * i - r + k, h)
        for c in range(w):
            tmp[c] = np.float32(0.0)
        for k in range(fw):
            f = filt[k]
            line = src[rows[k]]
            for c in range(w):
                tmp[c] += f * (np.float32(line[c]) * inv_scale + offset)
        for j in range(w >> 4):
            x = 16 * j
            acc = np.float32(0.0)
            for k in range(fw):
                acc += filt[k] * tmp[_mirror(x - r + k, w)]
            out[i, j] = acc


@njit(cache=True, nogil=True, error_model="numpy")
def remove_local_mean(img, filt, tmp, out):
    """out = img - G(img), G separable with mirrored borders."""
    h, w = img.shape
    fw = filt.shape[0]
    r = fw // 2
    for i in range(h):
        for c in range(w):
            acc = np.float32(0.0)
            for k in range(fw):
                acc += filt[k] * img[_mirror(i - r + k, h), c]
            tmp[i, c] = acc
    for i in range(h):
        for c in range(w):
            acc = np.float32(0.0)
            for k in range(fw):
                acc += filt[k] * tmp[i, _mirror(c - r + k, w)]
            out[i, c] = img[i, c] - acc


# ---- prescalers (libvmaf's vif_scale_frame_s), float32 like libvmaf

@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _fmirror(i, right):
    # libvmaf's float mirror(i, 0, right)
    if i < 0:
        return -i
    if i > right:
        return 2 * right - i
    return i


@njit(cache=True, nogil=True, error_model="numpy")
def scale_nearest(src, sw, sh, dst, dw, dh):
    rx = np.float32(sw) / np.float32(dw)
    ry = np.float32(sh) / np.float32(dh)
    for y in range(dh):
        yy = int(np.float32(y) * ry)
        for x in range(dw):
            dst[y, x] = src[yy, int(np.float32(x) * rx)]


@njit(cache=True, nogil=True, error_model="numpy")
def scale_bilinear(src, sw, sh, dst, dw, dh, x1a, x2a, dxa):
    rx = np.float32(sw) / np.float32(dw)
    ry = np.float32(sh) / np.float32(dh)
    one = np.float32(1.0)
    for x in range(dw):
        xx = np.float32((x + 0.5) * np.float64(rx) - 0.5)
        x1 = int(_fmirror(math.floor(xx), sw - 1))
        x1a[x] = x1
        x2a[x] = int(_fmirror(math.ceil(xx), sw - 1))
        dxa[x] = xx - np.float32(x1)
    for y in range(dh):
        yy = np.float32((y + 0.5) * np.float64(ry) - 0.5)
        y1 = int(_fmirror(math.floor(yy), sh - 1))
        y2 = int(_fmirror(math.ceil(yy), sh - 1))
        dy = yy - np.float32(y1)
        for x in range(dw):
            i1 = x1a[x]
            i2 = x2a[x]
            dx = dxa[x]
            dst[y, x] = ((one - dy) * (one - dx) * src[y1, i1]
                         + (one - dy) * dx * src[y1, i2]
                         + dy * (one - dx) * src[y2, i1]
                         + dy * dx * src[y2, i2])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _cubic(t):
    a = np.float32(-0.75)
    if t < 0:
        t = -t
    if t < 1:
        return ((a + np.float32(2)) * t - (a + np.float32(3))) * t * t + np.float32(1)
    if t < 2:
        return (((t - np.float32(5)) * t + np.float32(8)) * t - np.float32(4)) * a
    return np.float32(0.0)


@njit(cache=True, nogil=True, error_model="numpy")
def scale_bicubic(src, sw, sh, dst, dw, dh, wts):
    """Bicubic resize (libvmaf's SpEED prescale ``bicubic``); ``wts`` (2, 9)
    float32 scratch for the tap weights (see _par on scratch)."""
    rx = np.float32(sw) / np.float32(dw)
    ry = np.float32(sh) / np.float32(dh)
    wx = wts[0]
    wy = wts[1]
    for y in range(dh):
        yy = np.float32((y + 0.5) * np.float64(ry) - 0.5)
        for x in range(dw):
            xx = np.float32((x + 0.5) * np.float64(rx) - 0.5)
            x0 = int(math.floor(xx))
            y0 = int(math.floor(yy))
            dx = xx - np.float32(x0)
            dy = yy - np.float32(y0)
            for i in range(4):
                wx[i] = _cubic(np.float32(i - 1) - dx)
                wy[i] = _cubic(np.float32(i - 1) - dy)
            acc = np.float32(0.0)
            for j in range(4):
                yi = int(_fmirror(y0 + j - 1, sh - 1))
                for i in range(4):
                    xi = int(_fmirror(x0 + i - 1, sw - 1))
                    acc += src[yi, xi] * (wx[i] * wy[j])
            dst[y, x] = acc


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _lanczos(x, a):
    if x == 0.0:
        return np.float32(1.0)
    if x > -a and x < a:
        xd = np.float64(x)
        return np.float32(np.float64(a) * math.sin(math.pi * xd) * math.sin(math.pi * xd / np.float64(a))
                          / (math.pi * math.pi * xd * xd))
    return np.float32(0.0)


@njit(cache=True, nogil=True, error_model="numpy")
def scale_lanczos4(src, sw, sh, dst, dw, dh, wts):
    """Lanczos-4 resize; ``wts`` (2, 9) float32 scratch for the tap weights."""
    rx = np.float32(sw) / np.float32(dw)
    ry = np.float32(sh) / np.float32(dh)
    a = 4
    fa = np.float32(4.0)
    wx = wts[0]
    wy = wts[1]
    for y in range(dh):
        yy = np.float32((y + 0.5) * np.float64(ry) - 0.5)
        for x in range(dw):
            xx = np.float32((x + 0.5) * np.float64(rx) - 0.5)
            x0 = int(math.floor(xx))
            y0 = int(math.floor(yy))
            dx = xx - np.float32(x0)
            dy = yy - np.float32(y0)
            for i in range(9):
                wx[i] = _lanczos(np.float32(i - a) - dx, fa)
                wy[i] = _lanczos(np.float32(i - a) - dy, fa)
            val = np.float32(0.0)
            wsum = np.float32(0.0)
            for iy in range(9):
                yi = int(_fmirror(y0 + iy - a, sh - 1))
                for ix in range(9):
                    wgt = wx[ix] * wy[iy]
                    wsum += wgt
                    xi = int(_fmirror(x0 + ix - a, sw - 1))
                    val += src[yi, xi] * wgt
            dst[y, x] = val / wsum


# ---- GSM parameters

@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _madd4_row(d, n, x0, x1, x2, x3, y0, y1, y2, y3):
    """d[j] = (((d[j] + x0 y0[j]) + x1 y1[j]) + x2 y2[j]) + x3 y3[j] for j < n:
    four terms of each sum a pass, added in their order (covariance_matrix,
    _matmul; ``n`` a runtime length, which LLVM vectorises)."""
    for j in range(n):
        d[j] = (((d[j] + x0 * y0[j]) + x1 * y1[j]) + x2 * y2[j]) + x3 * y3[j]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _madd1_row(d, n, x0, y0):
    """d[j] += x0 y0[j] for j < n (the terms _madd4_row leaves over)."""
    for j in range(n):
        d[j] += x0 * y0[j]


@njit(cache=True, nogil=True, error_model="numpy")
def covariance_matrix(img, th, tw, means, centred, acc, cov):
    """25x25 covariance of the shifted (th-4) x (tw-4) sub-images of img:
    float32 means, double products summed in raster order.

    Each of the 625 sums is libvmaf's: its terms in raster order, one
    rounding each.  The order of the work is not: the 25 means are summed
    side by side in one raster pass (25 independent chains instead of one
    long chain after another), the centred samples are laid out a row of
    ``_NP`` per position (``centred`` (n, _NP) float64, columns 25.. zero),
    and the products go into ``acc`` (_NB, _NP) four positions at a time,
    each row's sums only as far as the diagonal's vector of 8 (the upper
    triangle mirrors the lower).  1080p chroma (60x33 samples): 280 -> 85 us
    a plane."""
    sh = th - _B + 1
    sw = tw - _B + 1
    nf = np.float32(sh * sw)
    nd = np.float64(sh * sw)
    for a in range(_NB):
        means[a] = np.float32(0.0)
    for i in range(sh):
        for ra in range(_B):
            r = img[ra + i]
            for j in range(sw):
                for ca in range(_B):
                    means[ra * _B + ca] += r[ca + j]
    for a in range(_NB):
        means[a] = means[a] / nf
    k = 0
    for i in range(sh):
        for j in range(sw):
            row = centred[k]
            for ra in range(_B):
                r = img[ra + i]
                for ca in range(_B):
                    row[ra * _B + ca] = np.float64(r[ca + j]) - np.float64(means[ra * _B + ca])
            k += 1
    n = sh * sw
    m = acc.shape[1]  # not the constant: a loop of runtime length vectorizes
    for a in range(_NB):
        for b in range(m):
            acc[a, b] = 0.0
    k = 0
    while k + 4 <= n:
        r0 = centred[k]
        r1 = centred[k + 1]
        r2 = centred[k + 2]
        r3 = centred[k + 3]
        for a in range(_NB):
            _madd4_row(acc[a], min(m, ((a >> 3) + 1) << 3),
                       r0[a], r1[a], r2[a], r3[a], r0, r1, r2, r3)
        k += 4
    while k < n:
        r0 = centred[k]
        for a in range(_NB):
            _madd1_row(acc[a], min(m, ((a >> 3) + 1) << 3), r0[a], r0)
        k += 1
    for a in range(_NB):
        for b in range(a + 1):
            v = np.float32(acc[a, b] / nd)
            cov[a, b] = v
            cov[b, a] = v


@njit(cache=True, nogil=True, inline="always")
def _copy2(dst, src):
    """dst[:, :] = src for arrays of one shape.  Written as loops: Numba's
    array-to-array slice assignment compiles its broadcasting and its shape
    error (~3 s of a cold start) for every signature."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = src[i, j]


@njit(cache=True, nogil=True, inline="always")
def _zero2(dst):
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] = 0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sgn(x):
    return np.float32(1.0) if x >= 0 else np.float32(-1.0)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _hypot32(x, y):
    return np.float32(math.sqrt(np.float64(x * x + y * y)))


@njit(cache=True, nogil=True, error_model="numpy")
def _householder_col(A, col, start, n):
    """Householder reflection zeroing A[start+1:, col]; returns tau, leaves
    the scaled vector in the column (GSL convention)."""
    if n - start == 1:
        return np.float32(0.0)
    xn = np.float32(0.0)
    for i in range(start + 1, n):
        xn += A[i, col] * A[i, col]
    xn = np.float32(math.sqrt(np.float64(xn)))
    if xn == 0:
        return np.float32(0.0)
    alpha = A[start, col]
    beta = -_sgn(alpha) * _hypot32(alpha, xn)
    tau = (beta - alpha) / beta
    s = alpha - beta
    if s != 0:
        for i in range(start, n):
            A[i, col] = A[i, col] / s
        A[start, col] = beta
    return tau


@njit(cache=True, nogil=True, error_model="numpy")
def _tridiagonalize(A, n, d, sd, v, x):
    for i in range(n - 2):
        tau = _householder_col(A, i, i + 1, n)
        for j in range(i + 1, n):
            v[j] = A[j, i]
        if tau != 0:
            v[i + 1] = np.float32(1.0)
            for p in range(i + 1, n):
                acc = np.float32(0.0)
                for q in range(i + 1, n):
                    acc += tau * A[p, q] * v[q]
                x[p] = acc
            xv = np.float32(0.0)
            for p in range(i + 1, n):
                xv += x[p] * v[p]
            alpha = np.float32(-0.5 * np.float64(tau) * np.float64(xv))
            for p in range(i + 1, n):
                x[p] += alpha * v[p]
            for p in range(i + 1, n):
                for q in range(i + 1, n):
                    A[p, q] -= x[p] * v[q] + v[p] * x[q]
    for i in range(n):
        d[i] = A[i, i]
    for i in range(n - 1):
        sd[i] = A[i + 1, i]


@njit(cache=True, nogil=True, error_model="numpy")
def _chop(d, sd, lo, n):
    for i in range(lo, lo + n - 1):
        if np.float64(abs(sd[i])) < _EPS * np.float64(abs(d[i]) + abs(d[i + 1])):
            sd[i] = np.float32(0.0)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _givens(a, b):
    if b == 0:
        return np.float32(1.0), np.float32(0.0)
    if abs(b) > abs(a):
        t = -a / b
        s1 = np.float32(1.0 / math.sqrt(np.float64(np.float32(1.0) + t * t)))
        return s1 * t, s1
    t = -b / a
    c1 = np.float32(1.0 / math.sqrt(np.float64(np.float32(1.0) + t * t)))
    return c1, c1 * t


@njit(cache=True, nogil=True, error_model="numpy")
def _qr_step(d, sd, o, n):
    """One implicit symmetric QR step (Wilkinson shift) on the unreduced
    block d[o:o+n], sd[o:o+n-1]."""
    ta = d[o + n - 2]
    tb = d[o + n - 1]
    tab = sd[o + n - 2]
    dt = np.float32(np.float64(ta - tb) / 2.0)
    if dt > 0:
        mu = tb - tab * (tab / (dt + _hypot32(dt, tab)))
    elif dt == 0:
        mu = tb - abs(tab)
    else:
        mu = tb + tab * (tab / (-dt + _hypot32(dt, tab)))
    if _EPS * np.float64(abs(mu)) > np.float64(abs(d[o]) + abs(sd[o])):
        mu = np.float32(0.0)
    x = d[o] - mu
    z = sd[o]
    bk = np.float32(0.0)
    zk = np.float32(0.0)
    ap = d[o]
    bp = sd[o]
    aq = d[o + 1]
    if n == 2:
        c, s = _givens(x, z)
        ap1 = c * (c * ap - s * bp) + s * (s * aq - c * bp)
        bp1 = c * (s * ap + c * bp) - s * (s * bp + c * aq)
        aq1 = s * (s * ap + c * bp) + c * (s * bp + c * aq)
        d[o] = ap1
        sd[o] = bp1
        d[o + 1] = aq1
        return
    bq = sd[o + 1]
    for k in range(n - 1):
        c, s = _givens(x, z)
        bk1 = c * bk - s * zk
        ap1 = c * (c * ap - s * bp) + s * (s * aq - c * bp)
        bp1 = c * (s * ap + c * bp) - s * (s * bp + c * aq)
        zp1 = -s * bq
        aq1 = s * (s * ap + c * bp) + c * (s * bp + c * aq)
        bq1 = c * bq
        bk = bp1
        zk = zp1
        ap = aq1
        bp = bq1
        if k < n - 2:
            aq = d[o + k + 2]
        if k < n - 3:
            bq = sd[o + k + 2]
        d[o + k] = ap1
        if k > 0:
            sd[o + k - 1] = bk1
        if k < n - 2:
            sd[o + k + 1] = bp
        x = bk
        z = zk
    d[o + n - 1] = ap
    sd[o + n - 2] = bk


@njit(cache=True, nogil=True, error_model="numpy")
def eigenvalues_sym(K, work, d, sd, v, x, out):
    """Eigenvalues of the symmetric float32 matrix K (unsorted), libvmaf's way."""
    n = K.shape[0]
    _copy2(work, K)
    if n == 1:
        out[0] = work[0, 0]
        return
    _tridiagonalize(work, n, d, sd, v, x)
    _chop(d, sd, 0, n)
    b = n - 1
    it = 0
    while b > 0 and it < _MAX_ITERS:
        if sd[b - 1] == 0:
            b -= 1
            continue
        a = b - 1
        while a > 0:
            if sd[a - 1] == 0:
                break
            a -= 1
        _qr_step(d, sd, a, b - a + 1)
        _chop(d, sd, a, b - a + 1)
        it += 1
    for i in range(n):
        out[i] = d[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _matmul(dst, X, Y):
    """dst = X Y, each element summed over k in order from 0 (float32), four
    terms of k per pass over a row of dst (3.2 -> 1.8 us at 25x25)."""
    for i in range(X.shape[0]):
        _dot_rows(dst[i], X[i], Y, 0, 0)


@njit(cache=True, nogil=True, inline="always")
def _dot_rows(d, xi, Y, k, c):
    """d[j] = sum_{q >= k} xi[q] Y[q, c + j] for j < len(d), from 0 and in
    the order of q, four terms a pass (_matmul's rows, and the reflector
    products' from k on)."""
    m = d.shape[0]
    n = xi.shape[0]
    for j in range(m):
        d[j] = np.float32(0.0)
    q = k
    while q + 4 <= n:
        _madd4_row(d, m, xi[q], xi[q + 1], xi[q + 2], xi[q + 3],
                   Y[q, c:], Y[q + 1, c:], Y[q + 2, c:], Y[q + 3, c:])
        q += 4
    while q < n:
        _madd1_row(d, m, xi[q], Y[q, c:])
        q += 1


@njit(cache=True, nogil=True)
def _reflect_trailing(T, H, Z, k):
    """Z = H Z (libvmaf's explicit product, as _matmul) where it is read
    again: rows and columns k.. (libvmaf resets the others to the identity
    before its next step, and solve_qr reads none of them).  Skipped terms:
    H[i, q] for q < k <= i is a zero (the reflector vector is 0 above k), so
    those products are zeros and the sum is +0 when it reaches q = k, where
    _dot_rows starts it."""
    n = Z.shape[0]
    for i in range(k, n):
        _dot_rows(T[i, k:], H[i], Z, k, k)
    for i in range(k, n):
        for j in range(k, n):
            Z[i, j] = T[i, j]


@njit(cache=True, nogil=True)
def _reflect_rows(T, H, P, k):
    """P = H P (as _matmul): rows i >= k sum from q = k (the terms before
    are zeros, as in _reflect_trailing); a row i < k of H is the unit row i
    with zeros, so the sum is P[i, j] itself, or +0 for either zero: P[i, j]
    + 0.  Bit for bit the full product (test_solve_qr_bit_exact)."""
    n = P.shape[0]
    m = P.shape[1]
    for i in range(k, n):
        _dot_rows(T[i], H[i], P, k, 0)
    zero = np.float32(0.0)
    for i in range(k):
        for j in range(m):
            P[i, j] = P[i, j] + zero
    for i in range(k, n):
        for j in range(m):
            P[i, j] = T[i, j]


@njit(cache=True, nogil=True, error_model="numpy")
def solve_qr(K, Y, X, P, R, H, Z, T, vec, rhs):
    """Solve K X = Y with libvmaf's Householder QR (float32): P = H_{n-2}..H_0
    built from explicit reflector matrices, R = P K, back-substitution on the
    upper triangle of R.  Returns False when a pivot is below 1e-6.  The
    products with a reflector skip the terms that are zeros by its structure
    (_reflect_trailing, _reflect_rows): the same sums, a third of the work."""
    n = K.shape[0]
    _copy2(Z, K)
    _zero2(P)
    for i in range(n):
        P[i, i] = 1
    for k in range(n - 1):
        # libvmaf first sets Z's rows and columns above k to the identity:
        # of those only the zeros above the diagonal in column k are read
        # (vec), and the sums of squares over them are +0 (skipped)
        for i in range(k):
            vec[i] = np.float32(0.0)
        for i in range(k, n):
            vec[i] = Z[i, k]
        nrm = np.float32(0.0)
        for i in range(k, n):
            nrm += vec[i] * vec[i]
        nrm = np.float32(math.sqrt(np.float64(nrm)))
        vec[k] += _sgn(K[k, k]) * nrm
        nrm = np.float32(0.0)
        for i in range(k, n):
            nrm += vec[i] * vec[i]
        nrm = np.float32(math.sqrt(np.float64(nrm)))
        for i in range(k, n):
            vec[i] = vec[i] / nrm
        # the reflector I - 2 vec vec^T where the products below read it
        for i in range(k, n):
            for j in range(k, n):
                H[i, j] = np.float32(-2.0) * vec[i] * vec[j]
            H[i, i] += np.float32(1.0)
        _reflect_trailing(T, H, Z, k)
        _reflect_rows(T, H, P, k)
    _matmul(R, P, K)
    _matmul(rhs, P, Y)
    # back-substitution, the m right-hand sides side by side (each its own
    # chain of subtractions in libvmaf's order: k = i + 1 .. n - 1)
    m = Y.shape[1]
    for i in range(n - 1, -1, -1):
        den = R[i, i]
        if np.float64(abs(den)) < _EPS:
            return False
        xi = X[i]
        ri = rhs[i]
        for j in range(m):
            xi[j] = ri[j]
        for k in range(i + 1, n):
            rik = R[i, k]
            xk = X[k]
            for j in range(m):
                xi[j] = xi[j] - xk[j] * rik
        for j in range(m):
            xi[j] = xi[j] / den
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def gsm_params(img, nbv, nbh, sigma_nn, means, centred, cacc, cov, eig, work, d, sd, v, x,
               Y, X, P, R, H, Z, T, vec, rhs, ent, var):
    """Entropies and variances of the nbv x nbh 5x5 blocks of img (local mean
    removed).  Returns True when the covariance matrix is singular."""
    covariance_matrix(img, nbv * _B, nbh * _B, means, centred, cacc, cov)
    eigenvalues_sym(cov, work, d, sd, v, x, eig)
    nblk = nbv * nbh
    for bi in range(nbv):
        for bj in range(nbh):
            col = bi * nbh + bj
            for r in range(_B):
                for c in range(_B):
                    Y[r * _B + c, col] = img[bi * _B + r, bj * _B + c]
    regular = True
    for k in range(_NB):
        if eig[k] < _EPS:
            regular = False
    ok = False
    if regular:
        ok = solve_qr(cov, Y, X, P, R, H, Z, T, vec, rhs)
    singular = not ok
    if singular:
        _zero2(X)
    nbf = np.float32(_NB)
    for j in range(nblk):
        s = (X[0, j] * Y[0, j]) / nbf
        for i in range(1, _NB):
            s += (X[i, j] * Y[i, j]) / nbf
        var[j] = s
    for j in range(nblk):
        e = np.float32(0.0)
        for k in range(_NB):
            L = eig[k]
            if L < 0:
                L = np.float32(0.0)
            t = math.log2(np.float64(L * var[j] + sigma_nn)) + _LOG2_2PIE
            e = np.float32(np.float64(e) + t)
        ent[j] = e
    return singular


@njit(cache=True, nogil=True, error_model="numpy")
def speed_score(ent_r, var_r, ent_d, var_d, n, sigma_nn, nn_floor, mode):
    """Mean over blocks of the entropy-difference term (float32 as libvmaf)."""
    one = np.float32(1.0)
    base = np.float32(_NB * (math.log2(np.float64((one + nn_floor) * sigma_nn)) + _LOG2_2PIE))
    score = np.float32(0.0)
    for i in range(n):
        er = ent_r[i]
        ed = ent_d[i]
        if er < base and ed < base:
            continue
        vr = var_r[i]
        vd = var_d[i]
        if mode == 0:
            wr = math.log2(np.float64(one + vr))
            wd = math.log2(np.float64(one + vd))
        elif mode == 1:
            wr = math.log2(np.float64(one + vr))
            wd = wr
        elif mode == 2:
            wr = math.log2(np.float64(one + vd))
            wd = wr
        elif mode == 3:
            wr = math.log2(1.0 + np.float64(vr + vd) / 2.0)
            wd = wr
        elif mode == 4:
            wr = math.log2(np.float64(one + vr))
            wd = math.log2(1.0 + np.float64(vr + vd) / 2.0)
        elif mode == 5:
            wr = math.log2(np.float64(one + vr))
            wd = math.log2(1.0 + (0.75 * np.float64(vr) + 0.25 * np.float64(vd)))
        else:
            wr = math.log2(np.float64(one + vr))
            wd = math.log2(1.0 + (0.25 * np.float64(vr) + 0.75 * np.float64(vd)))
        sr = np.float32(np.float64(er) * wr)
        sdv = np.float32(np.float64(ed) * wd)
        score += abs(sr - sdv)
    return score / np.float32(n)


@njit(cache=True, nogil=True, error_model="numpy")
def plane_gsm(plane, w, h, inv_scale, method, sw, sh, aa, lm, fsrc, fdst, x1a, x2a, dxa, wts,
              rows, tmp_row, dec, tmp2, img, nbv, nbh, sigma_nn, means, centred, cacc, cov,
              eig, work, d, sd, v, x, Y, X, P, R, H, Z, T, vec, rhs, ent, var):
    """Steps 1-5 for one plane (the top-left w x h of ``plane``): entropies and
    variances of its blocks into ent, var.  method -1: no prescale, else
    0..3 nearest, bilinear, bicubic, lanczos4.  Returns True if singular."""
    offset = np.float32(-128.0)
    if method < 0:
        blur_decimate16(plane, w, h, inv_scale, offset, aa, rows, tmp_row, dec)
    else:
        to_float(plane, w, h, inv_scale, offset, fsrc)
        if sw == w and sh == h:  # libvmaf copies instead of scaling
            _copy2(fdst, fsrc)
        elif method == 0:
            scale_nearest(fsrc, w, h, fdst, sw, sh)
        elif method == 1:
            scale_bilinear(fsrc, w, h, fdst, sw, sh, x1a, x2a, dxa)
        elif method == 2:
            scale_bicubic(fsrc, w, h, fdst, sw, sh, wts)
        else:
            scale_lanczos4(fsrc, w, h, fdst, sw, sh, wts)
        blur_decimate16(fdst, sw, sh, np.float32(1.0), np.float32(0.0), aa, rows, tmp_row, dec)
    remove_local_mean(dec, lm, tmp2, img)
    return gsm_params(img, nbv, nbh, sigma_nn, means, centred, cacc, cov, eig, work, d, sd,
                      v, x, Y, X, P, R, H, Z, T, vec, rhs, ent, var)


# ---------------------------------------------------------------- extractor

class _Buffers:
    """Everything one plane's pipeline writes, allocated once per format."""

    def __init__(self, w, h, sw, sh, method, aa_len):
        f = lambda *s: np.zeros(s, np.float32)
        scaled = method >= 0
        self.fsrc = f(h, w) if scaled else f(1, 1)
        self.fdst = f(sh, sw) if scaled else f(1, 1)
        self.x1a = np.zeros(sw, np.int64)
        self.x2a = np.zeros(sw, np.int64)
        self.dxa = f(sw)
        self.wts = f(2, 9)
        self.rows = np.zeros(aa_len, np.int64)
        oh, ow = sh >> _NUM_SCALES, sw >> _NUM_SCALES
        nbv, nbh = oh // _B, ow // _B
        nblk = nbv * nbh
        sub = (nbv * _B - _B + 1) * (nbh * _B - _B + 1)
        self.nblk = nblk
        self.tmp_row = f(sw)
        self.dec, self.tmp2, self.img = f(oh, ow), f(oh, ow), f(oh, ow)
        self.means = f(_NB)
        self.centred = np.zeros((sub, _NP), np.float64)
        self.cacc = np.zeros((_NB, _NP), np.float64)
        self.cov, self.work = f(_NB, _NB), f(_NB, _NB)
        self.eig, self.d, self.sd, self.v, self.x, self.vec = (f(_NB) for _ in range(6))
        self.Y, self.X, self.rhs = f(_NB, nblk), f(_NB, nblk), f(_NB, nblk)
        self.P, self.R, self.H, self.Z, self.T = (f(_NB, _NB) for _ in range(5))
        self.ent = (f(nblk), f(nblk))
        self.var = (f(nblk), f(nblk))
        self.args = (w, h, None, method, sw, sh, None, None, self.fsrc, self.fdst,
                     self.x1a, self.x2a, self.dxa, self.wts, self.rows, self.tmp_row, self.dec,
                     self.tmp2, self.img, nbv, nbh, None, self.means, self.centred,
                     self.cacc, self.cov, self.eig, self.work, self.d, self.sd, self.v,
                     self.x, self.Y, self.X, self.P, self.R, self.H, self.Z, self.T,
                     self.vec, self.rhs)


@register
class Speed(FeatureExtractor):
    """libvmaf's ``speed_chroma`` (SpEED-QA on U and V)."""

    name = "speed"
    warm_size = (320, 320)  # 4:2:0 chroma of 80x80 after a 0.5 prescale; the kernels of any larger frame
    provides = ("speed_chroma_u", "speed_chroma_v", "speed_chroma_uv")
    temporal = False
    default_options = {
        "speed_kernelscale": 1.0,
        "speed_prescale": 1.0,
        "speed_prescale_method": "nearest",
        "speed_sigma_nn": 0.29,
        "speed_nn_floor": 0.0,
        "speed_max_val": 1000.0,
        "speed_weight_var_mode": 0,
    }

    def __init__(self, **options):
        options = {OPTION_ALIASES.get(k, k): v for k, v in options.items()}
        super().__init__(**options)
        o = self.options
        for k, (lo, hi) in _RANGES.items():
            v = o[k]
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"speed option {k} must be a number, got {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"speed option {k}={v} outside [{lo}, {hi}]")
        if int(o["speed_weight_var_mode"]) != o["speed_weight_var_mode"]:
            raise ValueError("speed option speed_weight_var_mode must be an integer 0..6, "
                             f"got {o['speed_weight_var_mode']!r}")
        ks = _F32(o["speed_kernelscale"])
        if not any(abs(_F32(ks - v)) < 1e-3 for v in _VALID_KERNELSCALES):
            raise ValueError(f"speed option speed_kernelscale={o['speed_kernelscale']} is not one "
                             "of libvmaf's kernel scales: "
                             + ", ".join(f"{float(v):.6g}" for v in _VALID_KERNELSCALES))
        m = o["speed_prescale_method"]
        if m not in _METHODS:
            raise ValueError(f"speed option speed_prescale_method={m!r}; supported: "
                             + ", ".join(_METHODS))
        self._aa, self._lm = speed_filters(float(o["speed_kernelscale"]))

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        if fmt.chroma == "400":
            raise ValueError("speed_chroma needs chroma planes; the input is luma only (400)")
        w, h = fmt.width, fmt.height
        if fmt.chroma in ("420", "422"):
            w //= 2
        if fmt.chroma == "420":
            h //= 2
        p = float(self.options["speed_prescale"])
        sw, sh = int(w * p + 0.5), int(h * p + 0.5)
        method = -1
        if abs(p - 1.0) >= 1e-3:
            method = _METHODS[self.options["speed_prescale_method"]]
        elif (sw, sh) != (w, h):
            raise ValueError(f"speed_prescale={p} is within 1e-3 of 1 (libvmaf then does not "
                             f"scale) but changes the size {w}x{h} to {sw}x{sh}")
        if (sw >> _NUM_SCALES) < _B or (sh >> _NUM_SCALES) < _B:
            raise ValueError(f"speed_chroma needs chroma planes of at least {_B << _NUM_SCALES}"
                             f"x{_B << _NUM_SCALES} (after speed_prescale); got {sw}x{sh}")
        self._inv_scale = _F32(1.0 / (1 << (fmt.bitdepth - 8)))
        self._snn = _F32(self.options["speed_sigma_nn"])
        self._nnf = _F32(self.options["speed_nn_floor"])
        self._mode = int(self.options["speed_weight_var_mode"])
        self._maxv = float(self.options["speed_max_val"])
        self._buf = _Buffers(w, h, sw, sh, method, len(self._aa))
        a = list(self._buf.args)
        a[2], a[6], a[7], a[21] = self._inv_scale, self._aa, self._lm, self._snn
        self._args = tuple(a)

    def _gsm(self, plane, k):
        """Steps 1-5 on one plane into slot k (0 ref, 1 dis); True if singular."""
        b = self._buf
        return plane_gsm(plane, *self._args, b.ent[k], b.var[k])

    def plane_score(self, ref_plane, dis_plane):
        """(score, singular) of one chroma plane pair, before the max_val cap."""
        b = self._buf
        err_r = self._gsm(ref_plane, 0)
        err_d = self._gsm(dis_plane, 1)
        if err_r != err_d:
            return 0.0, True
        s = speed_score(b.ent[0], b.var[0], b.ent[1], b.var[1], b.nblk,
                        self._snn, self._nnf, self._mode)
        return float(s), bool(err_r)

    def compute(self, ref, dis) -> dict:
        su, eu = self.plane_score(ref[1], dis[1])
        sv, ev = self.plane_score(ref[2], dis[2])
        if eu and not ev:
            suv = sv
        elif ev and not eu:
            suv = su
        else:
            suv = float(_F32((su + sv) / 2.0))
        m = self._maxv
        return {"speed_chroma_u": min(su, m), "speed_chroma_v": min(sv, m),
                "speed_chroma_uv": min(suv, m)}

    def extract(self, index, ref, dis):
        return [(index, self.compute(ref, dis))]
