"""CAMBI (Contrast Aware Multiscale Banding Index), as libvmaf's ``cambi`` feature.

A no-reference banding detector computed on the luma of the DISTORTED frame
(output ``cambi``); with ``full_ref`` it is also computed on the reference
(``cambi_source``) and ``cambi_full_reference = max(0, cambi - cambi_source)``
(each output clipped to ``cambi_max_val``).  The steps, as libvmaf does them:

1. **Preprocessing** to 10 bits at the encode resolution ``enc_width x
   enc_height`` (default: the frame's; an encode resolution above the frame's
   falls back to the frame's).  Resizing is nearest-neighbour with libvmaf's
   float32 arithmetic: ``ratio = (float)in / out``, ``x0 = ratio / 2 - 0.5``,
   ``x += ratio`` per output sample (float32 accumulation), source index
   ``(int)(x + 0.5)``.  8-bit samples are shifted left by 2, 9-bit by 1,
   deeper ones rounded down to 10 bits, ``(v + 2^(b-11)) >> (b - 10)``.  When
   ``enc_bitdepth`` (default: the input's) is below 10, an anti-dithering
   filter replaces each sample by the floor mean of its 2x2 block to the right
   and below (a 2x1 mean on the last row and column, the corner unchanged).
2. **Spatial mask** at the processing resolution: a pixel has zero derivative
   when it equals its right and its lower neighbour (missing neighbours count
   as equal); the mask is 1 where the count of zero-derivative pixels in the
   7x7 window around it (zero outside the frame) exceeds
   ``(49 + 3 * (ceil_log2((w >> 6) * (h >> 6)) - 11) - 1) >> 1``.
3. **Five scales.**  At each scale (at scale 0 only with the high-resolution
   speed-up) image and mask are decimated by taking the even rows and columns
   (sizes rounded up), then the image is mode-filtered 3x3 (separable: a
   horizontal 3-tap mode, then a vertical 3-tap mode of those; the mode of
   three values is the repeated one, else the minimum; the first and last
   column are left out of the horizontal pass and the first and last row are
   left as they are).  The filtered image is what the next scale decimates.
4. **Contrast per pixel.**  For each masked pixel of value ``v`` (10-bit
   code), with ``H(u)`` the number of masked pixels of value ``u`` in the
   ``window x window`` square centred on it (clipped to the frame), and for
   each contrast step ``d = 1 .. 2^max_log_contrast`` that is visible
   (``v <= tvi(d)``) and not too dark (``v + d > vlt``)::

       c = max_d  w_d * H(v) * m / (H(v) + m),   m = max(H(v + d), H(v - d))

   in float32, as ``(float)(w_d * H(v) * m) * lut[H(v) + m]`` with libvmaf's
   reciprocal table (``1/i`` printed to 9 significant digits, read as a
   float32).  ``w_d`` are the suprathreshold contrast weights 1, 2, 3, 4, 4, 5,
   ...  Unmasked pixels have ``c = 0``.  ``tvi(d)`` is the largest 10-bit code
   (limited range, 64..940) at which a step of ``d`` codes raises the
   luminance by more than ``tvi_threshold`` times (found by libvmaf's
   bisection, under the BT.1886 EOTF (300 cd/m2 white, 0.01 black) or PQ);
   ``vlt`` is the lowest code whose luminance reaches
   ``cambi_vis_lum_threshold`` (0 when that is the foot).  The window is
   ``((window_size * (w + h)) / 375) >> 4`` (integer division; halved, rounded
   up, with the speed-up), made odd; the same window is used at every scale.
5. **Pooling.**  Per scale, the mean of the ``topk`` fraction of largest
   ``c`` (``clip((int)(topk * n), 1, n)`` values, summed in double); the frame
   score is ``sum_s score_s * (16, 8, 4, 2, 1)[s] / window^2``, clipped to
   ``cambi_max_val``.

Options, with libvmaf's names, aliases, defaults and ranges:
``cambi_max_val`` (cmxv, 1000, [0, 1000]), ``enc_width`` (encw, frame width,
[180, 7680]), ``enc_height`` (ench, [150, 7680]), ``enc_bitdepth`` (encbd,
input bit depth, [6, 16]), ``src_width`` (srcw, [320, 7680]) and
``src_height`` (srch, [200, 4320]) (the reference's processing resolution in
``full_ref`` mode), ``window_size`` (ws, 65, [15, 127]), ``topk`` and
``cambi_topk`` (ctpk, 0.6, [0.0001, 1]; ``topk`` wins when not 0.6),
``tvi_threshold`` (tvit, 0.019, [0.0001, 1]), ``cambi_vis_lum_threshold``
(vlt, 0.0, [0, 300]), ``max_log_contrast`` (mlc, 2, [0, 5]), ``eotf`` and
``cambi_eotf`` (ceot, "bt1886" or "pq"; ``cambi_eotf`` wins when not
"bt1886"), ``cambi_high_res_speedup`` (hrs, 0; 1080, 1440 or 2160 enables the
speed-up for encode resolutions of at least 1920x1080, 2560x1440, 3840x2160;
other values disable it), ``full_ref`` (False) and ``heatmaps_path`` (None: a
folder where the per-scale c maps are written as libvmaf does, 16-bit
``cambi_heatmap_scale_{s}_{w}x{h}_16b.gray`` files).  0 for the size options
means "unset" (the frame's size).  vqa also accepts ``cambi_window_size``,
``cambi_tvi_threshold`` and ``cambi_max_log_contrast`` for the three options
whose libvmaf names lack the ``cambi_`` prefix.

As libvmaf, the encode (and source) resolution must be at least 216 pixels
in one direction, and the adjusted window at most 65 (libvmaf's reciprocal
table ends at 65^2).  Where a scaled frame is smaller than half the window in
some direction (very narrow frames only), libvmaf reads beyond the scaled
picture; vqa uses the clipped window there.

Accuracy: every step uses libvmaf's integer and float32 operations (its C
and AVX2 paths give the same c maps); only the top-k pooling's sum differs
in its last bits: vqa selects the top k by a radix count on the float bits
and sums them exactly (non-zero c values are float32 multiples of 2^-25
below 2^15, so an int64 fixed-point sum is exact), rounding once, where
libvmaf adds doubles one by one.  Against ffmpeg's libvmaf filter the scores agree to its printed
6 decimals (|diff| <= 5e-7) for 8, 10 and 12-bit input, encode resolutions,
the speed-up and full-reference mode.
"""
from __future__ import annotations

import math
import os

import numpy as np
from ._jit import intrinsic, lazy_module, njit

