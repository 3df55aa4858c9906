"""Motion (temporal information), as libvmaf's integer ``motion`` feature.

Outputs (libvmaf's ``integer_`` names without the prefix): ``motion`` (the
per-frame SAD score, libvmaf's ``motion_sad`` / debug ``motion``),
``motion2`` (used by the v0.6.x models) and ``motion3`` (used by the v1
models).  Only the REFERENCE luma is used; the distorted frames are ignored.

1. **SAD score** of frame ``i`` against frame ``i - 1`` (``i - 2`` with
   ``motion_five_frame_window``): the difference ``d = prev - cur`` of the two
   luma planes is blurred with the separable 5-tap filter
   ``(3571, 16004, 26386, 16004, 3571)`` (Q16, sums to 65536) -- vertically
   ``y = (sum f_k d + 2^(b-1)) >> b`` (``b`` the bit depth), then horizontally
   ``x = (sum f_k y + 2^15) >> 16`` (arithmetic shifts, i.e. floor) -- and
   ``sad = sum |x|`` over the frame.  Borders are mirrored without repeating
   the edge (``-1 -> 1``, ``-2 -> 2``, ``n -> n - 2``, ``n + 1 -> n - 3``).
   ``x`` is the blurred difference in 1/256 of an 8-bit step at any depth, so
   the score is ``min(sad / 256 / (w * h) * motion_fps_weight,
   motion_max_val)``: the mean absolute blurred difference in 8-bit steps,
   like libvmaf.  Frames below the first comparison (frame 0; frames 0 and 1
   with the five-frame window) score 0, and so do all frames with
   ``motion_force_zero``.  This "fused" blur of the difference (one rounding
   per pass on the difference, not on each blurred frame) is libvmaf 3.2's
   pipeline; its C, AVX2 and AVX-512 versions give the same integers.

2. **motion2** (libvmaf computes it when the stream is flushed), with ``s`` the
   SAD scores and ``m`` the first compared frame (1, or 2 with the five-frame
   window): 0 for ``i < m``; for the last frame ``s[i]``; otherwise
   ``min(s[i - stride + 1], s[i + 1])`` (stride 1, or 2 with the window, so
   ``min(s[i], s[i+1])`` or ``min(s[i-1], s[i+1])``), or just ``s[i + 1]``
   when ``i - stride + 1 < m``.

3. **motion3**: ``p = min(blend(motion2), motion_max_val)`` with
   ``blend(x) = x * motion_blend_factor + (1 - motion_blend_factor) *
   min(motion_blend_offset, x)``; with ``motion_moving_average`` the mean of
   this frame's and the previous frame's ``p``.  Frames ``i < m`` get the
   "stamp" ``min(blend(s[m]), motion_max_val)`` (0 if the stream has no frame
   ``m``), which also serves as the previous ``p`` of frame ``m``.

A frame's outputs are known once the next frame's SAD is, so ``extract``
returns frame ``i - 1`` when frame ``i`` arrives (frames ``0 .. m - 1``
together, once frame ``m`` arrives) and ``flush`` returns the last frame (or
all frames of a stream shorter than ``m + 1``).  Every frame pushed comes out
once, in order; the algorithm counts frames in push order (libvmaf uses the
frame index, which is the same for a stream pushed from 0).

Options (libvmaf's names, aliases, defaults and ranges):
``motion_force_zero`` (``force_0``, False), ``motion_blend_factor`` (``mbf``,
1.0, [0, 1]), ``motion_blend_offset`` (``mbo``, 40.0, [0, 1000]),
``motion_fps_weight`` (``mfw``, 1.0, [0, 5]), ``motion_max_val`` (``mmxv``,
10000.0, [0, 10000]), ``motion_five_frame_window`` (``mffw``, False),
``motion_moving_average`` (``mma``, False), ``debug`` (False; accepted for
compatibility, ``motion`` is always given).  The v1.0.16 models use
``motion_max_val=18``; their ``_hfr`` variants add the five-frame window and
the moving average.

Accuracy: the SAD is libvmaf's integer exactly, and the float steps are done
in the same order in double precision, so the outputs equal libvmaf's.
"""
from __future__ import annotations

import numpy as np
from ._jit import njit

from ._par import KERNEL_THREADS, band_count, noinline
from ._par import i32 as _i32, lane_abs as _abs, lane_add as _add, lane_mul as _mul
from ._par import lane_or as _or, lane_shr as _shr, lane_sub as _sub
from .base import FeatureExtractor, FrameFormat
from .registry import register

