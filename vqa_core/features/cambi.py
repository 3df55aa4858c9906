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
and AVX2 paths give the same c maps); only the order of the double sums of
the top-k pooling differs (vqa selects the top k by a radix count on the
float bits).  Against ffmpeg's libvmaf filter the scores agree to its printed
6 decimals (|diff| <= 5e-7) for 8, 10 and 12-bit input, encode resolutions,
the speed-up and full-reference mode.
"""
from __future__ import annotations

import math
import os

import numba
import numpy as np
from numba import njit, prange

from .base import FeatureExtractor, FrameFormat
from .registry import register

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

@njit(cache=True, nogil=True, parallel=True)
def to_10bit(src, ys, xs, up, add, down, out):
    """out[i, j] = ((src[ys[i], xs[j]] << up) + add) >> down."""
    for i in prange(ys.shape[0]):
        row = src[ys[i]]
        o = out[i]
        for j in range(xs.shape[0]):
            o[j] = ((np.int32(row[xs[j]]) << up) + add) >> down


@njit(cache=True, nogil=True, parallel=True)
def anti_dither(a, out):
    """Floor mean of the 2x2 block right/below (2x1 on the last row/column)."""
    h, w = a.shape
    for i in prange(h - 1):
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


@njit(cache=True, nogil=True, parallel=True)
def spatial_mask(img, thr, deriv, colsum, mask):
    """mask = (7x7 zero-padded box count of zero-derivative pixels) > thr.
    ``deriv`` (h, w) uint8 and ``colsum`` (chunks, w + 6) int32 are scratch."""
    h, w = img.shape
    nch = colsum.shape[0]
    for i in prange(h):
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
    for c in prange(nch):
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


@njit(cache=True, nogil=True, parallel=True)
def decimate(src, out):
    """out = src[::2, ::2] (out has the rounded-up half size)."""
    h, w = out.shape
    for i in prange(h):
        s = src[2 * i]
        o = out[i]
        for j in range(w):
            o[j] = s[2 * j]


@njit(cache=True, nogil=True, inline="always")
def _mode3(a, b, c):
    """The repeated one of three values, else their minimum (branch-free)."""
    m = min(min(a, b), c)
    r = b if b == c else m
    return a if (a == b) | (a == c) else r


@njit(cache=True, nogil=True, parallel=True)
def mode_filter(src, hm, out):
    """Separable 3-tap mode filter; ``hm`` is scratch of src's shape."""
    h, w = src.shape
    for i in prange(h):
        s = src[i]
        m = hm[i]
        m[0] = s[0]
        if w > 2:
            sl = s[0:w - 2]
            sc = s[1:w - 1]
            sr = s[2:w]
            mc = m[1:w - 1]
            for j in range(w - 2):
                mc[j] = _mode3(sl[j], sc[j], sr[j])
        m[w - 1] = s[w - 1]
    for i in prange(h):
        o = out[i]
        if i == 0 or i == h - 1:
            s = src[i]
            for j in range(w):
                o[j] = s[j]
        else:
            a = hm[i - 1]
            b = hm[i]
            c = hm[i + 1]
            for j in range(w):
                o[j] = _mode3(a[j], b[j], c[j])


@njit(cache=True, nogil=True)
def _add_row(hist, img, mask, r, pad, base, size, sign):
    """Add (sign 1) or remove (sign -1) the masked in-band pixels of row r:
    each adds 1 to its value's histogram over columns j - pad .. j + pad.
    A run a..b of equal values adds, at column k, the number of its pixels
    within pad of k, in one pass over a - pad .. b + pad."""
    w = img.shape[1]
    ir = img[r]
    mr = mask[r]
    j = 0
    while j < w:
        if mr[j] == 0:
            j += 1
            continue
        v = np.int64(ir[j])
        a = j
        while (j + 1 < w) and (mr[j + 1] != 0) and (np.int64(ir[j + 1]) == v):
            j += 1
        b = j
        j += 1
        cv = v - base
        if cv < 0 or cv >= size:
            continue
        hv = hist[cv]
        lo = max(a - pad, 0)
        hi = min(b + pad + 1, w)
        if sign > 0:
            for k in range(lo, hi):
                hv[k] += np.uint16(min(k + pad, b) - max(k - pad, a) + 1)
        else:
            for k in range(lo, hi):
                hv[k] -= np.uint16(min(k + pad, b) - max(k - pad, a) + 1)


