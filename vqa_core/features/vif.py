"""VIF (visual information fidelity), as libvmaf's integer ``vif`` feature.

Outputs (libvmaf's ``integer_`` names without the prefix): ``vif_scale0`` ..
``vif_scale3``; with ``debug`` also ``vif`` (the pooled score), ``vif_num``,
``vif_den``, ``vif_num_scale{s}`` and ``vif_den_scale{s}``.  Only the luma
plane is used.  The computation is libvmaf's fixed-point pipeline, so the
integer sums are the same as libvmaf's and the outputs agree to its printed
precision.

**Scales.**  Scale 0 is the frame itself.  Scale ``s + 1`` is scale ``s``
low-passed with the filter of scale ``s + 1`` and decimated by 2 (rows and
columns ``0, 2, 4, ...``; the size is halved rounding down).  The filters are
symmetric Q16 Gaussians summing to 65536:

    scale 0: 489 935 1640 2640 3896 5274 6547 7455 7784 (7455 ... 489), 17 taps
    scale 1: 1244 3663 7925 12590 14692 (12590 ... 1244), 9 taps
    scale 2: 3571 16004 26386 16004 3571
    scale 3: 10904 43728 10904

Borders are mirrored without repeating the edge sample (``-k -> k``,
``n-1+k -> n-1-k``), vertically and horizontally.  A scale is filtered
vertically first, then horizontally.  The low-pass of the decimation: vertical
``(sum + 2^(b-1)) >> b`` at scale 0 (``b`` the bit depth), ``(sum + 2^15) >>
16`` after; horizontal ``(sum + 2^15) >> 16``; results are 16-bit (``mu`` in
a 16-bit range whatever the input bit depth).  Only the samples kept by the
decimation are computed here.

**Statistics** of each scale, per pixel, with the scale's own filter ``f``:
vertical ``mu = (sum f*x + r) >> b`` as above, and ``xx = sum f*x*x``,
``yy``, ``xy`` shifted right by ``2 (b - 8)`` with rounding at scale 0 (none
at 8 bits) and by 16 (rounding ``2^15``) after; horizontal ``mu1 = sum f*mu``
(32-bit, not shifted), ``mu1_sq = (mu1^2 + 2^31) >> 32`` and likewise
``mu2_sq``, ``mu1_mu2``; ``xx = (sum f*xx + 2^15) >> 16`` and likewise.
Then ``sigma1_sq = xx - mu1_sq``, ``sigma2_sq = max(yy - mu2_sq, 0)``,
``sigma12 = xy - mu1_mu2`` (32-bit).  With ``sigma_nsq = 2^17``:

* if ``sigma1_sq < sigma_nsq``: ``non_log_num += sigma2_sq``,
  ``non_log_den += 1``;
* else ``den_log += L(sigma_nsq + sigma1_sq) - 17 * 2048``, and where
  ``sigma12 > 0`` and ``sigma2_sq > 0``: ``g = sigma12 / (sigma1_sq +
  65536e-10)`` (double), ``sv_sq = max(trunc(sigma2_sq - g * sigma12), 0)``,
  ``g = min(g, vif_enhn_gain_limit)``, ``n1 = sv_sq + sigma_nsq``,
  ``num_log += L(trunc(g * g * sigma1_sq) + n1) - L(n1)``.

``L(x)`` is libvmaf's fixed-point log2 in units of 1/2048: with ``k =
bit_length(x) - 16``, ``L(x) = T[x >> k] + 2048 k``, where ``T[i] =
round(float32(log2(i)) * 2048)`` for ``i`` in 32767..65535 (rounding half away
from zero; the float32 log2 is correctly rounded here, which is what glibc's
``log2f`` gives for all these ``i``).

Per scale, in double then stored as float32 as libvmaf does:
``num = num_log / 2048 + (non_log_den - non_log_num / 16384 / 65025)`` and
``den = den_log / 2048 + non_log_den``; ``vif_scale{s} = num / den`` divided
in float32.  The debug score ``vif`` is ``sum num / sum den`` in double (1
when the denominator is 0).

**libvmaf's SIMD code.**  libvmaf's AVX2 and AVX-512 code (which x86 builds
run, the bundled ffmpeg included) compute the same integers as its C code.
The one difference is floating point: its x86 SIMD files are compiled with FMA
enabled, and GCC fuses ``sigma2_sq - g * sigma12`` into one fused
multiply-add, so ``sv_sq`` is truncated from the exact value instead of from
the rounded product.  vqa fuses it too (class attribute ``VIF.fma``; off gives
libvmaf's C reference).  The two differ only where the product's rounding
crosses an integer, which random tests did not hit once in 3000 frames.

**Implementation.**  Per scale, one parallel pass over row bands: for each
row the vertical sums of the five moments (integers; the squares' results
kept as exact float64), mirrored, the horizontal sums (taps written out so
they stay in registers; squares in exact float64 with fused multiply-adds)
and the statistic in one branch-free vectorised loop (the log2 lookups
through LLVM's ctlz).  The decimation filters only the rows and columns it
keeps (a quarter of libvmaf's work).  At 1080p 8-bit this is about as fast
as libvmaf's AVX2 code on one thread, and twice as fast on two.

Options (libvmaf's names, defaults and ranges; its aliases ``egl`` and
``ssclz`` are accepted): ``vif_enhn_gain_limit`` (100.0, in [1, 100]),
``vif_skip_scale0`` (False: scale 0 is not computed, ``vif_scale0`` is 0, its
debug numerator 0 and denominator -1, and ``vif`` pools scales 1..3),
``debug`` (False).  libvmaf's integer VIF has no ``vif_kernelscale`` (only
its float VIF has).  Frames must be at least 16 pixels in each direction (the
mirrored borders of scale 3 need 2 samples).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .base import FeatureExtractor, FrameFormat
from .registry import register

# ---------------------------------------------------------------- constants

FILTERS = (
    np.array((489, 935, 1640, 2640, 3896, 5274, 6547, 7455, 7784,
              7455, 6547, 5274, 3896, 2640, 1640, 935, 489), dtype=np.uint16),
    np.array((1244, 3663, 7925, 12590, 14692, 12590, 7925, 3663, 1244), dtype=np.uint16),
    np.array((3571, 16004, 26386, 16004, 3571), dtype=np.uint16),
    np.array((10904, 43728, 10904), dtype=np.uint16),
)
HALF = tuple(len(f) // 2 for f in FILTERS)  # 8, 4, 2, 1
SIGMA_NSQ = 65536 << 1
EPS = 65536 * 1.0e-10
MIN_SIZE = 16


def log2_table() -> np.ndarray:
    """libvmaf's 1/2048 log2 table for 32767..65535 (indexed directly)."""
    i = np.arange(32767, 65536)
    v = np.float32(np.log2(i.astype(np.float64))).astype(np.float64) * 2048.0
    t = np.zeros(65536, dtype=np.int32)
    t[32767:] = np.floor(v + 0.5).astype(np.int32)
    return t