#: 5-tap blur, Q16
FILTER = (3571, 16004, 26386, 16004, 3571)
MIN_SIZE = 3  # the single mirror reflection needs at least 3 samples

OPTION_ALIASES = {"force_0": "motion_force_zero", "mbf": "motion_blend_factor",
                  "mbo": "motion_blend_offset", "mfw": "motion_fps_weight",
                  "mmxv": "motion_max_val", "mffw": "motion_five_frame_window",
                  "mma": "motion_moving_average"}
_RANGES = {"motion_blend_factor": (0.0, 1.0), "motion_blend_offset": (0.0, 1000.0),
           "motion_fps_weight": (0.0, 5.0), "motion_max_val": (0.0, 10000.0)}
_BOOLS = ("motion_force_zero", "motion_five_frame_window", "motion_moving_average", "debug")


# ---------------------------------------------------------------- kernel

@njit(cache=True, nogil=True)
def motion_sad(prev, cur, bpc, yrow, yrow32, drows, nb):
    """sum |blur(prev - cur)| over the frame, libvmaf's fixed point, in nb
    row bands done in turn (see _par); ``yrow`` (w + 4,) int64 and
    ``yrow32`` (w + 4,) int32 are scratch (a row with two mirrored columns
    each side), and so is ``drows`` (8, w) int16.  Up to 12 bits the sums
    are done in int32 (16 lanes a vector instead of 8: 1.58 -> 0.81 ms a
    1080p frame), on differences computed once a row: see _sad_rows32.
    (Scratch rows of their own rather than views of one: a view would make
    a warm start load Numba's array-object module, tests/test_warmup.py.)"""
    total = np.int64(0)
    if bpc <= 12:
        for b in range(nb):
            total += _sad_rows32(prev, cur, bpc, yrow32, drows, b, nb)
    else:
        for b in range(nb):
            total += _sad_rows(prev, cur, bpc, yrow, b, nb)
    return total


@njit(cache=True, nogil=True)
def _sad_rows(prev, cur, bpc, yr, b, nb):
    """The sum of motion_sad's band b of nb."""
    noinline()
    h, w = cur.shape
    rnd = np.int64(1) << (bpc - 1)
    r0 = b * h // nb
    r1 = (b + 1) * h // nb
    total = np.int64(0)
    for i in range(r0, r1):
        ia = i - 2 if i >= 2 else 2 - i
        ib = i - 1 if i >= 1 else 1 - i
        ic = i + 1 if i + 1 < h else 2 * h - i - 3
        id_ = i + 2 if i + 2 < h else 2 * h - i - 4
        pa, pb, pc, pd, pe = prev[ia], prev[ib], prev[i], prev[ic], prev[id_]
        ca, cb, cc, cd, ce = cur[ia], cur[ib], cur[i], cur[ic], cur[id_]
        nz = np.int64(0)
        for j in range(w):
            s = (np.int64(3571) * ((np.int64(pa[j]) - np.int64(ca[j]))
                                   + (np.int64(pe[j]) - np.int64(ce[j])))
                 + np.int64(16004) * ((np.int64(pb[j]) - np.int64(cb[j]))
                                      + (np.int64(pd[j]) - np.int64(cd[j])))
                 + np.int64(26386) * (np.int64(pc[j]) - np.int64(cc[j])))
            v = (s + rnd) >> bpc
            yr[j + 2] = v
            nz |= v
        if nz == 0:
            continue  # a zero row contributes nothing
        _mirror_ends(yr, w)
        total += _h_sum64(yr, w)
    return total


@njit(cache=True, nogil=True, inline="always")
def _mirror_ends(yr, w):
    """The two mirrored columns at each end of a row of vertical sums."""
    yr[0] = yr[4]
    yr[1] = yr[3]
    yr[w + 2] = yr[w]
    yr[w + 3] = yr[w - 1]


@njit(cache=True, nogil=True, inline="always")
def _h_sum64(yr, w):
    """sum |horizontal blur| of a row of vertical sums, in int64."""
    rs = np.int64(0)
    for j in range(w):
        x = (np.int64(3571) * (np.int64(yr[j]) + np.int64(yr[j + 4]))
             + np.int64(16004) * (np.int64(yr[j + 1]) + np.int64(yr[j + 3]))
             + np.int64(26386) * np.int64(yr[j + 2]) + np.int64(32768)) >> 16
        rs += abs(x)
    return rs