@njit(cache=True, nogil=True)
def _c_row(hist, img, mask, i, base, size, nd, tvi, vlt, weights, lut, crow):
    w = img.shape[1]
    ir = img[i]
    mr = mask[i]
    top = size - 1
    for j in range(w):
        cval = np.float32(0.0)
        if mr[j]:
            v = np.int64(ir[j])
            cv = v - base
            if 0 <= cv < size:
                value = v + nd
                p0 = np.int64(hist[cv, j])
                for d in range(nd):
                    if (value <= tvi[d]) & (value + d + 1 > vlt):
                        p1 = np.int64(hist[min(cv + d + 1, top), j])
                        k2 = cv - d - 1
                        p2 = np.int64(hist[k2, j]) if k2 >= 0 else np.int64(0)
                        pm = p1 if p1 > p2 else p2
                        val = np.float32(weights[d] * p0 * pm) * lut[pm + p0]
                        if val > cval:
                            cval = val
        crow[j] = cval


@njit(cache=True, nogil=True, parallel=True)
def c_values(img, mask, pad, base, size, nd, tvi, vlt, weights, lut, hists, nch, cvals):
    """c value of every pixel into cvals (h, w), from sliding windowed
    histograms of the masked pixels' values (rows base .. base + size - 1);
    ``hists`` (chunks, size, >= w) uint16: one per row chunk."""
    h, w = img.shape
    nch = max(1, min(nch, hists.shape[0]))
    for c in prange(nch):
        hist = hists[c, :size, :w]
        hist[:, :] = 0
        r0 = (c * h) // nch
        r1 = ((c + 1) * h) // nch
        for r in range(max(r0 - pad, 0), min(r0 + pad + 1, h)):
            _add_row(hist, img, mask, r, pad, base, size, 1)
        for i in range(r0, r1):
            if i > r0:
                if i - pad - 1 >= 0:
                    _add_row(hist, img, mask, i - pad - 1, pad, base, size, -1)
                if i + pad < h:
                    _add_row(hist, img, mask, i + pad, pad, base, size, 1)
            _c_row(hist, img, mask, i, base, size, nd, tvi, vlt, weights, lut, cvals[i])