LOG2 = log2_table()

OPTION_ALIASES = {"egl": "vif_enhn_gain_limit", "ssclz": "vif_skip_scale0"}


# ---------------------------------------------------------------- intrinsics

@intrinsic
def _ctlz64(typingctx, x):
    """Count of leading zero bits of a 64-bit integer (LLVM ctlz)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, sig, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.int64(x), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with a single rounding (LLVM fma)."""
    if not all(isinstance(t, types.Float) and t.bitwidth == 64 for t in (a, b, c)):
        return None

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return types.float64(a, b, c), codegen


# ---------------------------------------------------------------- kernels

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(inline="always", **_JIT)
def _log2q(tab, x):
    """libvmaf's fixed-point log2 of x >= 2^16, in units of 1/2048."""
    k = 48 - _ctlz64(x)
    return np.int64(tab[x >> k]) + 2048 * k


@njit(**_JIT)
def pad_rows(src, dst, half):
    """Copy ``src`` into rows half .. half+h-1 of ``dst`` and mirror ``half``
    rows at the top and bottom (-k -> k, h-1+k -> h-1-k)."""
    h = src.shape[0]
    w = src.shape[1]
    for i in range(h):
        s = src[i]
        d = dst[half + i]
        for j in range(w):
            d[j] = s[j]
    _mirror_rows(dst, half, h, w)


@njit(**_JIT)
def _mirror_rows(dst, half, h, w):
    for k in range(1, half + 1):
        a = dst[half - k]
        b = dst[half + k]
        c = dst[half + h - 1 + k]
        e = dst[half + h - 1 - k]
        for j in range(w):
            a[j] = b[j]
            c[j] = e[j]


@njit(inline="always", **_JIT)
def _mirror_cols(x, off, w, half):
    for k in range(1, half + 1):
        x[off - k] = x[off + k]
        x[off + w - 1 + k] = x[off + w - 1 - k]


# Vertical kernels.  The taps are applied pair by pair (they are symmetric),
# two pairs per pass over a row, on 0-based row slices so that LLVM
# vectorises the loops; the first pass also does the centre tap and the last
# one finishes the sums.  All sums are exact unsigned integers (uint64, or
# uint32 where libvmaf's 32-bit sums cannot overflow).