from ._par import KERNEL, KERNEL_THREADS, bits_f32, f32_bits
from ._par import ctz64 as _ctz64, ir_splat, lane_add as _add, lane_mul as _mul, lane_shr as _shr
from .base import FeatureExtractor, FrameFormat
from .registry import register

#: Numba's types and llvmlite's IR, imported when a kernel compiles
types = lazy_module("numba.core.types")
ir = lazy_module("llvmlite.ir")

NUM_SCALES = 5
SCALE_WEIGHTS = (16, 8, 4, 2, 1)
CONTRAST_WEIGHTS = (1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8,
                    8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9)
MASK_FILTER_SIZE = 7
MIN_WIDTH_HEIGHT = 216
LUT_SIZE = 4226
HIGH_RES_THRESHOLDS = {1080: 1920 * 1080, 1440: 2560 * 1440, 2160: 3840 * 2160}

#: libvmaf's float32 reciprocal table: 1/i printed with 9 significant digits
RECIPROCAL_LUT = np.array([0.0] + [float("%.9g" % (1.0 / i)) for i in range(1, LUT_SIZE)],
                          dtype=np.float32)

# 10-bit limited range
_FOOT, _HEAD = 64, 940

OPTION_ALIASES = {
    "cmxv": "cambi_max_val", "encw": "enc_width", "ench": "enc_height",
    "encbd": "enc_bitdepth", "srcw": "src_width", "srch": "src_height",
    "ws": "window_size", "cambi_window_size": "window_size",
    "ctpk": "cambi_topk", "tvit": "tvi_threshold", "cambi_tvi_threshold": "tvi_threshold",
    "vlt": "cambi_vis_lum_threshold", "mlc": "max_log_contrast",
    "cambi_max_log_contrast": "max_log_contrast", "ceot": "cambi_eotf",
    "hrs": "cambi_high_res_speedup",
}

_RANGES = {
    "cambi_max_val": (0.0, 1000.0), "window_size": (15, 127), "topk": (0.0001, 1.0),
    "cambi_topk": (0.0001, 1.0), "tvi_threshold": (0.0001, 1.0),
    "cambi_vis_lum_threshold": (0.0, 300.0), "max_log_contrast": (0, 5),
    "cambi_high_res_speedup": (0, 2160),
}
# size options: 0 means unset
_SIZE_RANGES = {"enc_width": (180, 7680), "enc_height": (150, 7680), "enc_bitdepth": (6, 16),
                "src_width": (320, 7680), "src_height": (200, 4320)}
_INT_OPTS = ("window_size", "max_log_contrast", "cambi_high_res_speedup", *_SIZE_RANGES)
_DEFAULT_TOPK = 0.6
_DEFAULT_EOTF = "bt1886"


# ---------------------------------------------------------------- luminance

def bt1886_eotf(v: float) -> float:
    g, lw, lb = 2.4, 300.0, 0.01
    a = math.pow(math.pow(lw, 1.0 / g) - math.pow(lb, 1.0 / g), g)
    b = math.pow(lb, 1.0 / g) / (math.pow(lw, 1.0 / g) - math.pow(lb, 1.0 / g))
    return a * math.pow(max(v + b, 0.0), g)


def pq_eotf(v: float) -> float:
    m1, m2 = 0.1593017578125, 78.84375
    c1, c2, c3 = 0.8359375, 18.8515625, 18.6875
    p = math.pow(v, 1.0 / m2)
    num = max(p - c1, 0.0)
    return 10000.0 * math.pow(num / (c2 - c3 * p), 1.0 / m1)


EOTFS = {"bt1886": bt1886_eotf, "pq": pq_eotf}


def luminance(sample: int, eotf) -> float:
    s = min(max(sample, _FOOT), _HEAD)
    return eotf((s - _FOOT) / (_HEAD - _FOOT))


def _tvi_visible(sample, diff, thr, eotf) -> bool:
    mean = luminance(sample, eotf)
    return luminance(sample + diff, eotf) - mean > thr * mean


def _tvi_flag(sample, diff, thr, eotf) -> int:
    """-1: sample too small, 0: correct, 1: too big (libvmaf's bisection test)."""
    if not _tvi_visible(sample, diff, thr, eotf):
        return 1
    if _tvi_visible(sample + 1, diff, thr, eotf):
        return -1
    return 0


def tvi_for_diff(diff: int, thr: float, eotf) -> int:
    """Largest 10-bit code at which a step of ``diff`` codes is visible
    (libvmaf's bisection between the foot and head - diff - 1)."""
    foot, head = _FOOT, _HEAD - diff - 1
    f = _tvi_flag(foot, diff, thr, eotf)
    if f == 1:
        return 0
    if f == 0:
        return foot
    f = _tvi_flag(head, diff, thr, eotf)
    if f == -1:
        return 1023
    if f == 0:
        return head
    while True:
        mid = foot + (head - foot) // 2
        f = _tvi_flag(mid, diff, thr, eotf)
        if f == 1:
            head = mid
        elif f == -1:
            foot = mid
        else:
            return mid


def vlt_luma(threshold: float, eotf) -> int:
    """Lowest code whose luminance reaches ``threshold`` (0 if the foot does)."""
    s = _FOOT
    while luminance(s, eotf) < threshold:
        s += 1
        if s > _HEAD:
            raise ValueError(f"cambi_vis_lum_threshold {threshold} is above the peak "
                             f"luminance {luminance(_HEAD, eotf)} of the EOTF")
    return 0 if s == _FOOT else s


# ---------------------------------------------------------------- geometry