@njit(cache=True, nogil=True, parallel=True)
def topk_mean(cvals, k, nch, cnt_hi, sum_hi, cnt_lo, one):
    """Mean of the k largest values of cvals (2-D, float32 >= 0), summed in
    double.  A two-pass radix selection on the float bits (non-negative
    floats order as their bit patterns): per-chunk counts and sums of the top
    16 bits, then counts of the low 16 bits inside the bin of the k-th value.
    Scratch: cnt_hi (chunks, 65536) int64, sum_hi (chunks, 65536) float64,
    cnt_lo (chunks, 65536) int64, one (1,) uint32."""
    h, w = cvals.shape
    nch = max(1, min(nch, cnt_hi.shape[0], sum_hi.shape[0], cnt_lo.shape[0]))
    for c in prange(nch):
        ch = cnt_hi[c]
        sh = sum_hi[c]
        ch[:] = 0
        sh[:] = 0.0
        for i in range((c * h) // nch, ((c + 1) * h) // nch):
            bits = cvals[i].view(np.uint32)
            r = cvals[i]
            for j in range(w):
                b = bits[j] >> 16
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
    for c in prange(nch):
        cl = cnt_lo[c]
        cl[:] = 0
        for i in range((c * h) // nch, ((c + 1) * h) // nch):
            bits = cvals[i].view(np.uint32)
            for j in range(w):
                if (bits[j] >> 16) == hb:
                    cl[bits[j] & 0xFFFF] += 1
    lb = 65535
    while need > 0:
        n = np.int64(0)
        for c in range(nch):
            n += cnt_lo[c, lb]
        if n > 0:
            take = min(n, need)
            one[0] = (np.uint32(hb) << 16) | np.uint32(lb)
            total += take * np.float64(one.view(np.float32)[0])
            need -= take
        lb -= 1
    return total / k


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
        aw = max(g.w for g in geos)
        ah = max(g.h for g in geos)
        u16 = np.uint16
        self._pre = np.zeros((ah, aw), dtype=u16)
        self._dith = np.zeros((ah, aw), dtype=u16)
        self._raw = np.zeros((ah, aw), dtype=u16)
        self._filt = np.zeros((ah, aw), dtype=u16)
        self._hm = np.zeros((ah, aw), dtype=u16)
        self._deriv = np.zeros((ah, aw), dtype=np.uint8)
        self._masks = (np.zeros((ah, aw), dtype=np.uint8), np.zeros((ah, aw), dtype=np.uint8))
        self._cvals = np.zeros(ah * aw, dtype=np.float32)
        self._nch = max(1, min(numba.get_num_threads(), 8))
        self._nch_pool = self._nch
        self._cnt_hi = np.zeros((self._nch_pool, 65536), dtype=np.int64)
        self._sum_hi = np.zeros((self._nch_pool, 65536), dtype=np.float64)
        self._cnt_lo = np.zeros((self._nch_pool, 65536), dtype=np.int64)
        self._one = np.zeros(1, dtype=np.uint32)
        self._colsum = np.zeros((self._nch, aw + 6), dtype=np.int32)
        self._hists = np.zeros((self._nch, self.band_size, aw), dtype=np.uint16)
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

    # -- one picture ---------------------------------------------------------
    def score(self, y: np.ndarray, geo: _Geometry | None = None, heat_frame: int | None = None
              ) -> float:
        """CAMBI of one luma plane (unclipped), at the distorted side's
        geometry unless ``geo`` is given."""
        g = geo or self._dis
        w, h = g.w, g.h
        pre = self._pre[:h, :w]
        to_10bit(y, g.ys, g.xs, *self._conv, pre)
        if self.enc_bitdepth < 10:
            cur = self._dith[:h, :w]
            anti_dither(pre, cur)
        else:
            cur = pre
        mask = self._masks[0][:h, :w]
        spatial_mask(cur, g.mask_thr, self._deriv[:h, :w], self._colsum, mask)
        total = 0.0
        mi = 0
        for s, (sw, sh) in enumerate(g.sizes):
            if s > 0 or self.speedup:
                raw = self._raw[:sh, :sw]
                decimate(cur, raw)
                nmask = self._masks[1 - mi][:sh, :sw]
                decimate(mask, nmask)
                mask = nmask
                mi = 1 - mi
            else:
                raw = cur
            cur = self._filt[:sh, :sw]
            mode_filter(raw, self._hm[:sh, :sw], cur)
            cv = self._cvals[:sh * sw].reshape(sh, sw)
            nch = max(1, min(self._nch, sh // max(g.window, 1)))
            c_values(cur, mask, g.pad, self.band_base, self.band_size, self.num_diffs, self.tvi,
                     self.vlt, self.weights, RECIPROCAL_LUT, self._hists, nch, cv)
            if heat_frame is not None and self._heat:
                self._write_heatmap(s, cv, heat_frame)
            n = sw * sh
            k = min(max(int(self.topk * n), 1), n)
            npool = max(1, min(self._nch_pool, sh // 16))
            total += topk_mean(cv, k, npool, self._cnt_hi, self._sum_hi, self._cnt_lo,
                               self._one) * SCALE_WEIGHTS[s]
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

    def flush(self):
        if self._heat:
            for f in self._heat:
                f.flush()
        return []