@njit(**_JIT)
def _v5_init(r, d, r1, d1, f0, f1, w, am1, am2, axx, ayy, axy):
    """Centre tap (rows r, d; weight f0) plus the pair (r1, d1) with f1."""
    for j in range(w):
        a = np.uint64(r[j])
        b = np.uint64(d[j])
        fa = f0 * a
        fb = f0 * b
        am1[j] = fa
        am2[j] = fb
        axx[j] = fa * a
        ayy[j] = fb * b
        axy[j] = fa * b
    if f1 != 0:
        _v5_pair(r1[0], d1[0], r1[1], d1[1], f1, w, am1, am2, axx, ayy, axy)


@njit(**_JIT)
def _v5_pair(ra, da, rb, db, f, w, am1, am2, axx, ayy, axy):
    for j in range(w):
        a = np.uint64(ra[j])
        b = np.uint64(da[j])
        a2 = np.uint64(rb[j])
        b2 = np.uint64(db[j])
        am1[j] += f * (a + a2)
        am2[j] += f * (b + b2)
        axx[j] += f * (a * a + a2 * a2)
        ayy[j] += f * (b * b + b2 * b2)
        axy[j] += f * (a * b + a2 * b2)


@njit(**_JIT)
def _v5_quad(ra, da, rb, db, rc, dc, rd, dd, f, g, w, am1, am2, axx, ayy, axy):
    for j in range(w):
        a = np.uint64(ra[j])
        b = np.uint64(da[j])
        a2 = np.uint64(rb[j])
        b2 = np.uint64(db[j])
        c = np.uint64(rc[j])
        e = np.uint64(dc[j])
        c2 = np.uint64(rd[j])
        e2 = np.uint64(dd[j])
        am1[j] += f * (a + a2) + g * (c + c2)
        am2[j] += f * (b + b2) + g * (e + e2)
        axx[j] += f * (a * a + a2 * a2) + g * (c * c + c2 * c2)
        ayy[j] += f * (b * b + b2 * b2) + g * (e * e + e2 * e2)
        axy[j] += f * (a * b + a2 * b2) + g * (c * e + c2 * e2)


@njit(**_JIT)
def _v5_last(ra, da, rb, db, f, w, am1, am2, axx, ayy, axy,
             o1, o2, oxx, oyy, oxy, rnd_mu, sh_mu, rnd_sq, sh_sq):
    """Last pair (f may be 0: none), then the rounded shifts: mu into o1, o2
    (uint32), the squares into oxx, oyy, oxy (float64, exact)."""
    rm = np.uint64(rnd_mu)
    sm = np.uint64(sh_mu)
    rs = np.uint64(rnd_sq)
    ss = np.uint64(sh_sq)
    m32 = np.uint64(0xFFFFFFFF)
    for j in range(w):
        a = np.uint64(ra[j])
        b = np.uint64(da[j])
        a2 = np.uint64(rb[j])
        b2 = np.uint64(db[j])
        # libvmaf's mu sums are 32-bit: wrap before the shift
        o1[j] = ((np.uint64(am1[j]) + f * (a + a2)) & m32) + rm >> sm
        o2[j] = ((np.uint64(am2[j]) + f * (b + b2)) & m32) + rm >> sm
        oxx[j] = np.float64(((np.uint64(axx[j]) + f * (a * a + a2 * a2) + rs) >> ss) & m32)
        oyy[j] = np.float64(((np.uint64(ayy[j]) + f * (b * b + b2 * b2) + rs) >> ss) & m32)
        oxy[j] = np.float64(((np.uint64(axy[j]) + f * (a * b + a2 * b2) + rs) >> ss) & m32)


@njit(**_JIT)
def _vertical5(P, Q, i, taps, w, acc, vmu, vsq, off, rnd_mu, sh_mu, rnd_sq, sh_sq):
    """Vertical filter of output row i (padded rows i .. i+n-1) for mu1, mu2,
    ref^2, dis^2 and ref*dis, rounded and shifted into vmu[q, off:off+w]
    and vsq[q, off:off+w].  acc (5, w): the sums' dtype (uint32 wraps like
    libvmaf's 32-bit sums)."""
    n = taps.shape[0]
    hf = n // 2
    c = i + hf
    f1 = np.uint32(taps[0]) if hf >= 2 else np.uint32(0)
    _v5_init(P[c], Q[c], (P[i], P[i + n - 1]), (Q[i], Q[i + n - 1]),
             np.uint32(taps[hf]), f1, w, acc[0], acc[1], acc[2], acc[3], acc[4])
    k = 1 if hf >= 2 else 0
    while k + 1 < hf - 1:
        _v5_quad(P[i + k], Q[i + k], P[i + n - 1 - k], Q[i + n - 1 - k],
                 P[i + k + 1], Q[i + k + 1], P[i + n - 2 - k], Q[i + n - 2 - k],
                 np.uint32(taps[k]), np.uint32(taps[k + 1]), w,
                 acc[0], acc[1], acc[2], acc[3], acc[4])
        k += 2
    if k < hf - 1:
        _v5_pair(P[i + k], Q[i + k], P[i + n - 1 - k], Q[i + n - 1 - k],
                 np.uint32(taps[k]), w, acc[0], acc[1], acc[2], acc[3], acc[4])
        k += 1
    e = off + w
    _v5_last(P[i + k], Q[i + k], P[i + n - 1 - k], Q[i + n - 1 - k], np.uint32(taps[k]), w,
             acc[0], acc[1], acc[2], acc[3], acc[4], vmu[0][off:e], vmu[1][off:e],
             vsq[0][off:e], vsq[1][off:e], vsq[2][off:e], rnd_mu, sh_mu, rnd_sq, sh_sq)


