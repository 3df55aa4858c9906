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

**Implementation.**  Per scale, one pass over row bands (starting at even
rows; see ``_par``: a call runs on one thread).  Each pair of padded input
rows (2m, 2m + 1) enters a per-band ring once, as 16-bit streams (x, y and
the products' 16-bit halves) with the two rows interleaved, so that the
vertical sums are 16-bit multiply-adds of pairs of taps (``pmaddwd``
through an LLVM intrinsic; a portable IR fallback elsewhere); output rows 2m and 2m + 1 are
both sums over the same pairs (taps ``f0 f1 | f2 f3 | ...`` and ``0 f0 | f1
f2 | ...``), computed together so that each pair is loaded once for both
(scales 0 and 1; the vertical pass is bound by memory traffic); the
horizontal sums of mu and of the squares' 16-bit halves are
multiply-adds of adjacent samples the same way (scales 0 and 1; the small
scales 2 and 3 use 32-bit and float64 kernels), then the statistic,
written as LLVM vector code 16 pixels a step (``_stat_sums``: the int64
values of the reference carried exactly in float64, the log2's shift read
from the float's exponent; on AVX-512 the log2 table is replaced by 32
cubics in float32 that reproduce it exactly, see ``log2_cubics``).  The
decimation into the next scale reads the same ring at the rows it keeps and
filters only the columns it keeps.  The hot kernels ask LLVM for 512-bit
vectors (``"prefer-vector-width"="512"``) where the CPU has AVX-512.  All
integer sums are exact, so they equal libvmaf's whatever the band split.

Options (libvmaf's names, defaults and ranges; its aliases ``egl`` and
``ssclz`` are accepted): ``vif_enhn_gain_limit`` (100.0, in [1, 100]),
``vif_skip_scale0`` (False: scale 0 is not computed, ``vif_scale0`` is 0, its
debug numerator 0 and denominator -1, and ``vif`` pools scales 1..3),
``debug`` (False).  libvmaf's integer VIF has no ``vif_kernelscale`` (only
its float VIF has).  Frames must be at least 16 pixels in each direction (the
mirrored borders of scale 3 need 2 samples).
"""
from __future__ import annotations

import functools

import numpy as np

from ._jit import intrinsic, lazy_module, njit
from ._par import KERNEL, KERNEL_THREADS, band_count, ir_splat, noinline
from ._par import lane_add as _add, lane_mul as _mul, lane_shr as _shr
from .base import FeatureExtractor, FrameFormat
from .registry import register

#: Numba's types and llvmlite's IR, imported when a kernel compiles
types = lazy_module("numba.core.types")
ir = lazy_module("llvmlite.ir")

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


def _fma32(a, b, c):
    """float32 fused multiply-add, in float64: the product of two float32
    is exact there, the sum is rounded to float64 then to float32 (which can
    differ from one rounding by an ulp in rare cases: log2_cubics keeps a
    margin of several ulps, and the tests run the kernel's own code)."""
    return np.float32(np.asarray(a, np.float64) * np.asarray(b, np.float64)
                      + np.asarray(c, np.float64))


def cubic_eval(c, u):
    """The cubic c (c3, c2, c1, c0) at u, as the kernel evaluates it."""
    return _fma32(_fma32(_fma32(c[0], u, c[1]), u, c[2]), u, c[3])


@functools.lru_cache(maxsize=None)
def log2_cubics(min_margin: float = 2e-5):
    """The log2 table as 32 cubics, for the AVX-512 statistic (16 lanes
    without a load per lane): (coefficients (4, 32) float32, c3 first,
    bases (32,) int32), or None if the fit does not reproduce the table.

    For an index 32768 + m (m < 2^15), interval j = m >> 10, u = m & 1023:
    ``T = bases[j] + trunc(cubic_j(u))``, the cubic in float32 fused
    multiply-adds (Horner).  The table's T[i] = round(2048 float32(log2 i))
    is floor(2048 log2 i + 1/2 + 2^-10) (the float32 log2 is within 2^-21 of
    log2 i, and rounds the cases within it of a half up); each cubic is a
    least-squares fit of that on Chebyshev nodes, its constant then moved to
    the middle of the window that keeps every one of its 1024 values on the
    right side of the integers.  Checked here for every index (smallest
    distance to a wrong result ~8e-5, the evaluation's rounding ~1e-5) and
    by the tests through the kernel's own code.  Computed when the
    statistic is compiled (the constants are then in the cached code)."""
    nj, wj = 32, 1024
    coefs = np.zeros((4, nj), np.float32)
    bases = np.zeros(nj, np.int32)
    nodes = (np.cos(np.pi * (np.arange(64) + 0.5) / 64) + 1) / 2 * (wj - 1)
    u = np.arange(wj, dtype=np.float32)
    for j in range(nj):
        f = 2048 * np.log2(32768.0 + j * wj + np.arange(wj)) + 0.5 + 2.0 ** -10
        bases[j] = int(np.floor(f[0]))
        want = np.floor(f) - bases[j]
        fn = 2048 * np.log2(32768.0 + j * wj + nodes) + 0.5 + 2.0 ** -10 - bases[j]
        c = np.polyfit(nodes, fn, 3).astype(np.float32)
        for _ in range(3):
            z = cubic_eval(c, u).astype(np.float64)
            c[3] = np.float32(c[3] + ((want + 1 - z).min() - (z - want).min()) / 2)
        z = cubic_eval(c, u).astype(np.float64)
        if min((z - want).min(), (want + 1 - z).min()) < min_margin:
            return None
        if not np.array_equal(np.floor(z) + bases[j], LOG2[32768 + j * wj + np.arange(wj)]):
            return None
        coefs[:, j] = c
    return coefs, bases


OPTION_ALIASES = {"egl": "vif_enhn_gain_limit", "ssclz": "vif_skip_scale0"}


# ---------------------------------------------------------------- intrinsics

@intrinsic
def _prefer512(typingctx):
    """Let LLVM use 512-bit vectors in the calling function (its default on
    AVX-512 CPUs is 256): the attribute ``"prefer-vector-width"="512"``.  A
    no-op on CPUs without AVX-512."""
    def codegen(context, builder, sig, args):
        # llvmlite's attribute set accepts only its known names
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


# ---------------------------------------------------------------- kernels

_JIT = dict(KERNEL, error_model="numpy")


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
def pad_rows2(ra, da, P, Q, half, nch):
    """pad_rows of ref and dis in nch row bands."""
    h = ra.shape[0]
    w = ra.shape[1]
    for c in range(2 * nch):
        src, dst = (ra, P) if c < nch else (da, Q)
        b = c % nch
        for i in range((b * h) // nch, ((b + 1) * h) // nch):
            s = src[i]
            d = dst[half + i]
            for j in range(w):
                d[j] = s[j]
    _mirror_rows(P, half, h, w)
    _mirror_rows(Q, half, h, w)


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


# Horizontal kernels of the small scales (2 and 3; 3's centre tap is not an
# int16, so pmaddwd does not apply): the taps written out, so that the sums
# stay in registers; c holds the taps from the outermost to the centre,
# zero-padded to 5.  The mu sums are 32-bit like libvmaf's (they cannot
# overflow); the squares' sums are exact in float64 (below 2^49).

@njit(**_JIT)
def _h_mu9(x, c, w, o):
    _prefer512()
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
    _prefer512()
    c0 = np.float64(c[0])
    c1 = np.float64(c[1])
    c2 = np.float64(c[2])
    c3 = np.float64(c[3])
    c4 = np.float64(c[4])
    for j in range(w):
        v = (c0 * (x[j] + x[j + 8]) + c1 * (x[j + 1] + x[j + 7])
             + c2 * (x[j + 2] + x[j + 6]) + c3 * (x[j + 3] + x[j + 5])
             + c4 * x[j + 4])
        # (sum + 2^15) >> 16, exactly (the sum is below 2^49), modulo 2^32
        o[j] = np.uint32(np.int64(np.floor((v + 32768.0) * (1.0 / 65536.0))) & 0xFFFFFFFF)


STAT_LANES = 16  # pixels per step of _stat_sums


def _emit_log2q(builder, x, tdata, cubic):
    """libvmaf's log2 (1/2048 units) of the integer-valued doubles x >= 2^16
    (<STAT_LANES x double>), in int32 lanes, from the high 32 bits of each
    double (exponent and the top 20 bits of the mantissa): the table at
    tdata (one load per lane: faster here than vpgatherdd, measured), or
    with ``cubic`` (AVX-512) the table's cubics of log2_cubics, their
    coefficients picked by a two-register permute, no load at all."""
    L = STAT_LANES
    i32 = ir.IntType(32)
    v32 = ir.VectorType(i32, L)

    def c32(v):
        return ir.Constant(v32, [v] * L)

    hi_idx = ir.Constant(v32, [2 * l + 1 for l in range(L)])
    h = builder.shuffle_vector(builder.bitcast(x, ir.VectorType(i32, 2 * L)),
                               ir.Constant(ir.VectorType(i32, 2 * L), None), hi_idx)
    k11 = builder.shl(builder.sub(builder.lshr(h, c32(20)), c32(1023 + 15)), c32(11))
    m = builder.and_(builder.lshr(h, c32(5)), c32(0x7FFF))
    if cubic is None:
        idx = builder.or_(m, c32(0x8000))
        t = ir.Constant(v32, None)
        for l in range(L):
            il = builder.extract_element(idx, ir.Constant(i32, l))
            t = builder.insert_element(t, builder.load(builder.gep(tdata, [il])),
                                       ir.Constant(i32, l))
        return builder.add(t, k11)
    coefs, bases = cubic
    vf = ir.VectorType(ir.FloatType(), L)

    def fn(name, ret, *ats):
        return builder.module.declare_intrinsic(name, fnty=ir.FunctionType(ret, list(ats)))

    perm_f = fn("llvm.x86.avx512.vpermi2var.ps.512", vf, vf, v32, vf)
    perm_i = fn("llvm.x86.avx512.vpermi2var.d.512", v32, v32, v32, v32)
    fma = fn("llvm.fma.v%df32" % L, vf, vf, vf, vf)
    j = builder.lshr(m, c32(10))
    u = builder.sitofp(builder.and_(m, c32(1023)), vf)
    cs = [builder.call(perm_f, [ir.Constant(vf, [float(v) for v in row[:L]]), j,
                                ir.Constant(vf, [float(v) for v in row[L:]])]) for row in coefs]
    z = cs[0]
    for c in cs[1:]:
        z = builder.call(fma, [z, u, c])
    base = builder.call(perm_i, [ir.Constant(v32, [int(v) for v in bases[:L]]), j,
                                 ir.Constant(v32, [int(v) for v in bases[L:]])])
    return builder.add(builder.add(builder.fptosi(z, v32), base), k11)


def _log2_cubic():
    """log2_cubics() where the statistic runs on AVX-512, else None (table)."""
    return log2_cubics() if _simd_mode() == 512 else None


@intrinsic
def _log2q_lanes(typingctx, x, tab, out, cubic):
    """out[j] = libvmaf's log2 of x[j] (float64 integers >= 2^16) as the
    statistic computes it, STAT_LANES at a time (len(x) a multiple of it);
    cubic (a literal bool): the AVX-512 cubics where available.  For tests."""
    if not isinstance(cubic, types.BooleanLiteral):
        return None

    def codegen(context, builder, sig, args):
        from numba.core import cgutils
        L = STAT_LANES
        xa = context.make_array(sig.args[0])(context, builder, args[0])
        oa = context.make_array(sig.args[2])(context, builder, args[2])
        tdata = context.make_array(sig.args[1])(context, builder, args[1]).data
        n = builder.udiv(builder.extract_value(xa.shape, 0), ir.Constant(ir.IntType(64), L))
        vd = ir.VectorType(ir.DoubleType(), L)
        vi = ir.VectorType(ir.IntType(32), L)
        cub = _log2_cubic() if cubic.literal_value else None
        with cgutils.for_range(builder, n) as loop:
            j = builder.mul(loop.index, ir.Constant(ir.IntType(64), L))
            v = builder.load(builder.bitcast(builder.gep(xa.data, [j]), vd.as_pointer()), align=8)
            r = _emit_log2q(builder, v, tdata, cub)
            builder.store(r, builder.bitcast(builder.gep(oa.data, [j]), vi.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.void(x, tab, out, cubic), codegen


@intrinsic
def _stat_sums(typingctx, hm1, hm2, hxx, hyy, hxy, w, egl, tab, use_fma):
    """The VIF statistic of the pixels j < w of a row from its filtered
    moments (uint32 rows: mu1, mu2 and the shifted xx, yy, xy, each with room
    for w rounded up to STAT_LANES), as (num_log, den_log, non_log_num,
    non_log_den).  Written as LLVM vector code, STAT_LANES pixels a step:
    Numba's loop left it scalar (its int64 <-> float64 conversions have no
    AVX2 instruction).  Every value that the reference computes in int64 is
    an integer below 2^53 here, so it is carried exactly in float64; the
    fixed-point log2 takes the exponent and top mantissa bits of that float
    (x >> k = 2^15 + mantissa >> 37 for k = exponent - 15), from its high 32
    bits.  The per-lane sums are int32 (rows up to 400000 pixels); lanes
    past w are computed but not summed (their table indices stay in range)."""
    arrs = (hm1, hm2, hxx, hyy, hxy)
    if not all(isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.uint32
               for a in arrs):
        return None
    if not (isinstance(tab, types.Array) and tab.dtype == types.int32):
        return None
    rty = types.UniTuple(types.int64, 4)

    def codegen(context, builder, sig, args):
        from numba.core import cgutils
        L = STAT_LANES
        i32, i64, dbl = ir.IntType(32), ir.IntType(64), ir.DoubleType()
        v32, vf = ir.VectorType(i32, L), ir.VectorType(dbl, L)

        def cf(x):
            return ir.Constant(vf, [x] * L)

        def c32(x):
            return ir.Constant(v32, [x] * L)

        def splat(x, vty):
            return ir_splat(builder, x, vty)

        def fn(name, ret, *ats):
            return builder.module.declare_intrinsic(name, fnty=ir.FunctionType(ret, list(ats)))

        datas = [context.make_array(t)(context, builder, v).data
                 for t, v in zip(sig.args[:5], args[:5])]
        w_v = context.cast(builder, args[5], sig.args[5], types.int64)
        egl_v = splat(context.cast(builder, args[6], sig.args[6], types.float64), vf)
        tdata = context.make_array(sig.args[7])(context, builder, args[7]).data
        fma_on = context.cast(builder, args[8], sig.args[8], types.boolean)
        f_fma = fn("llvm.fma.v%df64" % L, vf, vf, vf, vf)
        f_trunc = fn("llvm.trunc.v%df64" % L, vf, vf)
        # per-lane sums in int32 (a lane sums w / L pixels: the logs are
        # below 2^17 each; non_log_num as its 16-bit halves)
        accs = [cgutils.alloca_once_value(builder, c32(0)) for _ in range(5)]
        w_s = splat(builder.trunc(w_v, i32), v32)  # rows are below 2^31 pixels
        nvec = builder.udiv(builder.add(w_v, ir.Constant(i64, L - 1)), ir.Constant(i64, L))
        cubic = _log2_cubic()

        def log2q(x):
            return _emit_log2q(builder, x, tdata, cubic)

        H = L // 2
        vq = ir.VectorType(i64, H)
        lo32 = ir.Constant(vq, [0xFFFFFFFF] * H)
        rq = ir.Constant(vq, [1 << 31] * H)
        sh32 = ir.Constant(vq, [32] * H)
        # result lane 2l: the high half of (even product + 2^31), lane 2l + 1:
        # that of (odd product + 2^31), i.e. the odd int32 halves of both
        hi_mix = ir.Constant(ir.VectorType(i32, L),
                             [(2 * (l // 2) + 1) + (L if l % 2 else 0) for l in range(L)])

        def halves(a):  # the even and odd uint32 lanes of a, zero-extended in int64 lanes
            q = builder.bitcast(a, vq)
            return builder.and_(q, lo32), builder.lshr(q, sh32)

        def msq(a, b):  # ((a * b + 2^31) >> 32) as int32 bits (vpmuludq on even/odd lanes)
            pe = builder.add(builder.mul(a[0], b[0]), rq)
            po = builder.add(builder.mul(a[1], b[1]), rq)
            return builder.shuffle_vector(builder.bitcast(pe, v32), builder.bitcast(po, v32),
                                          hi_mix)

        def row_loop(fused):
            with cgutils.for_range(builder, nvec) as loop:
                j = builder.mul(loop.index, ir.Constant(i64, L))
                m1, m2, xx, yy, xy = [
                    builder.load(builder.bitcast(builder.gep(d, [j]), v32.as_pointer()), align=4)
                    for d in datas]
                lanes = builder.add(splat(builder.trunc(j, i32), v32),
                                    ir.Constant(v32, list(range(L))))
                live = builder.icmp_signed("<", lanes, w_s)
                h1, h2 = halves(m1), halves(m2)
                s1 = builder.sub(xx, msq(h1, h1))
                s2 = builder.sub(yy, msq(h2, h2))
                s12 = builder.sub(xy, msq(h1, h2))
                s2 = builder.select(builder.icmp_signed("<", s2, c32(0)), c32(0), s2)
                is_log = builder.icmp_signed(">=", s1, c32(SIGMA_NSQ))
                lg = builder.and_(is_log, live)
                nlg = builder.and_(builder.not_(is_log), live)
                s2n = builder.select(nlg, s2, c32(0))
                for a, v in zip(accs[2:], (builder.lshr(s2n, c32(16)),
                                           builder.and_(s2n, c32(0xFFFF)),
                                           builder.zext(nlg, v32))):
                    builder.store(builder.add(builder.load(a), v), a)
                # the logs and the division only where some pixel of the step
                # is above the noise floor: in flat areas (a third to three
                # quarters of 16-pixel steps in natural footage at scale 0)
                # every pixel takes the other branch
                any_log = builder.icmp_unsigned(
                    "!=", builder.bitcast(lg, ir.IntType(L)), ir.Constant(ir.IntType(L), 0))
                with builder.if_then(any_log):
                    s1c = builder.select(is_log, s1, c32(SIGMA_NSQ))
                    fs1 = builder.sitofp(s1c, vf)
                    fs12 = builder.sitofp(s12, vf)
                    fs2 = builder.sitofp(s2, vf)
                    dl = builder.sub(log2q(builder.fadd(fs1, cf(float(SIGMA_NSQ)))),
                                     c32(2048 * 17))
                    g = builder.fdiv(fs12, builder.fadd(fs1, cf(EPS)))
                    if fused:
                        t = builder.call(f_fma, [builder.fneg(g), fs12, fs2])
                    else:
                        t = builder.fsub(fs2, builder.fmul(g, fs12))
                    t = builder.call(f_trunc, [t])
                    sv = builder.select(builder.fcmp_ordered("<", t, cf(0.0)), cf(0.0), t)
                    g = builder.select(builder.fcmp_ordered("<", egl_v, g), egl_v, g)
                    n1 = builder.fadd(sv, cf(float(SIGMA_NSQ)))
                    n2 = builder.fadd(builder.call(f_trunc, [builder.fmul(builder.fmul(g, g), fs1)]),
                                      n1)
                    nl = builder.sub(log2q(n2), log2q(n1))
                    pos = builder.and_(builder.icmp_signed(">", s12, c32(0)),
                                       builder.icmp_signed(">", s2, c32(0)))
                    for a, v in zip(accs[:2], (builder.select(builder.and_(lg, pos), nl, c32(0)),
                                               builder.select(lg, dl, c32(0)))):
                        builder.store(builder.add(builder.load(a), v), a)

        # one loop per rounding of sigma2_sq - g * sigma12, chosen once per row
        with builder.if_else(fma_on) as (then, otherwise):
            with then:
                row_loop(True)
            with otherwise:
                row_loop(False)
        tots = []
        for a in accs:
            v = builder.load(a)
            tot = ir.Constant(i64, 0)
            for l in range(L):
                tot = builder.add(tot, builder.zext(builder.extract_element(v, ir.Constant(i32, l)), i64))
            tots.append(tot)
        outs = [tots[0], tots[1],
                builder.add(builder.shl(tots[2], ir.Constant(i64, 16)), tots[3]), tots[4]]
        return context.make_tuple(builder, sig.return_type, outs)

    return rty(hm1, hm2, hxx, hyy, hxy, w, egl, tab, use_fma), codegen


# Ring-buffered vertical pass with 16-bit multiply-adds.  Each padded input
# row r enters the ring once, as uint16 streams (0 x, 1 y, 2 xx_lo, 3 yy_lo,
# 4 xy_lo, 5 xx_hi, 6 yy_hi, 7 xy_hi: the products x*x, y*y, x*y split into
# 16-bit halves; the high halves are all zero for 8-bit input at scale 0 and
# are not used there), stored as v - 32768 (int16): slot r % n holds the
# rows r, r + 1 interleaved (r in the low halves of its int32 elements).  A
# vertical sum sum_k f_k v_k is then pairs f_2m * v_2m + f_2m+1 * v_2m+1
# (one pmaddwd per pair of taps, the last pair with f = 0) plus
# 32768 * sum f = 2^31, exactly, in wrapping 32-bit arithmetic (it is at
# most 65536 * 65535).  The shifted squares are put back together exactly:
# ((hi << 16) + lo + rnd) >> sh = (hi << (16 - sh)) + ((lo + rnd) >> sh) for
# sh <= 16, modulo 2^32 like libvmaf's uint32.  The horizontal sums of the
# shifted squares v (uint32) are taken on their halves the same way:
# (sum f v + 2^15) >> 16 = sum f hi + ((sum f lo + 2^15) >> 16).

@functools.lru_cache(maxsize=None)
def _simd_mode():
    """512 (AVX-512BW), 256 (AVX2) or 0 (portable IR) for the pmaddwd steps,
    from the CPU numba compiles for (asked when a kernel compiles: it imports
    Numba)."""
    try:
        from numba.core import config
        import llvmlite.binding as llvm
        if config.CPU_NAME or config.CPU_FEATURES:
            return 0
        f = llvm.get_host_cpu_features()
        if f.get("avx512bw") and f.get("avx512f"):
            return 512
        if f.get("avx2"):
            return 256
    except Exception:
        pass
    return 0


LANES = 16  # int32 results per _madd_step
_NO_TAPS = FILTERS[3].astype(np.int64)


def _emit_madd(builder, mode, v, ce16, co16):
    """<16 x i32>: lo(v[l]) * ce16 + hi(v[l]) * co16 (v: <32 x i16>, pairs)."""
    i16, i32 = ir.IntType(16), ir.IntType(32)
    L = LANES
    v2 = ir.VectorType(i16, 2 * L)
    vi = ir.VectorType(i32, L)
    if mode:
        # the pairs (ce16, co16) as one splat int32 (little-endian halves)
        pair = builder.or_(builder.zext(ce16, i32),
                           builder.shl(builder.zext(co16, i32), ir.Constant(i32, 16)))
        cv = builder.bitcast(_splat(builder, pair), v2)
    if mode == 512:
        fn = builder.module.declare_intrinsic(
            "llvm.x86.avx512.pmaddw.d.512", fnty=ir.FunctionType(vi, [v2, v2]))
        return builder.call(fn, [v, cv])
    u = ir.Constant(v2, None)
    if mode == 256:
        h2 = ir.VectorType(i16, L)
        hi = ir.VectorType(i32, L // 2)
        fn = builder.module.declare_intrinsic(
            "llvm.x86.avx2.pmadd.wd", fnty=ir.FunctionType(hi, [h2, h2]))
        lo_m = ir.Constant(ir.VectorType(i32, L), list(range(L)))
        hi_m = ir.Constant(ir.VectorType(i32, L), list(range(L, 2 * L)))
        r0 = builder.call(fn, [builder.shuffle_vector(v, u, lo_m),
                               builder.shuffle_vector(cv, u, lo_m)])
        r1 = builder.call(fn, [builder.shuffle_vector(v, u, hi_m),
                               builder.shuffle_vector(cv, u, hi_m)])
        return builder.shuffle_vector(r0, r1, ir.Constant(ir.VectorType(i32, L), list(range(L))))
    ev = ir.Constant(ir.VectorType(i32, L), [2 * l for l in range(L)])
    od = ir.Constant(ir.VectorType(i32, L), [2 * l + 1 for l in range(L)])
    ve = builder.sext(builder.shuffle_vector(v, u, ev), vi)
    vo = builder.sext(builder.shuffle_vector(v, u, od), vi)
    return builder.add(builder.mul(ve, _splat(builder, builder.sext(ce16, i32))),
                       builder.mul(vo, _splat(builder, builder.sext(co16, i32))))


def _splat(builder, x):
    """<16 x i32> of the scalar x (truncated to 32 bits)."""
    return ir_splat(builder, x, ir.VectorType(ir.IntType(32), LANES))


def _madd_sums(context, builder, rowsty, rows_v, j_v, taps):
    """The 16-lane int32 sums 2^31 + sum_k lo(rows[k][j + l]) * ce[k] +
    hi(rows[k][j + l]) * co[k] for each (ce, co) in ``taps`` (LLVM values of
    int64 tuples), each row loaded once for all of them."""
    i16, i32 = ir.IntType(16), ir.IntType(32)
    L = LANES
    v2 = ir.VectorType(i16, 2 * L)
    accs = [ir.Constant(ir.VectorType(i32, L), [-2147483648] * L) for _ in taps]
    for k in range(rowsty.count):
        a = context.make_array(rowsty.dtype)(context, builder, builder.extract_value(rows_v, k))
        p = builder.bitcast(builder.gep(a.data, [j_v]), v2.as_pointer())
        v = builder.load(p, align=2)
        for t, (ce_v, co_v) in enumerate(taps):
            ce16 = builder.trunc(builder.extract_value(ce_v, k), i16)
            co16 = builder.trunc(builder.extract_value(co_v, k), i16)
            accs[t] = builder.add(accs[t], _emit_madd(builder, _simd_mode(), v, ce16, co16))
    return accs


def _store_sums(context, builder, outty, out_v, j_v, acc, rnd_v, sh_v):
    """Store the 16 sums acc at out[j:] as _madd_step describes."""
    i16, i32 = ir.IntType(16), ir.IntType(32)
    L = LANES
    o = context.make_array(outty)(context, builder, out_v)
    if isinstance(outty.dtype, types.Float):
        vd = ir.VectorType(ir.DoubleType(), L)
        res = builder.uitofp(acc, vd)
    else:
        res = builder.lshr(builder.add(acc, _splat(builder, rnd_v)), _splat(builder, sh_v))
        vd = ir.VectorType(i32, L)
        if outty.dtype.bitwidth == 16:
            vd = ir.VectorType(i16, L)
            res = builder.xor(builder.trunc(res, vd), ir.Constant(vd, [-32768] * L))
    po = builder.bitcast(builder.gep(o.data, [j_v]), vd.as_pointer())
    builder.store(res, po, align=2)


@intrinsic
def _madd_step(typingctx, rows, ce, co, j, out, rnd, sh):
    """out[j + l] = 2^31 + sum_k lo(rows[k][j + l]) * ce[k]
    + hi(rows[k][j + l]) * co[k], for l < 16, in wrapping int32 (rows: a
    tuple of int32 arrays, each element two int16 halves; ce, co: tuples of
    taps < 2^15); then stored as float64(uint32) if out is float64, as
    ((uint32 + rnd) >> sh) - 32768 if out is int16, else as
    (uint32 + rnd) >> sh (rnd, sh: int64 < 2^15, < 32)."""
    if not isinstance(rows, types.UniTuple):
        return None

    def codegen(context, builder, sig, args):
        rows_v, ce_v, co_v, j_v, out_v, rnd_v, sh_v = args
        acc, = _madd_sums(context, builder, sig.args[0], rows_v, j_v, [(ce_v, co_v)])
        _store_sums(context, builder, sig.args[4], out_v, j_v, acc, rnd_v, sh_v)
        return context.get_dummy_value()

    return types.void(rows, ce, co, j, out, rnd, sh), codegen


@intrinsic
def _madd_step2(typingctx, rows, ce, co, ce2, co2, j, out, out2, rnd, sh):
    """_madd_step of two outputs from the same rows, each row loaded once:
    out with the taps (ce, co), out2 with (ce2, co2)."""
    if not isinstance(rows, types.UniTuple):
        return None

    def codegen(context, builder, sig, args):
        rows_v, ce_v, co_v, ce2_v, co2_v, j_v, out_v, out2_v, rnd_v, sh_v = args
        acc, acc2 = _madd_sums(context, builder, sig.args[0], rows_v, j_v,
                               [(ce_v, co_v), (ce2_v, co2_v)])
        _store_sums(context, builder, sig.args[6], out_v, j_v, acc, rnd_v, sh_v)
        _store_sums(context, builder, sig.args[7], out2_v, j_v, acc2, rnd_v, sh_v)
        return context.get_dummy_value()

    return types.void(rows, ce, co, ce2, co2, j, out, out2, rnd, sh), codegen


@intrinsic
def _madd_step2_split(typingctx, rows, ce, co, ce2, co2, j, oh, ol, oh2, ol2):
    """_madd_step2 of a square stream (uint32 sums v, not shifted) stored
    as the int16 halves the horizontal pass takes: oh = (v >> 16) - 32768,
    ol = (v & 0xFFFF) - 32768 (oh2, ol2 for the taps (ce2, co2)); the same
    as _madd_step2 into uint32 rows then _sq_split, without the rows."""
    if not isinstance(rows, types.UniTuple):
        return None

    def codegen(context, builder, sig, args):
        rows_v, ce_v, co_v, ce2_v, co2_v, j_v = args[:6]
        i16 = ir.IntType(16)
        vi = ir.VectorType(ir.IntType(32), LANES)
        vh = ir.VectorType(i16, LANES)
        flip = ir.Constant(vh, [-32768] * LANES)
        accs = _madd_sums(context, builder, sig.args[0], rows_v, j_v,
                          [(ce_v, co_v), (ce2_v, co2_v)])
        # args 6, 7: (oh, ol) of the first sums; 8, 9: of the second
        for acc, k in zip(accs, (6, 8)):
            hi = builder.xor(builder.trunc(builder.lshr(acc, ir.Constant(vi, [16] * LANES)), vh),
                             flip)
            lo = builder.xor(builder.trunc(acc, vh), flip)
            for a, v in ((k, hi), (k + 1, lo)):
                o = context.make_array(sig.args[a])(context, builder, args[a])
                builder.store(v, builder.bitcast(builder.gep(o.data, [j_v]), vh.as_pointer()),
                              align=2)
        return context.get_dummy_value()

    return types.void(rows, ce, co, ce2, co2, j, oh, ol, oh2, ol2), codegen


def _hsums(context, builder, arrty, row_v, b_v, ce_v, co_v, m):
    """The even and odd outputs' 16-lane sums of _hmadd_step for one row."""
    i16, i32, i64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
    L = LANES
    v2 = ir.VectorType(i16, 2 * L)
    vi = ir.VectorType(i32, L)
    a = context.make_array(arrty)(context, builder, row_v)
    base = builder.gep(a.data, [b_v])
    accs = [ir.Constant(vi, [-2147483648] * L), ir.Constant(vi, [-2147483648] * L)]
    for k in range(m):
        ce16 = builder.trunc(builder.extract_value(ce_v, k), i16)
        co16 = builder.trunc(builder.extract_value(co_v, k), i16)
        for par in (0, 1):
            p = builder.bitcast(builder.gep(base, [ir.Constant(i64, 2 * k + par)]),
                                v2.as_pointer())
            v = builder.load(p, align=2)
            accs[par] = builder.add(accs[par], _emit_madd(builder, _simd_mode(), v, ce16, co16))
    return accs


@intrinsic
def _hmadd_step(typingctx, row, b, ce, co, out):
    """Horizontal filter of 32 outputs: out[b + i] = sum_k f_k v[b + i + k]
    (uint32 bits) for i < 32, where row holds v - 32768 (int16, padded) and
    f = (ce[0], co[0], ce[1], co[1], ...) (taps < 2^15).  The even and odd
    outputs are computed with pairs of adjacent samples, then interleaved.
    With row a pair (hi, lo) of such rows, the halves of a 32-bit value:
    out = sum f hi + ((sum f lo + 2^15) >> 16), i.e. (sum f v + 2^15) >> 16
    for v = hi 2^16 + lo (the squares' horizontal pass)."""
    if not isinstance(ce, types.UniTuple):
        return None
    m = ce.count
    pair = isinstance(row, types.UniTuple)

    def codegen(context, builder, sig, args):
        row_v, b_v, ce_v, co_v, out_v = args
        i32 = ir.IntType(32)
        L = LANES
        vi = ir.VectorType(i32, L)
        if pair:
            aty = sig.args[0].dtype
            hi = _hsums(context, builder, aty, builder.extract_value(row_v, 0), b_v, ce_v, co_v, m)
            lo = _hsums(context, builder, aty, builder.extract_value(row_v, 1), b_v, ce_v, co_v, m)
            accs = [builder.add(h, builder.lshr(builder.add(l, ir.Constant(vi, [32768] * L)),
                                                ir.Constant(vi, [16] * L)))
                    for h, l in zip(hi, lo)]
        else:
            accs = _hsums(context, builder, sig.args[0], row_v, b_v, ce_v, co_v, m)
        mask = []
        for l in range(L):
            mask += [l, L + l]
        res = builder.shuffle_vector(accs[0], accs[1], ir.Constant(ir.VectorType(i32, 2 * L), mask))
        o = context.make_array(sig.args[4])(context, builder, out_v)
        po = builder.bitcast(builder.gep(o.data, [b_v]), ir.VectorType(i32, 2 * L).as_pointer())
        builder.store(res, po, align=4)
        return context.get_dummy_value()

    return types.void(row, b, ce, co, out), codegen


@njit(**_JIT)
def _h_mu_madd(x, c, w, o):
    """o[j] = sum_k c[k] x[j + k] (uint32) for the 17 or 9 taps c (int64);
    x: the padded row as int16 v - 32768, with room for 64 more, or a pair
    of them (hi, lo): see _hmadd_step; o: room for w rounded up to 32."""
    if c.shape[0] == 17:
        ce = (c[0], c[2], c[4], c[6], c[8], c[10], c[12], c[14], c[16])
        co = (c[1], c[3], c[5], c[7], c[9], c[11], c[13], c[15], np.int64(0))
        for b in range(0, w, 2 * LANES):
            _hmadd_step(x, b, ce, co, o)
    else:
        ce5 = (c[0], c[2], c[4], c[6], c[8])
        co5 = (c[1], c[3], c[5], c[7], np.int64(0))
        for b in range(0, w, 2 * LANES):
            _hmadd_step(x, b, ce5, co5, o)


@njit(**_JIT)
def _put_x(p0, p1, w, o):
    """o = the rows p0 (low halves) and p1 (high halves) as v - 32768."""
    _prefer512()
    x8 = np.uint32(0x8000)
    s16 = np.uint32(16)
    for j in range(w):
        o[j] = np.int32((np.uint32(p0[j]) ^ x8) | ((np.uint32(p1[j]) ^ x8) << s16))


@njit(**_JIT)
def _put_prod(p0, q0, p1, q1, w, o, high):
    """As _put_x for the low (high: the high) 16 bits of p * q."""
    _prefer512()
    x8 = np.uint32(0x8000)
    m16 = np.uint32(0xFFFF)
    s16 = np.uint32(16)
    if high:
        for j in range(w):
            a = (np.uint32(p0[j]) * np.uint32(q0[j])) >> s16
            b = (np.uint32(p1[j]) * np.uint32(q1[j])) >> s16
            o[j] = np.int32((a ^ x8) | ((b ^ x8) << s16))
    else:
        for j in range(w):
            a = (np.uint32(p0[j]) * np.uint32(q0[j])) & m16
            b = (np.uint32(p1[j]) * np.uint32(q1[j])) & m16
            o[j] = np.int32((a ^ x8) | ((b ^ x8) << s16))


@njit(**_JIT)
def _ring_row(P, Q, S, T, direct, r, half, h, w, ring, wide):
    """The streams of padded rows r, r + 1 into slot r % n: from P, Q, or
    with ``direct`` straight from the 8-bit input planes S (ref), T (dis),
    the rows pad_rows would have put there (8-bit scale 0: no high halves)."""
    k = r % ring.shape[1]
    if direct:
        a = _src_row(r, half, h)
        b = _src_row(r + 1, half, h)
        _ring_streams(S[a], S[b], T[a], T[b], k, w, ring, False)
    else:
        _ring_streams(P[r], P[r + 1], Q[r], Q[r + 1], k, w, ring, wide)


@njit(inline="always", **_JIT)
def _src_row(r, half, h):
    """The input row that padded row r is (pad_rows' mirror; the extra row
    below the padding, whose sums are never used, is clamped)."""
    i = r - half
    if i < 0:
        i = -i
    if i > h - 1:
        i = 2 * (h - 1) - i
    return min(max(i, 0), h - 1)


@njit(inline="always", **_JIT)
def _ring_streams(p0, p1, q0, q1, k, w, ring, wide):
    _put_x(p0, p1, w, ring[0, k])
    _put_x(q0, q1, w, ring[1, k])
    _put_prod(p0, p0, p1, p1, w, ring[2, k], False)
    _put_prod(q0, q0, q1, q1, w, ring[3, k], False)
    _put_prod(p0, q0, p1, q1, w, ring[4, k], False)
    if wide:
        _put_prod(p0, p0, p1, p1, w, ring[5, k], True)
        _put_prod(q0, q0, q1, q1, w, ring[6, k], True)
        _put_prod(p0, q0, p1, q1, w, ring[7, k], True)


@njit(**_JIT)
def _vm9(ring, s, t, c, w, o, rnd, sh):
    """o[j] = sum_m c[2m] lo(slot t + 2m)[j] + c[2m + 1] hi(slot t + 2m)[j]
    (uint32 bits in int32) for j < w rounded up to 16; c: 10 taps (int64),
    see _vtaps."""
    n = ring.shape[1]
    rw = ring[s]
    rows = (rw[t % n], rw[(t + 2) % n], rw[(t + 4) % n], rw[(t + 6) % n], rw[(t + 8) % n])
    ce = (c[0], c[2], c[4], c[6], c[8])
    co = (c[1], c[3], c[5], c[7], c[9])
    for j in range(0, w, LANES):
        _madd_step(rows, ce, co, j, o, rnd, sh)


@njit(**_JIT)
def _vm5(ring, s, t, c, w, o, rnd, sh):
    n = ring.shape[1]
    rw = ring[s]
    rows = (rw[t % n], rw[(t + 2) % n], rw[(t + 4) % n])
    ce = (c[0], c[2], c[4])
    co = (c[1], c[3], c[5])
    for j in range(0, w, LANES):
        _madd_step(rows, ce, co, j, o, rnd, sh)


@njit(**_JIT)
def _vm3(ring, s, t, c, w, o, rnd, sh):
    """Scalar (its centre tap, 43728, is not an int16; the scale is tiny);
    c: 4 taps, two pairs."""
    n = ring.shape[1]
    r0 = ring[s, t % n]
    r2 = ring[s, (t + 2) % n]
    f0 = np.int64(c[0])
    f1 = np.int64(c[1])
    f2 = np.int64(c[2])
    f3 = np.int64(c[3])
    for j in range(w):
        a = np.int64(r0[j])
        b = np.int64(r2[j])
        v = (f0 * ((a & 0xFFFF) ^ 0x8000) + f1 * (((a >> 16) & 0xFFFF) ^ 0x8000)
             + f2 * ((b & 0xFFFF) ^ 0x8000) + f3 * (((b >> 16) & 0xFFFF) ^ 0x8000))
        o[j] = ((v & 0xFFFFFFFF) + rnd) >> sh


@njit(inline="always", **_JIT)
def _window17(ring, s, t, c, d):
    """The nine slots of stream s from slot t on (the 17-tap window, 18
    taps in pairs) and the taps c and d split into their even and odd
    halves: the arguments of _madd_step2 and _madd_step2_split."""
    n = ring.shape[1]
    rw = ring[s]
    rows = (rw[t % n], rw[(t + 2) % n], rw[(t + 4) % n], rw[(t + 6) % n], rw[(t + 8) % n],
            rw[(t + 10) % n], rw[(t + 12) % n], rw[(t + 14) % n], rw[(t + 16) % n])
    ce = (c[0], c[2], c[4], c[6], c[8], c[10], c[12], c[14], c[16])
    co = (c[1], c[3], c[5], c[7], c[9], c[11], c[13], c[15], c[17])
    de = (d[0], d[2], d[4], d[6], d[8], d[10], d[12], d[14], d[16])
    do = (d[1], d[3], d[5], d[7], d[9], d[11], d[13], d[15], d[17])
    return rows, ce, co, de, do


@njit(**_JIT)
def _vm17_2(ring, s, t, c, d, w, o, o2, rnd, sh):
    """As _vm9 for 18 taps, two outputs: o with the taps c, o2 with d."""
    rows, ce, co, de, do = _window17(ring, s, t, c, d)
    for j in range(0, w, LANES):
        _madd_step2(rows, ce, co, de, do, j, o, o2, rnd, sh)


@njit(**_JIT)
def _vm17_2s(ring, s, t, c, d, w, oh, ol, oh2, ol2):
    """_vm17_2 of a square stream into its int16 halves (_madd_step2_split)."""
    rows, ce, co, de, do = _window17(ring, s, t, c, d)
    for j in range(0, w, LANES):
        _madd_step2_split(rows, ce, co, de, do, j, oh, ol, oh2, ol2)


@njit(**_JIT)
def _vm9_2(ring, s, t, c, d, w, o, o2, rnd, sh):
    n = ring.shape[1]
    rw = ring[s]
    rows = (rw[t % n], rw[(t + 2) % n], rw[(t + 4) % n], rw[(t + 6) % n], rw[(t + 8) % n])
    ce = (c[0], c[2], c[4], c[6], c[8])
    co = (c[1], c[3], c[5], c[7], c[9])
    de = (d[0], d[2], d[4], d[6], d[8])
    do = (d[1], d[3], d[5], d[7], d[9])
    for j in range(0, w, LANES):
        _madd_step2(rows, ce, co, de, do, j, o, o2, rnd, sh)


@njit(inline="always", **_JIT)
def _vr2(n, ring, s, t, c, d, w, o, o2, rnd, sh):
    """_vr of two outputs over the same slots (n = 17 or 9): o with the taps
    c, o2 with d."""
    if n == 17:
        _vm17_2(ring, s, t, c, d, w, o, o2, rnd, sh)
    else:
        _vm9_2(ring, s, t, c, d, w, o, o2, rnd, sh)


@njit(inline="always", **_JIT)
def _vr(n, ring, s, t, c, w, o, rnd, sh):
    """Vertical sums of stream s for the window of slots t, t + 2, ..., with
    the n + 1 taps c (_vtaps), into o (16 at a time: o must have room for w
    rounded up to 16), post-processed as in _madd_step.  n = 9, 5 or 3: the
    17-tap window of scale 0 is only summed two rows at a time (_vr2)."""
    if n == 9:
        _vm9(ring, s, t, c, w, o, rnd, sh)
    elif n == 5:
        _vm5(ring, s, t, c, w, o, rnd, sh)
    else:
        _vm3(ring, s, t, c, w, o, rnd, sh)


def _vtaps(taps):
    """The vertical taps as pairs for the ring's slots (slot r: rows r and
    r + 1): row 0 for an output whose window starts at a slot's first row
    (taps + a trailing 0), row 1 for one starting at its second row (a
    leading 0 + taps); int64, n + 1 each."""
    z = np.zeros(1, dtype=np.int64)
    t = np.asarray(taps, dtype=np.int64)
    return np.stack([np.concatenate([t, z]), np.concatenate([z, t])])


_NO_VTAPS = _vtaps(FILTERS[3])


@njit(**_JIT)
def _sq_split(lo, hi, w, oh, ol, rnd, sh):
    """The shifted vertical square sums v (as _sq_join) split into int16
    rows oh = (v >> 16) - 32768, ol = (v & 0xFFFF) - 32768 (the products'
    high halves are there: an 8-bit scale 0 goes through _madd_step2_split)."""
    _prefer512()
    rn = np.uint32(rnd)
    sf = np.uint32(sh)
    sl = np.uint32(16 - sh)
    m16 = np.uint32(0xFFFF)
    s16 = np.uint32(16)
    x8 = np.uint32(0x8000)
    for j in range(w):
        v = np.uint32((np.uint32(hi[j]) << sl) + ((np.uint32(lo[j]) + rn) >> sf))
        oh[j] = np.int16(np.int32((v >> s16) ^ x8))
        ol[j] = np.int16(np.int32((v & m16) ^ x8))


@njit(**_JIT)
def _sq_join(lo, hi, w, o, rnd, sh):
    """o (float64) = uint32((hi << (16 - sh)) + ((lo + rnd) >> sh))."""
    _prefer512()
    rn = np.uint32(rnd)
    sf = np.uint32(sh)
    sl = np.uint32(16 - sh)
    for j in range(w):
        o[j] = np.float64(np.uint32((np.uint32(hi[j]) << sl) + ((np.uint32(lo[j]) + rn) >> sf)))


@njit(**_JIT)
def _vif_band(bd, c, P, Q, h, w, n, coef, rnd_mu, sh_mu, rnd_sq, sh_sq, egl, tab, use_fma,
              taps, vt, wide, pad, nb, ring, tmp, vmu, vm16, vsq, hmu, hsq32, out,
              do_sub, taps_n, vtn, rnd_n, sh_n, Pn, Qn, sub_vrow, sub_eo, S, T, direct):
    """Rows of band bd (of nb) of vif_scale_sums (see there), with the
    scratch buffers c."""
    noinline()
    hf = n // 2
    nn = taps_n.shape[0]
    hfn = nn // 2
    offn = hf - hfn
    # the next scale's window starts at row i + offn: slot i + offn rounded
    # down to even, taps of the matching parity
    son = offn - offn % 2
    vtn_i = vtn[offn % 2]
    hn = h // 2
    hp = (h + 1) // 2
    rg = ring[c]
    tl = tmp[c, 0]
    th = tmp[c, 1]
    tl2 = tmp[c, 2]
    th2 = tmp[c, 3]
    vm = vmu[c]
    vh = vm16[c]
    hq = hsq32[c]
    vs = vsq[c]
    hm = hmu[c]
    i0 = 2 * ((bd * hp) // nb)
    i1 = min(2 * (((bd + 1) * hp) // nb), h)
    if i0 >= i1:
        return
    for r in range(i0, i0 + n - 1, 2):
        _ring_row(P, Q, S, T, direct, r, hf, h, w, rg, wide)
    e = pad + w
    for i in range(i0, i1, 2):
        _ring_row(P, Q, S, T, direct, i + n - 1, hf, h, w, rg, wide)
        t = i % n
        if n >= 9:
            # taps < 2^15: the horizontal sums with pmaddwd too; rows i
            # and i + 1 from the same slots (vm16 rows 0, 1 and 4, 5;
            # hmu rows 0, 1 and 2, 3; hsq32 rows 0..2 and 3..5)
            for q in range(2):
                _vr2(n, rg, q, t, vt[0], vt[1], w, vh[q][pad:], vh[4 + q][pad:],
                     rnd_mu, sh_mu)
                for par in range(2):
                    _mirror_cols(vh[4 * par + q], pad, w, hf)
                    _h_mu_madd(vh[4 * par + q], taps, w, hm[2 * par + q])
            for q in range(3):
                # the square's sums as int16 halves, vm16 rows 2, 3 (row i)
                # and 6, 7 (row i + 1)
                if wide:
                    _vr2(n, rg, 2 + q, t, vt[0], vt[1], w, tl, tl2, 0, 0)
                    _vr2(n, rg, 5 + q, t, vt[0], vt[1], w, th, th2, 0, 0)
                    for par in range(2):
                        _sq_split(tmp[c, 2 * par], tmp[c, 2 * par + 1], w,
                                  vh[2 + 4 * par][pad:], vh[3 + 4 * par][pad:], rnd_sq, sh_sq)
                else:  # 8-bit scale 0 (17 taps): straight into the halves
                    _vm17_2s(rg, 2 + q, t, vt[0], vt[1], w, vh[2][pad:], vh[3][pad:],
                             vh[6][pad:], vh[7][pad:])
                for par in range(2):
                    _mirror_cols(vh[2 + 4 * par], pad, w, hf)
                    _mirror_cols(vh[3 + 4 * par], pad, w, hf)
                    _h_mu_madd((vh[2 + 4 * par], vh[3 + 4 * par]), taps, w, hq[3 * par + q])
            for par in range(min(2, i1 - i)):
                a, b, e2, d = _stat_sums(hm[2 * par], hm[2 * par + 1], hq[3 * par],
                                         hq[3 * par + 1], hq[3 * par + 2], w, egl, tab,
                                         use_fma)
                out[i + par, 0] = a
                out[i + par, 1] = b
                out[i + par, 2] = e2
                out[i + par, 3] = d
        else:
            for par in range(min(2, i1 - i)):
                tv = vt[par]
                for q in range(2):
                    _vr(n, rg, q, t, tv, w, vm[q][pad:], rnd_mu, sh_mu)
                for q in range(3):
                    _vr(n, rg, 2 + q, t, tv, w, tl, 0, 0)
                    _vr(n, rg, 5 + q, t, tv, w, th, 0, 0)
                    _sq_join(tl, th, w, vs[q][pad:e], rnd_sq, sh_sq)
                    _mirror_cols(vs[q], pad, w, hf)
                    _h_sq9(vs[q], coef, w, hq[q])
                for q in range(2):
                    _mirror_cols(vm[q], pad, w, hf)
                    _h_mu9(vm[q], coef, w, hm[q])
                a, b, e2, d = _stat_sums(hm[0], hm[1], hq[0], hq[1], hq[2], w, egl, tab,
                                         use_fma)
                out[i + par, 0] = a
                out[i + par, 1] = b
                out[i + par, 2] = e2
                out[i + par, 3] = d
        if do_sub and i // 2 < hn:
            vr = sub_vrow[c]
            for q in range(2):
                _vr(nn, rg, q, t + son, vtn_i, w, vr[q][hfn:], rnd_n, sh_n)
            _sub_h(vr, hfn, w, sub_eo[c, 0], sub_eo[c, 1], taps_n,
                   Pn[hfn + i // 2], Qn[hfn + i // 2])


@njit(**_JIT)
def vif_scale_sums(P, Q, h, w, n, coef, rnd_mu, sh_mu, rnd_sq, sh_sq, egl, tab, use_fma,
                   taps, vt, wide, pad, nb, ring, tmp, vmu, vm16, vsq, hmu, hsq32,
                   out, do_sub, taps_n, vtn, rnd_n, sh_n, Pn, Qn, sub_vrow, sub_eo,
                   S, T, direct):
    """VIF sums of one scale: P, Q are the padded ref and dis planes (n // 2
    mirrored rows above and below, and one more row below); with ``direct``
    (8-bit scale 0) the rows come straight from the input planes S, T
    (uint8) instead, mirrored as P, Q would hold them, and P, Q are not
    read.  Scratch (c:
    KERNEL_THREADS, 1; the pass uses [0]): ring (c, 8 or 5, n, w16) int32, tmp
    (c, 2, w16) int32 (w16: w rounded up to 16), vmu (c, 2, w + 2 pad + 16)
    uint32 (n < 9) or vm16 (c, 8, w + 2 pad + 96) int16 (n >= 9), vsq (c, 3,
    w + 2 pad + 16) float64, hmu (c, 4, w + 32) uint32, hsq32 (c, 6, w + 32)
    uint32.  ``coef``: the taps for the horizontal kernels of scales 2 and 3
    (see _h_mu9), ``taps`` all of them (int64), ``wide``
    whether the products need their high 16 bits, ``pad`` the column padding
    of vmu and vsq (8 at scale 0, 4 after).  out (h, 4) int64 gets the
    per-row sums.

    With ``do_sub`` the pass also does subsample() (taps_n, rnd_n, sh_n,
    Pn, Qn; scratch sub_vrow (c, 2, w + 2 hf_n + 16) uint32 and sub_eo as
    there): the next scale's vertical low-pass at the rows it keeps is taken
    from the same ring (its window lies inside this scale's).

    ``vt`` and ``vtn``: this scale's and the next one's vertical taps as
    pairs (_vtaps).  The ring holds only the pairs of rows starting at even
    rows (a band starts at an even row): output rows i (even) and i + 1 are
    both sums over the slots i, i + 2, ..., with the taps vt[0] and vt[1].

    The rows are cut into nb bands (starting at even rows), done in turn
    (see _par)."""
    for bd in range(nb):
        _vif_band(bd, np.int64(0), P, Q, h, w, n, coef, rnd_mu, sh_mu, rnd_sq, sh_sq, egl,
                  tab, use_fma, taps, vt, wide, pad, nb, ring, tmp, vmu, vm16, vsq, hmu,
                  hsq32, out, do_sub, taps_n, vtn, rnd_n, sh_n, Pn, Qn, sub_vrow, sub_eo,
                  S, T, direct)
    if do_sub:
        hfn = taps_n.shape[0] // 2
        _mirror_rows(Pn, hfn, h // 2, w // 2)
        _mirror_rows(Qn, hfn, h // 2, w // 2)


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
    samples of the padded vertical rows; out (uint16) = (sum + 2^15) >> 16.

    In uint32 lanes, the symmetric taps' two samples added first: the
    samples are 16-bit (the vertical pass shifts its sums down to 16 bits)
    and the taps sum to 2^16, so every partial sum, and the total plus 2^15,
    stays below 2^32 (65535 * 65536 + 32768), and a tap times two samples
    below 2^31: the same integers as libvmaf's 64-bit sums."""
    n = taps.shape[0]
    hf = n // 2
    # out[j] = sum_k taps[k] * x[2j + k]; x[2m] = e[m], x[2m + 1] = o[m]
    r15 = np.uint32(32768)
    s16 = np.uint32(16)
    f0 = np.uint32(taps[0])
    f1 = np.uint32(taps[1])
    for q in range(2):
        x0 = e[q]
        x1 = o[q]
        out = out_r if q == 0 else out_d
        if hf == 1:  # taps a b a: x[2j], x[2j+1], x[2j+2]
            for j in range(wn):
                v = _add(_mul(f0, _add(x0[j], x0[j + 1])), _mul(f1, x1[j]))
                out[j] = _shr(_add(v, r15), s16)
        elif hf == 2:  # a b c b a: x[2j .. 2j+4]
            f2 = np.uint32(taps[2])
            for j in range(wn):
                v = _add(_add(_mul(f0, _add(x0[j], x0[j + 2])), _mul(f1, _add(x1[j], x1[j + 1]))),
                         _mul(f2, x0[j + 1]))
                out[j] = _shr(_add(v, r15), s16)
        else:  # 9 taps: x[2j .. 2j+8]
            f2 = np.uint32(taps[2])
            f3 = np.uint32(taps[3])
            f4 = np.uint32(taps[4])
            for j in range(wn):
                v = _add(_add(_mul(f0, _add(x0[j], x0[j + 4])), _mul(f1, _add(x1[j], x1[j + 3]))),
                         _add(_add(_mul(f2, _add(x0[j + 1], x0[j + 3])),
                                   _mul(f3, _add(x1[j + 1], x1[j + 2]))),
                              _mul(f4, x0[j + 2])))
                out[j] = _shr(_add(v, r15), s16)


@njit(**_JIT)
def _sub_h(vr, hf, w, e, o, taps, Pr, Qr):
    """Horizontal part of the decimation of one row: vr (2, w + 2 hf + ...)
    the vertically filtered ref and dis rows at columns hf .. hf + w - 1;
    mirrors them, splits even and odd columns into e, o and filters the even
    columns into Pr, Qr."""
    wp = w + 2 * hf
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
    _h2_even(e, o, taps, w // 2, Pr, Qr)


@njit(**_JIT)
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
    for c in range(nch):
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
            _sub_h(vr, hf, w, e, o, taps, Pn[half_n + i2], Qn[half_n + i2])
    _mirror_rows(Pn, half_n, hn, wn)
    _mirror_rows(Qn, half_n, hn, wn)


# ---------------------------------------------------------------- extractor

#: vif_scale_sums' input planes when it reads the padded ones
_NO_SRC = np.zeros((1, 1), dtype=np.uint8)


def _plain8(a: np.ndarray) -> bool:
    """An 8-bit plane of the type _NO_SRC is (one compiled vif_scale_sums)."""
    f = a.flags
    return a.dtype == np.uint8 and a.ndim == 2 and f.c_contiguous and f.writeable and f.aligned


class _Scale:
    """Buffers of one scale."""

    def __init__(self, s, w, h, in_dtype, chunks):
        self.s, self.w, self.h = s, w, h
        hf = HALF[s]
        self.half = hf
        # uint16 at every scale and bit depth: one compiled vif_scale_sums
        # serves all (an 8-bit scale 0 in uint8 would be a second ~7 s
        # compilation on a cold cache, for a few % of its time)
        dt = np.uint16
        # one more row: the ring pairs rows r, r + 1 (the last one's weight is 0)
        self.P = np.zeros((h + 2 * hf + 1, w), dtype=dt)
        self.Q = np.zeros((h + 2 * hf + 1, w), dtype=dt)
        nch = max(1, min(chunks, h))
        pad = 8 if s == 0 else 4  # what the horizontal kernels read
        self.pad = pad
        # room for the vertical kernels' 16-wide stores
        self.vmu = np.zeros((nch, 2, w + 2 * pad + LANES), dtype=np.uint32)
        self.vsq = np.zeros((nch, 3, w + 2 * pad + LANES), dtype=np.float64)
        # int16 rows of the vertical mu1, mu2 and of a square's high and low
        # halves, with room for the pmaddwd kernels' reads
        self.vm16 = np.zeros((nch, 8, w + 2 * pad + 6 * LANES), dtype=np.int16)
        # horizontal mu1, mu2 of rows i and i + 1
        self.hmu = np.zeros((nch, 4, w + 2 * LANES), dtype=np.uint32)
        self.hsq32 = np.zeros((nch, 6, w + 2 * LANES), dtype=np.uint32)
        taps = FILTERS[s]
        nc = 9 if s == 0 else 5
        self.coef = np.zeros(nc, dtype=np.uint32)
        self.coef[nc - 1 - hf:] = taps[:hf + 1]
        self.rows = np.zeros((h, 4), dtype=np.int64)
        n = len(taps)
        self.wide = not (s == 0 and in_dtype == np.uint8)
        wp = -(-w // LANES) * LANES
        self.ring = np.zeros((nch, 8 if self.wide else 5, n, wp), dtype=np.int32)
        self.tmp = np.zeros((nch, 4, wp), dtype=np.int32)
        self.taps = taps.astype(np.int64)
        self.vt = _vtaps(taps)
        self.sub_dummy = np.zeros((1, 1, 1, 1), dtype=np.uint32)
        if s < 3:
            hn = HALF[s + 1]
            self.sub_vacc = np.zeros((nch, 2, w), dtype=np.uint32)
            self.sub_vrow = np.zeros((nch, 2, w + 2 * hn + LANES), dtype=np.uint32)
            self.taps_n = FILTERS[s + 1].astype(np.int64)
            self.vtn = _vtaps(FILTERS[s + 1])
            self.sub_eo = np.zeros((nch, 2, 2, (w + 2 * hn + 1) // 2), dtype=np.uint32)


@register
class VIF(FeatureExtractor):
    name = "vif"
    reads_chroma = False  # the luma planes only
    warm_size = (64, 64)  # calls the kernels any larger frame calls (tests/test_warmup.py)
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
        chunks = max(1, KERNEL_THREADS)  # one row band per thread
        self._scales = []
        w, h = fmt.width, fmt.height
        for s in range(4):
            self._scales.append(_Scale(s, w, h, fmt.dtype, chunks))
            w, h = w // 2, h // 2

    def _sums(self, sc, bpc, nx=None, src=None):
        """Per-scale integer sums (num_log, den_log, non_log_num, non_log_den);
        with nx (the next scale) also its planes; with src (8-bit scale 0:
        the luma planes ref, dis) the rows are read from there instead of
        sc.P, sc.Q."""
        if sc.s == 0:
            rnd_mu, sh_mu = 1 << (bpc - 1), bpc
            sh_sq = 2 * (bpc - 8)
            rnd_sq = (1 << (sh_sq - 1)) if sh_sq else 0
        else:
            rnd_mu, sh_mu, rnd_sq, sh_sq = 32768, 16, 32768, 16
        o = self.options
        # a few row bands (each band primes its ring with n - 1 rows)
        nb = band_count(KERNEL_THREADS, sc.h)
        if nx is None:
            tn, vtn, pn, qn, vr, eo = (_NO_TAPS, _NO_VTAPS, sc.P, sc.Q, sc.sub_dummy[0],
                                       sc.sub_dummy)
        else:
            tn, vtn, pn, qn, vr, eo = sc.taps_n, sc.vtn, nx.P, nx.Q, sc.sub_vrow, sc.sub_eo
        vif_scale_sums(sc.P, sc.Q, sc.h, sc.w, len(FILTERS[sc.s]), sc.coef, rnd_mu, sh_mu,
                       rnd_sq, sh_sq, float(o["vif_enhn_gain_limit"]), LOG2, bool(self.fma),
                       sc.taps, sc.vt, sc.wide, sc.pad, nb, sc.ring, sc.tmp, sc.vmu,
                       sc.vm16, sc.vsq, sc.hmu, sc.hsq32, sc.rows, nx is not None, tn,
                       vtn, rnd_mu, sh_mu, pn, qn, vr, eo,
                       *(src if src is not None else (_NO_SRC, _NO_SRC)), src is not None)
        return tuple(int(v) for v in sc.rows.sum(axis=0))

    def integer_sums(self, ref_y, dis_y):
        """The four integer sums of every scale (None for a skipped scale 0)."""
        bpc = self._bpc
        skip0 = bool(self.options["vif_skip_scale0"])
        out = []
        sc = self._scales[0]
        # 8-bit scale 0 reads its rows from the planes themselves (when they
        # are the type the kernels are compiled for: C-ordered, writable);
        # otherwise they are copied to uint16 with their mirrored rows first
        src = (ref_y, dis_y) if not skip0 and all(_plain8(a) for a in (ref_y, dis_y)) else None
        if src is None:
            nch = max(1, min(KERNEL_THREADS, len(sc.ring)))
            pad_rows2(ref_y, dis_y, sc.P, sc.Q, sc.half, nch)
        for s, sc in enumerate(self._scales):
            nx = self._scales[s + 1] if s < 3 else None
            if not (s == 0 and skip0):
                # the decimation into the next scale is fused into the pass
                out.append(self._sums(sc, bpc, nx, src if s == 0 else None))
                continue
            out.append(None)
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