@njit(cache=True, nogil=True)
def _diff_row(p, c, d):
    """d = p - c as int16 (bpc <= 12: |p - c| < 2^12)."""
    for j in range(d.shape[0]):
        d[j] = np.int16(_sub(_i32(p[j]), _i32(c[j])))


@njit(cache=True, nogil=True)
def _sad_rows32(prev, cur, bpc, yr, dr, b, nb):
    """_sad_rows for bpc <= 12 in int32, with the same integers: the
    vertical sum is below 65536 * 2^bpc + 2^(bpc-1) < 2^31, the horizontal
    one below 65536 * 32768 when every vertical result of the row is below
    32768 in magnitude (the row's OR of magnitudes says so; a blurred
    difference of 128 8-bit steps or more), and so is the row's sum of
    magnitudes for rows below 65536 wide; other rows go through int64.
    Each row's difference prev - cur is computed once, into slot r % 8 of
    ``dr`` (int16), and read by the five output rows that need it."""
    noinline()
    h, w = cur.shape
    rnd = _i32(1 << (bpc - 1))
    sh = _i32(bpc)
    f0, f1, f2 = _i32(3571), _i32(16004), _i32(26386)
    half = _i32(32768)
    s16 = _i32(16)
    r0 = b * h // nb
    r1 = (b + 1) * h // nb
    total = np.int64(0)
    last = max(r0 - 3, -1)  # rows up to here have their difference in dr
    for i in range(r0, r1):
        need = min(i + 2, h - 1)
        while last < need:
            last += 1
            _diff_row(prev[last], cur[last], dr[last & 7])
        ia = i - 2 if i >= 2 else 2 - i
        ib = i - 1 if i >= 1 else 1 - i
        ic = i + 1 if i + 1 < h else 2 * h - i - 3
        id_ = i + 2 if i + 2 < h else 2 * h - i - 4
        da, db, dc, dd, de = dr[ia & 7], dr[ib & 7], dr[i & 7], dr[ic & 7], dr[id_ & 7]
        nz = _i32(0)
        mag = _i32(0)
        for j in range(w):
            s = _add(_add(_mul(f0, _add(_i32(da[j]), _i32(de[j]))),
                          _mul(f1, _add(_i32(db[j]), _i32(dd[j])))), _mul(f2, _i32(dc[j])))
            v = _shr(_add(s, rnd), sh)
            yr[j + 2] = v
            nz = _or(nz, v)
            mag = _or(mag, _abs(v))
        if nz == 0:
            continue  # a zero row contributes nothing
        _mirror_ends(yr, w)
        if mag < 32768 and w < 65536:
            rs = _i32(0)  # each |x| <= 32768: below 2^31 for rows below 65536 wide
            for j in range(w):
                x = _shr(_add(_add(_add(_mul(f0, _add(yr[j], yr[j + 4])),
                                        _mul(f1, _add(yr[j + 1], yr[j + 3]))),
                                   _mul(f2, yr[j + 2])), half), s16)
                rs = _add(rs, _abs(x))
            total += np.int64(rs)
        else:
            total += _h_sum64(yr, w)
    return total


# ---------------------------------------------------------------- extractor

def _blend(x: float, factor: float, offset: float) -> float:
    return x * factor + (1.0 - factor) * min(offset, x)