# Horizontal kernels: the taps written out, so that the sums stay in
# registers; c holds the taps from the outermost to the centre, zero-padded
# to 9 (17-tap filter) or 5 (the others: 9, 5 and 3 taps).  The mu sums are
# 32-bit like libvmaf's (they cannot overflow); the squares' sums are exact
# in float64 (below 2^49).

@njit(**_JIT)
def _h_mu17(x, c, w, o):
    c0 = np.uint32(c[0])
    c1 = np.uint32(c[1])
    c2 = np.uint32(c[2])
    c3 = np.uint32(c[3])
    c4 = np.uint32(c[4])
    c5 = np.uint32(c[5])
    c6 = np.uint32(c[6])
    c7 = np.uint32(c[7])
    c8 = np.uint32(c[8])
    for j in range(w):
        o[j] = np.uint32(c0 * (x[j] + x[j + 16]) + c1 * (x[j + 1] + x[j + 15])
                         + c2 * (x[j + 2] + x[j + 14]) + c3 * (x[j + 3] + x[j + 13])
                         + c4 * (x[j + 4] + x[j + 12]) + c5 * (x[j + 5] + x[j + 11])
                         + c6 * (x[j + 6] + x[j + 10]) + c7 * (x[j + 7] + x[j + 9])
                         + c8 * x[j + 8])


@njit(fastmath={"contract"}, **_JIT)
def _h_sq17(x, c, w, o):
    c0 = np.float64(c[0])
    c1 = np.float64(c[1])
    c2 = np.float64(c[2])
    c3 = np.float64(c[3])
    c4 = np.float64(c[4])
    c5 = np.float64(c[5])
    c6 = np.float64(c[6])
    c7 = np.float64(c[7])
    c8 = np.float64(c[8])
    for j in range(w):
        o[j] = (c0 * (x[j] + x[j + 16]) + c1 * (x[j + 1] + x[j + 15])
                + c2 * (x[j + 2] + x[j + 14]) + c3 * (x[j + 3] + x[j + 13])
                + c4 * (x[j + 4] + x[j + 12]) + c5 * (x[j + 5] + x[j + 11])
                + c6 * (x[j + 6] + x[j + 10]) + c7 * (x[j + 7] + x[j + 9])
                + c8 * x[j + 8])


@njit(**_JIT)
def _h_mu9(x, c, w, o):
    c0 = np.uint32(c[0])
    c1 = np.uint32(c[1])
    c2 = np.uint32(c[2])
    c3 = np.uint32(c[3])
    c4 = np.uint32(c[4])
    for j in range(w):
        o[j] = np.uint32(c0 * (x[j] + x[j + 8]) + c1 * (x[j + 1] + x[j + 7])
                         + c2 * (x[j + 2] + x[j + 6]) + c3 * (x[j + 3] + x[j + 5])
                         + c4 * x[j + 4])


@njit(fastmath={"contract"}, **_JIT)
def _h_sq9(x, c, w, o):
    c0 = np.float64(c[0])
    c1 = np.float64(c[1])
    c2 = np.float64(c[2])
    c3 = np.float64(c[3])
    c4 = np.float64(c[4])
    for j in range(w):
        o[j] = (c0 * (x[j] + x[j + 8]) + c1 * (x[j + 1] + x[j + 7])
                + c2 * (x[j + 2] + x[j + 6]) + c3 * (x[j + 3] + x[j + 5])
                + c4 * x[j + 4])