def adjust_window(window: int, w: int, h: int, speedup: bool) -> int:
    win = ((window * (w + h)) // 375) >> 4
    if speedup:
        win = (win + 1) >> 1
    return (win | 1) & 0xFFFF


def _ceil_log2(n: int) -> int:
    return 0 if n == 0 else (n - 1).bit_length()


def mask_index(w: int, h: int, filter_size: int = MASK_FILTER_SIZE) -> int:
    shifted = ((w >> 6) * (h >> 6)) & 0xFFFFFFFF
    return ((filter_size * filter_size + 3 * (_ceil_log2(shifted) - 11) - 1) >> 1) & 0xFFFF


def nn_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source indices of libvmaf's nearest-neighbour resize (float32 steps)."""
    f32 = np.float32
    ratio = f32(f32(n_in) / f32(n_out))
    x = f32(float(ratio / f32(2)) - 0.5)
    out = np.empty(n_out, dtype=np.int64)
    for j in range(n_out):
        out[j] = int(float(x) + 0.5)
        x = f32(x + ratio)
    return out


# ---------------------------------------------------------------- kernels

@njit(**KERNEL)
def anti_dither(a, out):
    """Floor mean of the 2x2 block right/below (2x1 on the last row/column)."""
    h, w = a.shape
    for i in range(h - 1):
        r0 = a[i]
        r1 = a[i + 1]
        o = out[i]
        for j in range(w - 1):
            o[j] = (np.int32(r0[j]) + np.int32(r0[j + 1]) + np.int32(r1[j])
                    + np.int32(r1[j + 1])) >> 2
        o[w - 1] = (np.int32(r0[w - 1]) + np.int32(r1[w - 1])) >> 1
    r = a[h - 1]
    o = out[h - 1]
    for j in range(w - 1):
        o[j] = (np.int32(r[j]) + np.int32(r[j + 1])) >> 1
    o[w - 1] = r[w - 1]


@njit(**KERNEL)
def spatial_mask(img, thr, deriv, colsum, mask):
    """mask = (7x7 zero-padded box count of zero-derivative pixels) > thr.
    ``deriv`` (h, w) uint8 and ``colsum`` (chunks, w + 6) int32 are scratch."""
    h, w = img.shape
    nch = colsum.shape[0]
    for i in range(h):
        r = img[i]
        d = deriv[i]
        if i == h - 1:
            for j in range(w - 1):
                d[j] = 1 if r[j] == r[j + 1] else 0
        else:
            rn = img[i + 1]
            for j in range(w - 1):
                d[j] = 1 if (r[j] == r[j + 1]) & (r[j] == rn[j]) else 0
        if i == h - 1:
            d[w - 1] = 1
        else:
            d[w - 1] = 1 if r[w - 1] == img[i + 1, w - 1] else 0
    for c in range(nch):
        cs = colsum[c]
        for i in range((c * h) // nch, ((c + 1) * h) // nch):
            cs[:] = 0
            for k in range(max(i - 3, 0), min(i + 4, h)):
                dk = deriv[k]
                inner = cs[3:3 + w]
                for j in range(w):
                    inner[j] += dk[j]
            s = np.int32(0)
            for j in range(6):
                s += cs[j]
            m = mask[i]
            for j in range(w):
                s += cs[j + 6]
                m[j] = 1 if s > thr else 0
                s -= cs[j]


@njit(**KERNEL)
def decimate(src, out):
    """out = src[::2, ::2] (out has the rounded-up half size).  The loop
    runs to src's width // 2, the last column of an odd width apart: so
    written, LLVM vectorises it (172 -> 40 us for 1920x1080 uint16)."""
    for i in range(out.shape[0]):
        _even_cols(src[2 * i], out[i])


@njit(**KERNEL, inline="always")
def _even_cols(s, o):
    """o = s[::2] (o has the rounded-up half length); the loop bound comes
    from s's length so that LLVM vectorises it (see decimate)."""
    n = s.shape[0] // 2
    for j in range(n):
        o[j] = s[2 * j]
    if o.shape[0] > n:
        o[n] = s[2 * n]


@njit(**KERNEL, inline="always")
def _mode3(a, b, c):
    """The repeated one of three values, else their minimum (branch-free)."""
    m = min(min(a, b), c)
    r = b if b == c else m
    return a if (a == b) | (a == c) else r


@njit(**KERNEL)
def mode_filter(src, hm, out):
    """Separable 3-tap mode filter; ``hm`` is scratch of src's shape.
    Indexed in 2-D: with per-row views (``s = src[i]``) and no parfor around
    it, LLVM left the loops scalar (3x slower in CAMBI's frame, 20x on a
    whole 1080p plane)."""
    h, w = src.shape
    for i in range(h):
        hm[i, 0] = src[i, 0]
        for j in range(1, w - 1):
            hm[i, j] = _mode3(src[i, j - 1], src[i, j], src[i, j + 1])
        hm[i, w - 1] = src[i, w - 1]
    for j in range(w):
        out[0, j] = src[0, j]
        out[h - 1, j] = src[h - 1, j]
    for i in range(1, h - 1):
        for j in range(w):
            out[i, j] = _mode3(hm[i - 1, j], hm[i, j], hm[i + 1, j])


@njit(**KERNEL)
def topk_mean(cvals, k, nch, cnt_hi, sum_hi, cnt_lo):
    """Mean of the k largest values of cvals (2-D, float32 >= 0), summed in
    double.  A two-pass radix selection on the float bits (non-negative
    floats order as their bit patterns): per-chunk counts and sums of the top
    16 bits, then counts of the low 16 bits inside the bin of the k-th value.
    Scratch: cnt_hi (chunks, 65536) int64, sum_hi (chunks, 65536) float64,
    cnt_lo (chunks, 65536) int64."""
    h, w = cvals.shape
    nch = max(1, min(nch, cnt_hi.shape[0], sum_hi.shape[0], cnt_lo.shape[0]))
    for c in range(nch):
        ch = cnt_hi[c]
        sh = sum_hi[c]
        ch[:] = 0
        sh[:] = 0.0
        for i in range((c * h) // nch, ((c + 1) * h) // nch):
            r = cvals[i]
            for j in range(w):
                b = f32_bits(r[j]) >> 16
                ch[b] += 1
                sh[b] += np.float64(r[j])
    # the bin holding the k-th largest value
    total = 0.0
    above = 0
    hb = 65535
    while hb >= 0:
        n = np.int64(0)
        for c in range(nch):
            n += cnt_hi[c, hb]
        if above + n >= k:
            break
        above += n
        for c in range(nch):
            total += sum_hi[c, hb]
        hb -= 1
    need = k - above
    for c in range(nch):
        cl = cnt_lo[c]
        cl[:] = 0
        for i in range((c * h) // nch, ((c + 1) * h) // nch):
            r = cvals[i]
            for j in range(w):
                b = f32_bits(r[j])
                if (b >> 16) == hb:
                    cl[b & 0xFFFF] += 1
    lb = 65535
    while need > 0:
        n = np.int64(0)
        for c in range(nch):
            n += cnt_lo[c, lb]
        if n > 0:
            take = min(n, need)
            total += take * np.float64(bits_f32((np.uint32(hb) << 16) | np.uint32(lb)))
            need -= take
        lb -= 1
    return total / k


# ---------------------------------------------------------------- fast path
# The extractor runs these: fused, on C-contiguous buffers of each scale's
# exact size (LLVM vectorises unit-stride loops only), with the top-k pooling
# binned while the c values are computed.

#: first-level bins of the top-k pooling: the top 16 bits of a non-zero c
#: value minus those of 0.25.  Non-zero c values are w_d * p0 * pm / (p0 + pm)
#: with p0, pm >= 1 (at least 0.5) and below 9 * 65^2 / 2 < 2^15.
_BIN_BASE = 0x3E80
_NBINS = 0x4700 - _BIN_BASE
#: c values are multiples of 2^-25 (float32 >= 0.25): their sums are exact in
#: int64 fixed point with this scale
_FIX = 33554432.0


@njit(**KERNEL)
def _pre_row(src, yi, xs, ident, up, add, down, o):
    row = src[yi]
    if ident:
        for j in range(o.shape[0]):
            o[j] = ((np.int32(row[j]) << up) + add) >> down
    else:
        for j in range(o.shape[0]):
            o[j] = ((np.int32(row[xs[j]]) << up) + add) >> down


@njit(**KERNEL)
def preprocess(src, ys, xs, ident, up, add, down, dither, tmp, out):
    """out[i, j] = ((src[ys[i], xs[j]] << up) + add) >> down (src's own
    rows and columns when ``ident``), then, if ``dither``, anti_dither of
    that, in one pass; ``tmp`` (chunks, 2, w) uint16 scratch."""
    h, w = out.shape
    nch = max(1, min(tmp.shape[0], h))
    two = np.uint16(2)
    for c in range(nch):
        r0 = (c * h) // nch
        r1 = ((c + 1) * h) // nch
        if not dither:
            for i in range(r0, r1):
                _pre_row(src, ys[i], xs, ident, up, add, down, out[i])
        else:
            a = tmp[c, 0]
            b = tmp[c, 1]
            _pre_row(src, ys[r0], xs, ident, up, add, down, a)
            for i in range(r0, r1):
                o = out[i]
                if i + 1 < h:
                    _pre_row(src, ys[i + 1], xs, ident, up, add, down, b)
                    a1 = a[1:]
                    b1 = b[1:]
                    # 10-bit samples: the sum of four fits uint16 lanes
                    for j in range(w - 1):
                        o[j] = _shr(_add(_add(a[j], a1[j]), _add(b[j], b1[j])), two)
                    o[w - 1] = (np.int32(a[w - 1]) + np.int32(b[w - 1])) >> 1
                    a, b = b, a
                else:
                    a1 = a[1:]
                    for j in range(w - 1):
                        o[j] = (np.int32(a[j]) + np.int32(a1[j])) >> 1
                    o[w - 1] = a[w - 1]


@njit(**KERNEL)
def mask_decimated(img, thr, step, deriv, csp, mask):
    """spatial_mask(img)[::step, ::step] (step 1 or 2) into ``mask``; only
    the kept samples' 7x7 counts are computed.  ``deriv`` (h, w) uint8 and
    ``csp`` (chunks, 2 * w + 6) uint8 are scratch."""
    h, w = img.shape
    ho, wo = mask.shape
    # the 7x7 count (at most 49) against thr, in uint8: exact for any thr
    # (mask_index gives 7..27)
    t8 = np.uint8(min(max(thr, 0), 255))
    below = thr < 0
    nch = max(1, min(csp.shape[0], h))
    for c in range(nch):
        for i in range((c * h) // nch, ((c + 1) * h) // nch):
            r = img[i]
            d = deriv[i]
            r1 = r[1:]
            if i == h - 1:
                for j in range(w - 1):
                    d[j] = r[j] == r1[j]
                d[w - 1] = 1
            else:
                rn = img[i + 1]
                for j in range(w - 1):
                    d[j] = (r[j] == r1[j]) & (r[j] == rn[j])
                d[w - 1] = r[w - 1] == rn[w - 1]
    nch = max(1, min(csp.shape[0], ho))
    for c in range(nch):
        cs = csp[c, :w + 6]
        fl = csp[c, w + 6:]
        for j in range(3):
            cs[j] = 0
            cs[w + 3 + j] = 0
        inner = cs[3:3 + w]
        c1 = cs[1:]
        c2 = cs[2:]
        c3 = cs[3:]
        c4 = cs[4:]
        c5 = cs[5:]
        c6 = cs[6:]
        p0 = -1  # rows p0 .. p1 - 1 are summed in inner (none yet)
        p1 = -1
        for io in range((c * ho) // nch, ((c + 1) * ho) // nch):
            i = io * step
            k0 = max(i - 3, 0)
            k1 = min(i + 4, h)
            if p0 < 0 or k0 >= p1:
                for j in range(w):
                    inner[j] = 0
                p0 = k0
                p1 = k0
            # slide the window's sum (uint8, exact: at most 7) to k0 .. k1 - 1
            for k in range(p0, k0):
                dk = deriv[k]
                for j in range(w):
                    inner[j] -= dk[j]
            for k in range(p1, k1):
                dk = deriv[k]
                for j in range(w):
                    inner[j] += dk[j]
            p0 = k0
            p1 = k1
            m = mask[io]
            # every column's 7-sum (at most 49) in uint8 lanes, then the kept
            # columns (numpy's ufuncs on uint8 scalars stay uint8: 64 lanes a
            # vector; 256 -> 74 us for 1080p with the speed-up)
            for j in range(w):
                sj = _add(_add(_add(cs[j], c1[j]), _add(c2[j], c3[j])),
                          _add(_add(c4[j], c5[j]), c6[j]))
                fl[j] = (sj > t8) | below
            if step == 1:
                for j in range(wo):
                    m[j] = fl[j]
            else:
                _even_cols(fl, m)


@njit(**KERNEL)
def _run_bits(ir_, mr, w, flg, sw, ew):
    """Bit j of sw (of ew): a run of equal masked values starts (ends) at
    column j.  flg[j] = 1 where no run goes on from column j - 1 to j (j = 0
    and j = w included); vectorised byte flags, then packed 64 a word."""
    a = ir_[:w - 1]
    c = ir_[1:w]
    ma = mr[:w - 1]
    mc = mr[1:w]
    f1 = flg[1:w]
    for j in range(w - 1):
        f1[j] = np.uint8((ma[j] == 0) | (mc[j] == 0) | (a[j] != c[j]))
    flg[0] = 1
    flg[w] = 1
    for k in range((w + 63) >> 6):
        j0 = k << 6
        n = min(64, w - j0)
        fs = flg[j0:j0 + n]
        fe = flg[j0 + 1:j0 + 1 + n]
        ms = mr[j0:j0 + n]
        st = np.uint64(0)
        en = np.uint64(0)
        for t in range(n):
            m = np.uint64(ms[t] != 0)
            st |= (m & np.uint64(fs[t])) << np.uint64(t)
            en |= (m & np.uint64(fe[t])) << np.uint64(t)
        sw[k] = st
        ew[k] = en


@njit(**KERNEL)
def find_runs(img, mask, base, size, ra, rb, rv, rn, npx, flg, sw, ew):
    """Runs of equal masked in-band values of each row: columns ra..rb,
    histogram row rv (value - base); rn: runs per row, npx: their pixels.
    Scratch: flg (w + 1) uint8, sw and ew ((w + 63) // 64) uint64.  The
    k-th run start of a row (a set bit of sw, found with ctz) pairs with its
    k-th run end: 3x faster than walking the row pixel by pixel, whose
    branches follow the picture (runs are ~8 pixels on natural footage)."""
    h, w = img.shape
    for i in range(h):
        ir_ = img[i]
        _run_bits(ir_, mask[i], w, flg, sw, ew)
        n = 0
        p = 0
        ke = 0
        eb = ew[0]
        for k in range((w + 63) >> 6):
            sb = sw[k]
            while sb != 0:
                a = (k << 6) + np.int64(_ctz64(sb))
                sb &= sb - np.uint64(1)
                while eb == 0:
                    ke += 1
                    eb = ew[ke]
                b = (ke << 6) + np.int64(_ctz64(eb))
                eb &= eb - np.uint64(1)
                cv = np.int64(ir_[a]) - base
                if 0 <= cv < size:
                    ra[i, n] = a
                    rb[i, n] = b
                    rv[i, n] = cv
                    n += 1
                    p += b - a + 1
        rn[i] = n
        npx[i] = p


@intrinsic
def _trap16(typingctx, row, lo, n, kk0, m, tot, sign):
    """row[lo + l] += sign * min(kk0 + l + 1, m, tot - kk0 - l) for l < n
    (n <= 16) in one vector of 16 uint16 lanes (wrapping, as the scalar
    loop); lanes from n on add 0.  16 columns from lo are read and written:
    lo + 16 must be within the row."""
    def codegen(context, builder, sig, args):
        rowv, lov, nv, kkv, mv, totv, sgv = args
        i16, i32 = ir.IntType(16), ir.IntType(32)
        L = 16
        vi = ir.VectorType(i32, L)
        vh = ir.VectorType(i16, L)

        def splat(x):
            return ir_splat(builder, x, vi)

        lanes = ir.Constant(vi, list(range(L)))
        kk = builder.add(splat(kkv), lanes)
        a = builder.add(kk, ir.Constant(vi, [1] * L))
        mm = splat(mv)
        v = builder.select(builder.icmp_signed("<", a, mm), a, mm)
        t = builder.sub(splat(totv), kk)
        v = builder.select(builder.icmp_signed("<", t, v), t, v)
        v = builder.select(builder.icmp_signed("<", lanes, splat(nv)), v,
                           ir.Constant(vi, [0] * L))
        v = builder.mul(v, splat(sgv))
        arr = context.make_array(sig.args[0])(context, builder, rowv)
        p = builder.bitcast(builder.gep(arr.data, [lov]), vh.as_pointer())
        builder.store(builder.add(builder.load(p, align=2), builder.trunc(v, vh)), p, align=2)
        return context.get_dummy_value()

    return types.void(row, lo, n, kk0, m, tot, sign), codegen


@njit(**KERNEL)
def _runs_add(hist, r, ra, rb, rv, rn, pad, w, sign):
    """Add (sign 1) or remove (sign -1) the runs of row r: each pixel adds 1
    to its value's histogram over columns j - pad .. j + pad, so a run a..b
    adds, at column k, the number of its pixels within pad of k (a
    trapezoid over a - pad .. b + pad).  16 columns a vector (_trap16: a
    trapezoid is ~25 columns on natural footage, where a loop that LLVM
    vectorises spends most of its time in its scalar remainder), the last
    ones of a row column by column."""
    span = 2 * pad + 1
    for q in range(rn[r]):
        a = np.int64(ra[r, q])
        b = np.int64(rb[r, q])
        s = a - pad
        e = b + pad + 1
        m = min(b - a + 1, span)
        tot = e - s
        lo = max(s, 0)
        hi = min(e, w)
        off = lo - s
        row = hist[np.int64(rv[r, q])]
        k = 0
        while k < hi - lo and lo + k + 16 <= w:
            _trap16(row, lo + k, min(hi - lo - k, 16), k + off, m, tot, sign)
            k += 16
        hs = row[lo + k:hi]
        o2 = off + k
        if sign > 0:
            for j in range(hi - lo - k):
                kk = j + o2
                hs[j] += np.uint16(min(min(kk + 1, m), tot - kk))
        else:
            for j in range(hi - lo - k):
                kk = j + o2
                hs[j] -= np.uint16(min(min(kk + 1, m), tot - kk))


@njit(**KERNEL)
def _c_runs(hist, i, ra, rb, rv, rn, base, nd, tvi, vlt, weights, lut, buf, crow, store, tot):
    """c values of row i's runs, each run's into buf (float32, w) first;
    adds their non-zero count and fixed-point sum to tot[0], tot[1].  With
    ``store`` the row's c values go to crow too (zero outside its runs).
    Inside a run the value, so the set of contrast steps, is constant: the
    loop over the run's columns is the inner one (vectorisable)."""
    top = hist.shape[0] - 1
    if store:
        crow[:] = 0.0
    nz = np.int64(0)
    sm = np.int64(0)
    for q in range(rn[i]):
        a = np.int64(ra[i, q])
        b = np.int64(rb[i, q])
        cv = np.int64(rv[i, q])
        value = cv + base + nd
        h0 = hist[cv, a:b + 1]
        cr = buf[:b + 1 - a]
        # the first visible step writes cr, the next ones take the max; a
        # run with none has c = 0 (nothing to add, crow already 0)
        first = True
        for d in range(nd):
            if (value <= tvi[d]) & (value + d + 1 > vlt):
                h1 = hist[min(cv + d + 1, top), a:b + 1]
                # int32 lanes: w_d * p0 * pm <= 9 * 65^4 < 2^31
                wd = np.int32(weights[d])
                lo = hist[cv - d - 1, a:b + 1] if cv - d - 1 >= 0 else h1
                for j in range(cr.shape[0]):
                    p0 = np.int32(h0[j])
                    pm = np.int32(max(h1[j], lo[j]))
                    val = np.float32(_mul(_mul(wd, p0), pm)) * lut[_add(pm, p0)]
                    cr[j] = val if first else max(cr[j], val)
                first = False
        if first:
            continue
        for j in range(cr.shape[0]):
            v = cr[j]
            nz += np.int64(v > 0)
            sm += np.int64(np.float64(v) * _FIX)
        if store:
            co = crow[a:b + 1]
            for j in range(cr.shape[0]):
                co[j] = cr[j]
    tot[0] += nz
    tot[1] += sm


@njit(**KERNEL)
def split_rows(rn, npx, pad, w, bounds):
    """Row chunk boundaries (bounds[0] = 0 .. bounds[-1] = h) that balance
    c_values' work: per row about its c values (npx), the trapezoids
    of its runs (added and removed) and a per-row constant."""
    h = rn.shape[0]
    nch = bounds.shape[0] - 1
    total = 0.0
    for i in range(h):
        total += 4.0 * npx[i] + 2.0 * (2 * pad + 1) * rn[i] + w / 8.0
    acc = 0.0
    c = 1
    bounds[0] = 0
    for i in range(h):
        acc += 4.0 * npx[i] + 2.0 * (2 * pad + 1) * rn[i] + w / 8.0
        while c < nch and acc >= total * c / nch:
            bounds[c] = i + 1
            c += 1
    while c < nch:
        bounds[c] = h
        c += 1
    bounds[nch] = h


@njit(**KERNEL)
def c_values(img, pad, base, size, nd, tvi, vlt, weights, lut, ra, rb, rv, rn,
             hists, bounds, buf, cvals, store, tot):
    """c value of every pixel, from sliding windowed histograms of the
    masked pixels' values (rows base .. base + size - 1, built from the runs
    of find_runs); ``hists`` (chunks, size, w) uint16: one per row chunk,
    chunk c being rows bounds[c] .. bounds[c + 1] - 1; ``buf`` (w) float32
    scratch.  The count of the non-zero c values (tot[0]) and their sum in
    fixed point (tot[1]): when there are no more of them
    than the top-k pooling takes, the pooled value is that sum (the rest
    are zeros) and the values themselves are not needed (see Cambi.score).
    With ``store`` every pixel's c value goes to cvals (h, w) too (zero
    outside the runs); without, cvals is not touched: writing 2.8 M zeros
    and values a 1080p frame cost ~0.4 ms.  Returns the number of chunks
    used."""
    h, w = img.shape
    nch = bounds.shape[0] - 1
    tot[0] = 0
    tot[1] = 0
    for c in range(nch):
        hist = hists[c]
        hist[:, :] = 0
        r0 = bounds[c]
        r1 = bounds[c + 1]
        for r in range(max(r0 - pad, 0), min(r0 + pad + 1, h)):
            _runs_add(hist, r, ra, rb, rv, rn, pad, w, 1)
        for i in range(r0, r1):
            if i > r0:
                if i - pad - 1 >= 0:
                    _runs_add(hist, i - pad - 1, ra, rb, rv, rn, pad, w, -1)
                if i + pad < h:
                    _runs_add(hist, i + pad, ra, rb, rv, rn, pad, w, 1)
            _c_runs(hist, i, ra, rb, rv, rn, base, nd, tvi, vlt, weights, lut, buf,
                    cvals[i], store, tot)
    return nch


@njit(**KERNEL)
def bin_cvals(cvals, bounds, nch, cnt, fsum):
    """Per chunk of rows (bounds, as c_values cut them), the count and the
    fixed-point sum of the non-zero c values in each top-16-bit bin (cnt,
    fsum (chunks, _NBINS) int64), for topk_binned."""
    for c in range(nch):
        cn = cnt[c]
        fs = fsum[c]
        cn[:] = 0
        fs[:] = 0
        for i in range(bounds[c], bounds[c + 1]):
            crow = cvals[i]
            for j in range(crow.shape[0]):
                if crow[j] > 0:
                    bn = np.int64(f32_bits(crow[j]) >> 16) - _BIN_BASE
                    cn[bn] += 1
                    fs[bn] += np.int64(np.float64(crow[j]) * _FIX)


@njit(**KERNEL)
def topk_binned(cvals, k, cnt, fsum, nch, cnt_lo):
    """Mean of the k largest c values from bin_cvals' bins (exact
    sums); ``cnt_lo`` (chunks, 65536) int64 scratch for the bin of the k-th."""
    h, w = cvals.shape
    above = np.int64(0)
    total = np.int64(0)
    hb = _NBINS - 1
    while hb >= 1:
        n = np.int64(0)
        for c in range(nch):
            n += cnt[c, hb]
        if above + n >= k:
            break
        above += n
        for c in range(nch):
            total += fsum[c, hb]
        hb -= 1
    need = k - above
    if hb < 1 or need <= 0:  # the rest are zeros
        return np.float64(total) / _FIX / k
    key = np.uint32(hb + _BIN_BASE)
    npc = max(1, min(cnt_lo.shape[0], h))
    for c in range(npc):
        cl = cnt_lo[c]
        cl[:] = 0
        for i in range((c * h) // npc, ((c + 1) * h) // npc):
            r = cvals[i]
            for j in range(w):
                b = f32_bits(r[j])
                if (b >> 16) == key:
                    cl[b & 0xFFFF] += 1
    lb = 65535
    while need > 0:
        n = np.int64(0)
        for c in range(npc):
            n += cnt_lo[c, lb]
        if n > 0:
            take = min(n, need)
            total += take * np.int64(np.float64(bits_f32((key << 16) | np.uint32(lb))) * _FIX)
            need -= take
        lb -= 1
    return np.float64(total) / _FIX / k


# ---------------------------------------------------------------- extractor

def _as_bool(v, name):
    if isinstance(v, str):
        if v.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"cambi option {name} must be a boolean, got {v!r}")
        return v.lower() in ("true", "1")
    return bool(v)


class _Geometry:
    """Processing size, window and buffers' needs of one input (dis or ref)."""

    def __init__(self, in_w, in_h, w, h, window, speedup):
        self.w, self.h = w, h
        self.window = adjust_window(window, w, h, speedup)
        self.pad = self.window >> 1
        self.mask_thr = mask_index(w, h)
        same = in_w == w and in_h == h
        self.ys = np.arange(h, dtype=np.int64) if same else nn_indices(in_h, h)
        self.xs = np.arange(w, dtype=np.int64) if same else nn_indices(in_w, w)
        sizes = []
        sw, sh = w, h
        for s in range(NUM_SCALES):
            if s > 0 or speedup:
                sw, sh = (sw + 1) >> 1, (sh + 1) >> 1
            sizes.append((sw, sh))
        self.sizes = sizes


@register
class Cambi(FeatureExtractor):
    name = "cambi"
    reads_chroma = False  # the luma planes only
    warm_size = (256, 256)  # >= MIN_WIDTH_HEIGHT; the kernels of any larger frame (tests/test_warmup.py)
    provides = ("cambi", "cambi_source", "cambi_full_reference")
    default_options = {
        "cambi_max_val": 1000.0,
        "enc_width": 0,
        "enc_height": 0,
        "enc_bitdepth": 0,
        "src_width": 0,
        "src_height": 0,
        "window_size": 65,
        "topk": _DEFAULT_TOPK,
        "cambi_topk": _DEFAULT_TOPK,
        "tvi_threshold": 0.019,
        "cambi_vis_lum_threshold": 0.0,
        "max_log_contrast": 2,
        "heatmaps_path": None,
        "full_ref": False,
        "eotf": _DEFAULT_EOTF,
        "cambi_eotf": _DEFAULT_EOTF,
        "cambi_high_res_speedup": 0,
    }

    def __init__(self, **options):
        options = {OPTION_ALIASES.get(k, k): v for k, v in options.items()}
        if "full_ref" in options:
            options["full_ref"] = _as_bool(options["full_ref"], "full_ref")
        super().__init__(**options)
        o = self.options
        for k in _INT_OPTS:
            v = o[k]
            if isinstance(v, str):
                v = float(v)
            if float(v) != int(v):
                raise ValueError(f"cambi option {k} must be an integer, got {o[k]!r}")
            o[k] = int(v)
        for k, (lo, hi) in _RANGES.items():
            o[k] = type(lo)(float(o[k])) if k not in _INT_OPTS else o[k]
            if not lo <= o[k] <= hi:
                raise ValueError(f"cambi option {k}={o[k]} outside [{lo}, {hi}]")
        for k, (lo, hi) in _SIZE_RANGES.items():
            if o[k] != 0 and not lo <= o[k] <= hi:
                raise ValueError(f"cambi option {k}={o[k]} outside [{lo}, {hi}] (or 0: unset)")
        for k in ("eotf", "cambi_eotf"):
            if o[k] not in EOTFS:
                raise ValueError(f"cambi option {k}={o[k]!r}: use one of {sorted(EOTFS)}")
        eotf_name = o["cambi_eotf"] if o["cambi_eotf"] != _DEFAULT_EOTF else o["eotf"]
        self.eotf = eotf_name
        eotf = EOTFS[eotf_name]
        self.topk = float(o["topk"]) if o["topk"] != _DEFAULT_TOPK else float(o["cambi_topk"])
        nd = 1 << o["max_log_contrast"]
        self.num_diffs = nd
        self.tvi = np.array([tvi_for_diff(d + 1, float(o["tvi_threshold"]), eotf) + nd
                             for d in range(nd)], dtype=np.int64)
        self.vlt = vlt_luma(float(o["cambi_vis_lum_threshold"]), eotf)
        self.weights = np.array(CONTRAST_WEIGHTS[:nd], dtype=np.int64)
        self.band_base = max(self.vlt - 3 * nd + 1, 0)
        self.band_size = int(self.tvi[-1]) + 1 - self.band_base

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        o = self.options
        w, h = fmt.width, fmt.height
        self._bpc = fmt.bitdepth
        enc_bd = o["enc_bitdepth"] or fmt.bitdepth
        ew, eh = o["enc_width"], o["enc_height"]
        if ew == 0 or eh == 0:
            ew, eh = w, h
        sw, sh = o["src_width"], o["src_height"]
        if sw == 0 or sh == 0:
            sw, sh = w, h
        if eh > h or ew > w:  # no upscaling back to an encode resolution
            ew, eh = w, h
        if ew < MIN_WIDTH_HEIGHT and eh < MIN_WIDTH_HEIGHT:
            raise ValueError(f"cambi needs an encode resolution of at least {MIN_WIDTH_HEIGHT} "
                             f"pixels in one direction, got {ew}x{eh}")
        if sw < MIN_WIDTH_HEIGHT and sh < MIN_WIDTH_HEIGHT:
            raise ValueError(f"cambi needs a source resolution of at least {MIN_WIDTH_HEIGHT} "
                             f"pixels in one direction, got {sw}x{sh}")
        if (sw > ew and sh < eh) or (sw < ew and sh > eh):
            raise ValueError(f"cambi: source resolution {sw}x{sh} and encode resolution "
                             f"{ew}x{eh} must not be scaled in opposite directions")
        hrs = o["cambi_high_res_speedup"]
        self.speedup = hrs in HIGH_RES_THRESHOLDS and ew * eh >= HIGH_RES_THRESHOLDS[hrs]
        self.full_ref = bool(o["full_ref"])
        self.enc_bitdepth = enc_bd
        self._dis = _Geometry(w, h, ew, eh, o["window_size"], self.speedup)
        self._ref = _Geometry(w, h, sw, sh, o["window_size"], self.speedup)
        geos = [self._dis] + ([self._ref] if self.full_ref else [])
        max_window = max(self._dis.window, self._ref.window)
        if max_window * max_window >= LUT_SIZE:
            raise ValueError(f"cambi: window {max_window} (window_size {o['window_size']} "
                             f"adjusted to the resolution) is too large; libvmaf's limit is 65")
        # 10-bit conversion
        b = fmt.bitdepth
        if b <= 8:
            self._conv = (10 - b, 0, 0)
        elif b == 9:
            self._conv = (1, 0, 0)
        else:
            self._conv = (0, (1 << (b - 11)) if b > 10 else 0, b - 10)
        nch = max(1, min(KERNEL_THREADS, 8))
        self._nch = nch
        self._nch_pool = nch
        for g in geos:
            self._alloc(g, nch)
        self._cnt_lo = np.zeros((nch, 65536), dtype=np.int64)
        self._heat = None
        if o["heatmaps_path"]:
            self._open_heatmaps(str(o["heatmaps_path"]))

    # -- heatmaps ------------------------------------------------------------
    def _open_heatmaps(self, path):
        os.makedirs(path, exist_ok=True)
        self._heat = []
        sw, sh = self._dis.w, self._dis.h
        for s in range(NUM_SCALES):  # named as libvmaf names them
            fn = os.path.join(path, f"cambi_heatmap_scale_{s}_{sw}x{sh}_16b.gray")
            self._heat.append(open(fn, "wb"))
            sw, sh = (sw + 1) >> 1, (sh + 1) >> 1
        max_c = int(self.weights.max()) * self._dis.window * self._dis.window // 4
        self._heat_scale = 65535.0 / max_c

    def _write_heatmap(self, scale, cv, frame):
        h, w = cv.shape
        data = (self._heat_scale * cv.astype(np.float64)).astype(np.uint16)
        f = self._heat[scale]
        f.seek(frame * h * w * 2)
        f.write(data.astype("<u2").tobytes())
        f.flush()

    def close(self):
        if self._heat:
            for f in self._heat:
                f.close()
            self._heat = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- buffers ---------------------------------------------------------------
    def _alloc(self, g, nch):
        """C-contiguous buffers of each scale's exact size, on the geometry."""
        u16, u8 = np.uint16, np.uint8
        w, h = g.w, g.h
        g.ident = (g.ys.shape[0] == h and g.xs.shape[0] == w
                   and bool(np.all(g.ys == np.arange(h))) and bool(np.all(g.xs == np.arange(w))))
        g.cur = np.zeros((h, w), dtype=u16)
        g.tmp = np.zeros((nch, 2, w), dtype=u16)
        g.deriv = np.zeros((h, w), dtype=u8)
        g.csp = np.zeros((nch, 2 * w + 6), dtype=u8)
        g.raw, g.filt, g.hm, g.mask, g.cvals, g.hists = [], [], [], [], [], []
        for s, (sw, sh) in enumerate(g.sizes):
            g.raw.append(np.zeros((sh, sw), dtype=u16) if (s > 0 or self.speedup) else None)
            g.filt.append(np.zeros((sh, sw), dtype=u16))
            g.hm.append(np.zeros((sh, sw), dtype=u16))
            g.mask.append(np.zeros((sh, sw), dtype=u8))
            g.cvals.append(np.zeros((sh, sw), dtype=np.float32))
            hn = max(1, min(nch, sh // max(g.window, 1)))
            g.hists.append(np.zeros((hn, self.band_size, sw), dtype=u16))
        # runs of each row: columns, histogram row (int16: widths below 2^15)
        g.runs = [tuple(np.zeros((sh, sw), dtype=np.int16) for _ in range(3))
                  + (np.zeros(sh, dtype=np.int64), np.zeros(sh, dtype=np.int64))
                  for sw, sh in g.sizes]
        g.run_scratch = [(np.zeros(sw + 1, dtype=u8), np.zeros((sw + 63) // 64, dtype=np.uint64),
                          np.zeros((sw + 63) // 64, dtype=np.uint64)) for sw, sh in g.sizes]
        g.bounds = [np.zeros(hs.shape[0] + 1, dtype=np.int64) for hs in g.hists]
        g.tot = np.zeros(2, dtype=np.int64)
        g.cbuf = np.zeros(w, dtype=np.float32)
        g.cnt = np.zeros((nch, _NBINS), dtype=np.int64)
        g.fsum = np.zeros((nch, _NBINS), dtype=np.int64)

    # -- one picture ---------------------------------------------------------
    def warm_rare(self, ref, dis) -> None:
        """For the warm-up (vqa_core.warmup): also run the pooling's binned
        branch, taken when more than ``topk`` of a scale's c values are not
        zero (strongly banded pictures), which its random frames never
        reach: a run meeting such a picture then compiles nothing."""
        y = np.empty_like(dis[0])
        h, w = y.shape
        # a staircase of one-code steps every 16 columns (8-bit codes 100..):
        # runs of masked pixels with visible neighbouring steps
        step = 1 << max(self._bpc - 8, 0)
        y[:] = ((100 + np.arange(w) // 16) * step).astype(y.dtype)
        self.score(y, topk=1e-4)

    def score(self, y: np.ndarray, geo: _Geometry | None = None, heat_frame: int | None = None,
              topk: float | None = None) -> float:
        """CAMBI of one luma plane (unclipped), at the distorted side's
        geometry unless ``geo`` is given, pooling the ``topk`` fraction
        (the option's unless given)."""
        topk = self.topk if topk is None else topk
        g = geo or self._dis
        cur = g.cur
        preprocess(y, g.ys, g.xs, g.ident, *self._conv, self.enc_bitdepth < 10, g.tmp, cur)
        step = 2 if self.speedup else 1
        mask = g.mask[0]
        mask_decimated(cur, g.mask_thr, step, g.deriv, g.csp, mask)
        total = 0.0
        for s, (sw, sh) in enumerate(g.sizes):
            if s > 0 or self.speedup:
                raw = g.raw[s]
                decimate(cur, raw)
                if s > 0:
                    decimate(g.mask[s - 1], g.mask[s])
                    mask = g.mask[s]
            else:
                raw = cur
            cur = g.filt[s]
            mode_filter(raw, g.hm[s], cur)
            cv = g.cvals[s]
            ra, rb, rv, rn, npx = g.runs[s]
            find_runs(cur, mask, self.band_base, self.band_size, ra, rb, rv, rn, npx,
                      *g.run_scratch[s])
            hists = g.hists[s]
            bounds = g.bounds[s]
            split_rows(rn, npx, g.pad, sw, bounds)
            heat = heat_frame is not None and bool(self._heat)
            args = (cur, g.pad, self.band_base, self.band_size, self.num_diffs, self.tvi,
                    self.vlt, self.weights, RECIPROCAL_LUT, ra, rb, rv, rn, hists, bounds,
                    g.cbuf, cv)
            nch = c_values(*args, heat, g.tot)
            if heat:
                self._write_heatmap(s, cv, heat_frame)
            n = sw * sh
            k = min(max(int(topk * n), 1), n)
            if g.tot[0] <= k:
                # the k largest are every non-zero value and zeros: their
                # exact sum (topk_binned's result when its bins run out)
                pooled = float(g.tot[1]) / _FIX / k
            else:
                if not heat:  # the values themselves are needed: again, kept
                    c_values(*args, True, g.tot)
                bin_cvals(cv, bounds, nch, g.cnt, g.fsum)
                pooled = topk_binned(cv, k, g.cnt, g.fsum, nch, self._cnt_lo)
            total += pooled * SCALE_WEIGHTS[s]
        return total / (g.window * g.window)

    def extract(self, index, ref, dis):
        cap = float(self.options["cambi_max_val"])
        d = self.score(dis[0], self._dis, heat_frame=index if self._heat else None)
        out = {"cambi": min(d, cap)}
        if self.full_ref:
            s = self.score(ref[0], self._ref)
            out["cambi_source"] = min(s, cap)
            out["cambi_full_reference"] = min(max(0.0, d - s), cap)
        return [(index, out)]

    @property
    def ordered(self) -> bool:
        return bool(self._heat)  # one set of heatmap files, frames in order

    def flush(self):
        if self._heat:
            for f in self._heat:
                f.flush()
        return []