@register
class Motion(FeatureExtractor):
    name = "motion"
    reads_chroma = False  # the luma planes only
    warm_size = (64, 64)  # calls the kernels any larger frame calls (tests/test_warmup.py)
    provides = ("motion", "motion2", "motion3")
    temporal = True
    default_options = {
        "motion_force_zero": False,
        "motion_blend_factor": 1.0,
        "motion_blend_offset": 40.0,
        "motion_fps_weight": 1.0,
        "motion_max_val": 10000.0,
        "motion_five_frame_window": False,
        "motion_moving_average": False,
        "debug": False,
    }

    def __init__(self, **options):
        options = {OPTION_ALIASES.get(k, k): v for k, v in options.items()}
        for k in _BOOLS:
            if k not in options:
                continue
            v = options[k]
            if isinstance(v, str):  # libvmaf-style "true" / "false"
                if v.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"motion option {k} must be a boolean, got {v!r}")
                v = v.lower() in ("true", "1")
            elif isinstance(v, (bool, np.bool_)) or v in (0, 1):
                v = bool(v)
            else:
                raise ValueError(f"motion option {k} must be a boolean, got {v!r}")
            options[k] = v
        for k in _RANGES:
            if k in options:
                try:
                    options[k] = float(options[k])
                except (TypeError, ValueError):
                    raise ValueError(f"motion option {k} must be a number, "
                                     f"got {options[k]!r}") from None
        super().__init__(**options)
        for k, (lo, hi) in _RANGES.items():
            v = self.options[k]
            if not lo <= v <= hi:
                raise ValueError(f"motion option {k}={v} outside [{lo}, {hi}]")
        o = self.options
        self._five = bool(o["motion_five_frame_window"])
        self._min_idx = 2 if self._five else 1
        self._stride = 2 if self._five else 1
        self._reset()

    def _reset(self) -> None:
        self._n = 0               # frames pushed
        self._next = 0            # position of the first frame not yet returned
        self._indices = {}        # position -> caller's frame index (pending frames)
        self._sad = {}            # position -> SAD score (the ones still needed)
        self._prev_processed = 0.0
        self._stamp = 0.0

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        if fmt.width < MIN_SIZE or fmt.height < MIN_SIZE:
            raise ValueError(f"motion needs frames of at least {MIN_SIZE}x{MIN_SIZE}, "
                             f"got {fmt.width}x{fmt.height}")
        w, h = fmt.width, fmt.height
        self._bpc = fmt.bitdepth
        # ring of the last reference luma planes: i-1 (and i-2 for the window)
        nkeep = self._min_idx + 1
        self._ring = [np.empty((h, w), dtype=fmt.dtype) for _ in range(nkeep)]
        self._yrow = np.zeros(w + 4, dtype=np.int64)
        self._yrow32 = np.zeros(w + 4, dtype=np.int32)
        self._drows = np.zeros((8, w), dtype=np.int16)
        self._nb = band_count(KERNEL_THREADS, h, 8)
        self._area = w * h
        self._reset()

    # -- scores -----------------------------------------------------------
    def sad_score(self, prev_y: np.ndarray, cur_y: np.ndarray) -> float:
        """libvmaf's per-frame motion score of ``cur_y`` against ``prev_y``."""
        sad = int(motion_sad(prev_y, cur_y, self._bpc, self._yrow, self._yrow32, self._drows,
                             self._nb))
        o = self.options
        return min(sad / 256.0 / self._area * o["motion_fps_weight"], o["motion_max_val"])

    def _clip_blend(self, x: float) -> float:
        o = self.options
        return min(_blend(x, o["motion_blend_factor"], o["motion_blend_offset"]),
                   o["motion_max_val"])

    def _frame_values(self, i: int) -> dict:
        """Outputs of position i; the needed SAD scores are known."""
        m = self._min_idx
        s = self._sad
        if i < m:
            motion2 = 0.0
            motion3 = self._stamp
            self._prev_processed = self._stamp
        else:
            lo = i - (self._stride - 1)
            if (i + 1) not in s:  # the last frame
                motion2 = s[i]
            elif lo >= m:
                a, b = s[lo], s[i + 1]
                motion2 = a if a < b else b
            else:
                motion2 = s[i + 1]
            processed = self._clip_blend(motion2)
            if self.options["motion_moving_average"]:
                motion3 = (processed + self._prev_processed) / 2.0
            else:
                motion3 = processed
            self._prev_processed = processed
        return {"motion": s[i], "motion2": motion2, "motion3": motion3}

    def _emit(self, final: bool):
        out = []
        m = self._min_idx
        n = self._n
        while self._next < n:
            i = self._next
            if not final and (n - 1 < i + 1 if i >= m else n - 1 < m):
                break
            out.append((self._indices.pop(i), self._frame_values(i)))
            self._next += 1
            # SAD scores before i - stride + 1 are no longer needed
            self._sad.pop(i - self._stride, None)
        return out

    def extract(self, index, ref, dis):
        y = ref[0]
        pos = self._n
        ring = self._ring
        if self.options["motion_force_zero"] or pos < self._min_idx:
            score = 0.0
        else:
            prev = ring[(pos - self._min_idx) % len(ring)]
            score = self.sad_score(prev, y)
        if not self.options["motion_force_zero"]:
            np.copyto(ring[pos % len(ring)], y)
        self._sad[pos] = score
        if pos == self._min_idx:
            self._stamp = self._clip_blend(score)
        self._indices[pos] = index
        self._n = pos + 1
        return self._emit(final=False)

    def flush(self):
        out = self._emit(final=True)
        self._reset()
        return out