@njit(**_JIT)
def _stat_row(hm1, hm2, hxx, hyy, hxy, w, egl, tab, use_fma):
    """The VIF statistic of each pixel of a row from its filtered moments
    (branch-free so that it vectorises); returns the row's four sums."""
    num_log = np.int64(0)
    den_log = np.int64(0)
    nl_num = np.int64(0)
    nl_den = np.int64(0)
    r31 = np.uint64(1 << 31)
    s32 = np.uint64(32)
    m32 = np.uint64(0xFFFFFFFF)
    for j in range(w):
        m1 = np.uint64(hm1[j])
        m2 = np.uint64(hm2[j])
        m1sq = np.int64(((m1 * m1 + r31) >> s32) & m32)
        m2sq = np.int64(((m2 * m2 + r31) >> s32) & m32)
        m12 = np.int64(((m1 * m2 + r31) >> s32) & m32)
        # (sum + 2^15) >> 16, exactly, on the float64 sums (below 2^49)
        xx = np.int64(np.floor((hxx[j] + 32768.0) * (1.0 / 65536.0)))
        yy = np.int64(np.floor((hyy[j] + 32768.0) * (1.0 / 65536.0)))
        xy = np.int64(np.floor((hxy[j] + 32768.0) * (1.0 / 65536.0)))
        # 32-bit differences, as libvmaf's int32_t
        s1 = ((xx - m1sq + 2147483648) & 0xFFFFFFFF) - 2147483648
        s2 = ((yy - m2sq + 2147483648) & 0xFFFFFFFF) - 2147483648
        s12 = ((xy - m12 + 2147483648) & 0xFFFFFFFF) - 2147483648
        s2 = max(s2, 0)
        is_log = s1 >= SIGMA_NSQ
        s1c = s1 if is_log else SIGMA_NSQ  # keeps the unused lanes in range
        dl = _log2q(tab, s1c + SIGMA_NSQ) - 2048 * 17
        fs1 = np.float64(s1c)
        fs12 = np.float64(s12)
        g = fs12 / (fs1 + EPS)
        if use_fma:
            t = _fma(-g, fs12, np.float64(s2))
        else:
            t = np.float64(s2) - g * fs12
        sv = max(np.int64(t), 0)
        g = min(g, egl)
        n1 = sv + SIGMA_NSQ
        n2 = np.int64(g * g * fs1) + n1
        nl = _log2q(tab, n2) - _log2q(tab, n1)
        do_num = is_log & (s12 > 0) & (s2 > 0)
        num_log += nl if do_num else 0
        den_log += dl if is_log else 0
        nl_num += 0 if is_log else s2
        nl_den += 0 if is_log else 1
    return num_log, den_log, nl_num, nl_den


@njit(parallel=True, **_JIT)
def vif_scale_sums(P, Q, h, w, taps, coef, rnd_mu, sh_mu, rnd_sq, sh_sq, egl, tab, use_fma,
                   vacc, vmu, vsq, hmu, hsq, out):
    """VIF sums of one scale: P, Q are the padded ref and dis planes (``half``
    mirrored rows above and below).  Scratch per chunk c: vacc (c, 5, w),
    vmu (c, 2, w + 2 pad) uint32, vsq (c, 3, w + 2 pad) float64 with pad 8
    at scale 0 and 4 after, hmu (c, 2, w) uint32, hsq (c, 3, w) float64.
    ``coef``: the taps for the horizontal kernels (see _h_mu17).  out (h, 4)
    int64 gets the per-row sums."""
    nch = vacc.shape[0]
    hf = taps.shape[0] // 2
    pad = (vmu.shape[2] - w) // 2
    for c in prange(nch):
        acc = vacc[c]
        vm = vmu[c]
        vs = vsq[c]
        hm = hmu[c]
        hs = hsq[c]
        for i in range((c * h) // nch, ((c + 1) * h) // nch):
            _vertical5(P, Q, i, taps, w, acc, vm, vs, pad, rnd_mu, sh_mu, rnd_sq, sh_sq)
            for q in range(2):
                _mirror_cols(vm[q], pad, w, hf)
            for q in range(3):
                _mirror_cols(vs[q], pad, w, hf)
            if pad == 8:
                for q in range(2):
                    _h_mu17(vm[q], coef, w, hm[q])
                for q in range(3):
                    _h_sq17(vs[q], coef, w, hs[q])
            else:
                for q in range(2):
                    _h_mu9(vm[q], coef, w, hm[q])
                for q in range(3):
                    _h_sq9(vs[q], coef, w, hs[q])
            a, b, e, d = _stat_row(hm[0], hm[1], hs[0], hs[1], hs[2], w, egl, tab, use_fma)
            out[i, 0] = a
            out[i, 1] = b
            out[i, 2] = e
            out[i, 3] = d


@njit(**_JIT)
def _v2_init(r, d, f, w, am1, am2):
    for j in range(w):
        am1[j] = f * np.uint64(r[j])
        am2[j] = f * np.uint64(d[j])


@njit(**_JIT)
def _v2_quad(ra, da, rb, db, rc, dc, rd, dd, f, g, w, am1, am2):
    for j in range(w):
        am1[j] += (f * (np.uint64(ra[j]) + np.uint64(rb[j]))
                   + g * (np.uint64(rc[j]) + np.uint64(rd[j])))
        am2[j] += (f * (np.uint64(da[j]) + np.uint64(db[j]))
                   + g * (np.uint64(dc[j]) + np.uint64(dd[j])))


@njit(**_JIT)
def _v2_last(ra, da, rb, db, f, w, am1, am2, o1, o2, rnd, sh):
    r = np.uint64(rnd)
    s = np.uint64(sh)
    m32 = np.uint64(0xFFFFFFFF)
    for j in range(w):
        o1[j] = ((np.uint64(am1[j]) + f * (np.uint64(ra[j]) + np.uint64(rb[j]))) & m32) + r >> s
        o2[j] = ((np.uint64(am2[j]) + f * (np.uint64(da[j]) + np.uint64(db[j]))) & m32) + r >> s


@njit(**_JIT)
def _h2_even(e, o, taps, wn, out_r, out_d):
    """Horizontal filter at the even columns: e, o (2, *) are the even and odd
    samples of the padded vertical rows; out (uint16) = (sum + 2^15) >> 16."""
    n = taps.shape[0]
    hf = n // 2
    # out[j] = sum_k taps[k] * x[2j + k]; x[2m] = e[m], x[2m + 1] = o[m]
    er, ed, orr, od = e[0], e[1], o[0], o[1]
    r15 = np.uint64(32768)
    s16 = np.uint64(16)
    if hf == 1:  # taps a b a: x[2j], x[2j+1], x[2j+2]
        f0 = np.uint32(taps[0])
        f1 = np.uint32(taps[1])
        for j in range(wn):
            out_r[j] = (f0 * (np.uint64(er[j]) + np.uint64(er[j + 1]))
                        + f1 * np.uint64(orr[j]) + r15) >> s16
            out_d[j] = (f0 * (np.uint64(ed[j]) + np.uint64(ed[j + 1]))
                        + f1 * np.uint64(od[j]) + r15) >> s16
        return
    if hf == 2:  # a b c b a: x[2j .. 2j+4]
        f0 = np.uint32(taps[0])
        f1 = np.uint32(taps[1])
        f2 = np.uint32(taps[2])
        for j in range(wn):
            out_r[j] = (f0 * (np.uint64(er[j]) + np.uint64(er[j + 2]))
                        + f1 * (np.uint64(orr[j]) + np.uint64(orr[j + 1]))
                        + f2 * np.uint64(er[j + 1]) + r15) >> s16
            out_d[j] = (f0 * (np.uint64(ed[j]) + np.uint64(ed[j + 2]))
                        + f1 * (np.uint64(od[j]) + np.uint64(od[j + 1]))
                        + f2 * np.uint64(ed[j + 1]) + r15) >> s16
        return
    # 9 taps: x[2j .. 2j+8]
    f0 = np.uint32(taps[0])
    f1 = np.uint32(taps[1])
    f2 = np.uint32(taps[2])
    f3 = np.uint32(taps[3])
    f4 = np.uint32(taps[4])
    for j in range(wn):
        out_r[j] = (f0 * (np.uint64(er[j]) + np.uint64(er[j + 4]))
                    + f1 * (np.uint64(orr[j]) + np.uint64(orr[j + 3]))
                    + f2 * (np.uint64(er[j + 1]) + np.uint64(er[j + 3]))
                    + f3 * (np.uint64(orr[j + 1]) + np.uint64(orr[j + 2]))
                    + f4 * np.uint64(er[j + 2]) + r15) >> s16
        out_d[j] = (f0 * (np.uint64(ed[j]) + np.uint64(ed[j + 4]))
                    + f1 * (np.uint64(od[j]) + np.uint64(od[j + 3]))
                    + f2 * (np.uint64(ed[j + 1]) + np.uint64(ed[j + 3]))
                    + f3 * (np.uint64(od[j + 1]) + np.uint64(od[j + 2]))
                    + f4 * np.uint64(ed[j + 2]) + r15) >> s16


@njit(parallel=True, **_JIT)
def subsample(P, Q, h, w, half, taps, rnd, sh, Pn, Qn, half_n, vacc, vrow, eo):
    """Low-pass a scale (P, Q: padded by ``half`` rows) with ``taps`` (9, 5
    or 3 of them) and decimate by 2 into rows half_n .. of Pn, Qn (uint16),
    then mirror their borders.  Only the rows and columns kept are filtered.
    Scratch per chunk: vacc (c, 2, w) uint32, vrow (c, 2, w + 2 hf) uint32,
    eo (c, 2, 2, (w + 2 hf + 1) // 2) uint32."""
    nch = vacc.shape[0]
    n = taps.shape[0]
    hf = n // 2
    hn = h // 2
    wn = w // 2
    off = half - hf
    wp = w + 2 * hf
    for c in prange(nch):
        am = vacc[c]
        vr = vrow[c]
        e = eo[c, 0]
        o = eo[c, 1]
        for i2 in range((c * hn) // nch, ((c + 1) * hn) // nch):
            i = 2 * i2 + off
            _v2_init(P[i + hf], Q[i + hf], np.uint32(taps[hf]), w, am[0], am[1])
            k = 0
            while k + 1 < hf - 1:
                _v2_quad(P[i + k], Q[i + k], P[i + n - 1 - k], Q[i + n - 1 - k],
                         P[i + k + 1], Q[i + k + 1], P[i + n - 2 - k], Q[i + n - 2 - k],
                         np.uint32(taps[k]), np.uint32(taps[k + 1]), w, am[0], am[1])
                k += 2
            if k < hf - 1:  # one pair left before the last: a quad with g = 0
                _v2_quad(P[i + k], Q[i + k], P[i + n - 1 - k], Q[i + n - 1 - k],
                         P[i + k], Q[i + k], P[i + k], Q[i + k],
                         np.uint32(taps[k]), np.uint32(0), w, am[0], am[1])
                k += 1
            _v2_last(P[i + k], Q[i + k], P[i + n - 1 - k], Q[i + n - 1 - k],
                     np.uint32(taps[k]), w, am[0], am[1], vr[0][hf:hf + w], vr[1][hf:hf + w],
                     rnd, sh)
            _mirror_cols(vr[0], hf, w, hf)
            _mirror_cols(vr[1], hf, w, hf)
            for q in range(2):
                x = vr[q]
                eq = e[q]
                oq = o[q]
                for m in range(wp // 2):
                    eq[m] = x[2 * m]
                    oq[m] = x[2 * m + 1]
                if wp % 2:
                    eq[wp // 2] = x[wp - 1]
            _h2_even(e, o, taps, wn, Pn[half_n + i2], Qn[half_n + i2])
    _mirror_rows(Pn, half_n, hn, wn)
    _mirror_rows(Qn, half_n, hn, wn)


# ---------------------------------------------------------------- extractor

class _Scale:
    """Buffers of one scale."""

    def __init__(self, s, w, h, in_dtype, chunks):
        self.s, self.w, self.h = s, w, h
        hf = HALF[s]
        self.half = hf
        dt = in_dtype if s == 0 else np.uint16
        self.P = np.zeros((h + 2 * hf, w), dtype=dt)
        self.Q = np.zeros((h + 2 * hf, w), dtype=dt)
        nch = max(1, min(chunks, h))
        # 8-bit scale 0 sums fit libvmaf's 32-bit accumulators; the others
        # need 64 bits for the squares
        acc_dt = np.uint32 if dt == np.uint8 else np.uint64
        self.vacc = np.zeros((nch, 5, w), dtype=acc_dt)
        pad = 8 if s == 0 else 4  # what the horizontal kernels read
        self.vmu = np.zeros((nch, 2, w + 2 * pad), dtype=np.uint32)
        self.vsq = np.zeros((nch, 3, w + 2 * pad), dtype=np.float64)
        self.hmu = np.zeros((nch, 2, w), dtype=np.uint32)
        self.hsq = np.zeros((nch, 3, w), dtype=np.float64)
        taps = FILTERS[s]
        nc = 9 if s == 0 else 5
        self.coef = np.zeros(nc, dtype=np.uint32)
        self.coef[nc - 1 - hf:] = taps[:hf + 1]
        self.rows = np.zeros((h, 4), dtype=np.int64)
        if s < 3:
            hn = HALF[s + 1]
            self.sub_vacc = np.zeros((nch, 2, w), dtype=np.uint32)
            self.sub_vrow = np.zeros((nch, 2, w + 2 * hn), dtype=np.uint32)
            self.sub_eo = np.zeros((nch, 2, 2, (w + 2 * hn + 1) // 2), dtype=np.uint32)


@register
class VIF(FeatureExtractor):
    name = "vif"
    provides = ("vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3")
    default_options = {
        "vif_enhn_gain_limit": 100.0,
        "vif_skip_scale0": False,
        "debug": False,
    }
    #: fuse ``sigma2_sq - g * sigma12`` into one FMA, as libvmaf's x86 SIMD builds do
    fma = True

    def __init__(self, **options):
        options = {OPTION_ALIASES.get(k, k): v for k, v in options.items()}
        for k in ("vif_skip_scale0", "debug"):
            v = options.get(k)
            if isinstance(v, str):  # libvmaf-style "true" / "false"
                if v.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"vif option {k} must be a boolean, got {v!r}")
                options[k] = v.lower() in ("true", "1")
        super().__init__(**options)
        egl = self.options["vif_enhn_gain_limit"]
        try:
            egl = float(egl)
        except (TypeError, ValueError):
            raise ValueError(f"vif option vif_enhn_gain_limit must be a number, got {egl!r}") from None
        if not 1.0 <= egl <= 100.0:
            raise ValueError(f"vif option vif_enhn_gain_limit={egl} outside [1.0, 100.0]")
        self.options["vif_enhn_gain_limit"] = egl

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        if fmt.width < MIN_SIZE or fmt.height < MIN_SIZE:
            raise ValueError(f"vif needs frames of at least {MIN_SIZE}x{MIN_SIZE}, "
                             f"got {fmt.width}x{fmt.height}")
        self._bpc = fmt.bitdepth
        chunks = 8
        self._scales = []
        w, h = fmt.width, fmt.height
        for s in range(4):
            self._scales.append(_Scale(s, w, h, fmt.dtype, chunks))
            w, h = w // 2, h // 2

    def _sums(self, sc, bpc):
        """Per-scale integer sums (num_log, den_log, non_log_num, non_log_den)."""
        if sc.s == 0:
            rnd_mu, sh_mu = 1 << (bpc - 1), bpc
            sh_sq = 2 * (bpc - 8)
            rnd_sq = (1 << (sh_sq - 1)) if sh_sq else 0
        else:
            rnd_mu, sh_mu, rnd_sq, sh_sq = 32768, 16, 32768, 16
        o = self.options
        vif_scale_sums(sc.P, sc.Q, sc.h, sc.w, FILTERS[sc.s], sc.coef, rnd_mu, sh_mu, rnd_sq, sh_sq,
                       float(o["vif_enhn_gain_limit"]), LOG2, bool(self.fma),
                       sc.vacc, sc.vmu, sc.vsq, sc.hmu, sc.hsq, sc.rows)
        return tuple(int(v) for v in sc.rows.sum(axis=0))

    def integer_sums(self, ref_y, dis_y):
        """The four integer sums of every scale (None for a skipped scale 0)."""
        bpc = self._bpc
        skip0 = bool(self.options["vif_skip_scale0"])
        out = []
        sc = self._scales[0]
        pad_rows(ref_y, sc.P, sc.half)
        pad_rows(dis_y, sc.Q, sc.half)
        for s, sc in enumerate(self._scales):
            out.append(None if (s == 0 and skip0) else self._sums(sc, bpc))
            if s < 3:
                nx = self._scales[s + 1]
                rnd, sh = ((1 << (bpc - 1)), bpc) if s == 0 else (32768, 16)
                subsample(sc.P, sc.Q, sc.h, sc.w, sc.half, FILTERS[s + 1], rnd, sh,
                          nx.P, nx.Q, nx.half, sc.sub_vacc, sc.sub_vrow, sc.sub_eo)
        return out

    def compute(self, ref_y: np.ndarray, dis_y: np.ndarray) -> dict:
        """All outputs for one luma pair (2-D arrays at the format's bit depth)."""
        sums = self.integer_sums(ref_y, dis_y)
        nums, dens = [], []
        for s in sums:
            if s is None:
                nums.append(np.float32(0.0))
                dens.append(np.float32(-1.0))
                continue
            num_log, den_log, nl_num, nl_den = s
            nums.append(np.float32(num_log / 2048.0 + (nl_den - (nl_num / 16384.0) / 65025.0)))
            dens.append(np.float32(den_log / 2048.0 + nl_den))
        vals = {}
        for s in range(4):
            if sums[s] is None:
                vals[f"vif_scale{s}"] = 0.0
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    vals[f"vif_scale{s}"] = float(nums[s] / dens[s])
        if self.options["debug"]:
            first = 1 if sums[0] is None else 0
            num = sum(float(nums[s]) for s in range(first, 4))
            den = sum(float(dens[s]) for s in range(first, 4))
            vals["vif"] = 1.0 if den == 0.0 else num / den
            vals["vif_num"] = num
            vals["vif_den"] = den
            for s in range(4):
                vals[f"vif_num_scale{s}"] = float(nums[s])
                vals[f"vif_den_scale{s}"] = float(dens[s])
        return vals

    def extract(self, index, ref, dis):
        return [(index, self.compute(ref[0], dis[0]))]
