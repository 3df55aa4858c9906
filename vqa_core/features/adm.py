"""ADM (detail loss measure, DLM) and AIM, as libvmaf's integer ``adm`` feature.

Outputs (libvmaf's ``integer_`` names without the prefix): ``adm2``,
``adm_scale0`` .. ``adm_scale3``, ``aim`` and ``adm3``.  Only the luma plane is
used.  The computation follows libvmaf's fixed-point pipeline step by step, so
that the values are the same as libvmaf's (to its printed 6 decimals):

1. **DWT.**  Four levels of a 2-D Daubechies-2 transform with 4 taps in Q15,
   ``lo = (15826, 27411, 7345, -4240)``, ``hi = (-4240, -7345, 27411, -15826)``.
   Output sample ``i`` of a level reads input samples ``2i-1 .. 2i+2``; the
   borders are mirrored (``-1 -> 1``, ``n -> n-1``, ``n+1 -> n-2``); each level
   halves the size, rounding up.  Level 0 works on the pixels (16-bit results):
   vertical pass ``(sum - 46342 * 2^(b-1) + 2^(b-1)) >> b`` for lo (the
   subtraction recentres the pixel range; hi has no offset), horizontal pass
   ``(sum + 2^15) >> 16``.  Levels 1..3 work on the previous approximation
   band in 32 bits: vertical shift 0 / 16 / 16 (round 0, 2^15, 2^15),
   horizontal shift 15 / 16 / 15 (round 2^14, 2^15, 2^14).
2. **Decoupling** of the distorted detail bands (h, v, d) into a restored part
   ``r = clip(t / o, 0, 1) * o`` and an additive part ``a = t - r`` (``o``
   reference, ``t`` distorted coefficient), the division done with libvmaf's
   Q30 reciprocals ``trunc(2^30 / m)`` (operands above 15 bits are first
   rounded to 15 significant bits).  Where the angle between the (h, v) vectors of ``o`` and
   ``t`` is below 1 degree (tested in float), ``r = min(r * egl, t)`` (or max
   for negative ``o``): ``egl`` is ``adm_enhn_gain_limit``.  libvmaf's C code
   truncates ``r * egl`` to an integer; its AVX-512 code (which the x86 builds
   run on CPUs that have it, like the bundled ffmpeg here) rounds half to even
   in the columns its 16-wide loop covers, ``left .. right - (right - left) %
   16``.  vqa does the latter.  It matters only for a non-integer ``egl`` (no
   shipped model has one); libvmaf's AVX2-only path rounds in other columns
   at level 0 and truncates at levels 1..3, so there libvmaf's own values
   differ by about 1e-6.
3. **CSF.**  Each band is weighted by its contrast-sensitivity factor (one
   for h and v, one for d, per level), in fixed point: Q21/Q23 with rounding
   shifts 15/17 at level 0 (factors {36453, 36453, 49417} for the default
   viewing condition and the Watson CSF), ``(x * round_down(f * 2^32) +
   2^27) >> 28`` at levels 1..3.  The factor comes from
   ``adm_csf_mode``: 0 Watson et al. 1997 (from the normalised viewing
   distance and display height), 1 Barten (HDR-VDP-2), 2 the Barten/Watson
   blend tables of the v1 models, 3 the blend tables fitted with MAE.
4. **Contrast masking.**  The masking threshold at a pixel is the 3x3 sum,
   over the three orientations, of ``|csf(masker)| / 30``, with the centre
   counted as ``|csf(masker)| / 15`` (fixed point with libvmaf's rounding
   constants, including the ``(int32_t)(1u << 31)`` that turns the levels
   1..3 terms into ``floor(x - 1/2)``), with the same mirrored borders
   (``-1 -> 1``, ``n -> n-1``).  For DLM the masker is ``a`` and the masked
   signal ``r``; for AIM the masker is ``r`` and the masked signal ``a``.  ``max(|csf(x)| - thr, 0)`` is cubed and summed per
   row with libvmaf's intermediate rounding shifts.
5. **Pooling** on the centre of each band (10 % of the band removed on each
   side: ``left = int(w * 0.1 - 0.5)``): per orientation
   ``num = cbrt(sum) + cbrt(n * adm_noise_weight)`` with ``n`` the pooled
   area; the denominator is the same cube-root norm of the CSF-weighted
   reference bands; per level ``num_s`` and ``den_s`` are the sums over the
   three orientations (float32 like libvmaf).

Then ``adm_scale{s} = num_s / den_s``, ``adm2 = sum num_s / sum den_s`` (1 when
the denominator is below ``1e-10 * w * h / (1920 * 1080)``), ``aim = sum aim_s
/ sum den_s`` (AIM numerator without the noise term), and ``adm3 = max(adm2 *
w + (1 - aim) * (1 - w), adm_min_val)`` with ``w = adm_dlm_weight``.

Options (libvmaf's names, defaults and ranges; libvmaf's short aliases such
as ``egl`` or ``nvd`` are accepted too): ``adm_enhn_gain_limit`` (100),
``adm_norm_view_dist`` (3.0), ``adm_ref_display_height`` (1080),
``adm_csf_mode`` (0), ``adm_csf_scale`` and ``adm_csf_diag_scale`` (1.0, used
by the Barten CSF), ``adm_noise_weight`` (0.03125), ``adm_dlm_weight`` (0.5),
``adm_min_val`` (0.0), ``adm_skip_scale0`` (False: level 0 gives num 0 and den
1e-10), ``adm_skip_aim`` (False: aim is 0), ``debug`` (False: also give
``adm``, ``adm_num``, ``adm_den``, ``adm_num_scale{s}``, ``adm_den_scale{s}``).
As in libvmaf, ``adm_norm_view_dist * adm_ref_display_height`` must be at
least 3 * 1080, and the blend CSFs exist only for display heights 480, 720,
1080 and 2160 at 3H or 5H (and 2160 at 1.5H).  Frames must be at least 33
pixels in each direction.

Accuracy: with every CSF but Barten's, the per-level numerators and
denominators equal libvmaf's bit for bit (checked through its debug outputs),
so the outputs agree to libvmaf's printed precision.  ``adm_csf_mode=1``
(Barten; used by no shipped model) gives CSF factors above 1, which overflow
libvmaf's 16- and 32-bit fixed-point factors; vqa computes what libvmaf's C
code computes, but libvmaf's SIMD code treats the overflowed factors
differently (signed multiplies), so its values differ from its own C
reference and from vqa's at levels 1..3.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import intrinsic, lazy_module, njit
from ._par import KERNEL, KERNEL_THREADS, band_count, ir_splat, noinline
from ._par import clz64 as _clz64, i32 as _i32
from ._par import lane_add as _add, lane_mul as _mul, lane_shr as _shr, lane_sub as _sub
from .base import FeatureExtractor, FrameFormat
from .registry import register

#: Numba's types and llvmlite's IR, imported when a kernel compiles
types = lazy_module("numba.core.types")
ir = lazy_module("llvmlite.ir")

# ---------------------------------------------------------------- constants

_BORDER = 0.1
_F32 = np.float32

# Watson et al. 1997 DWT noise model for Y: a, k, f0, g[theta] (float32 in libvmaf)
_W_A, _W_K, _W_F0 = _F32(0.495), _F32(0.466), _F32(0.401)
_W_G = (_F32(1.501), _F32(1.0), _F32(0.534), _F32(1.0))
_W_AMP = tuple(tuple(_F32(v) for v in row) for row in (
    (0.62171, 0.67234, 0.72709, 0.67234),
    (0.34537, 0.41317, 0.49428, 0.41317),
    (0.18004, 0.22727, 0.28688, 0.22727),
    (0.091401, 0.11792, 0.15214, 0.11792)))

# Barten/Watson blend tables: [theta (0: h/v, 1: d)][scale]
_BLEND = {
    (1080, 3.0): ((0.01183, 0.025026, 0.04295, 0.058621), (0.004302, 0.011778, 0.023918, 0.035901)),
    (1080, 5.0): ((0.004212, 0.014809, 0.029642, 0.047464), (0.000984, 0.005852, 0.0146, 0.027574)),
    (2160, 3.0): ((0.00226, 0.01183, 0.025026, 0.04295), (0.000479, 0.004302, 0.011778, 0.023918)),
    (2160, 5.0): ((0.000092, 0.004212, 0.014809, 0.029642), (0.000050, 0.000984, 0.005852, 0.0146)),
    (720, 3.0): ((0.018715, 0.035637, 0.052798, 0.061509), (0.007999, 0.018396, 0.031851, 0.037718)),
    (720, 5.0): ((0.010144, 0.022561, 0.040309, 0.05672), (0.003463, 0.010282, 0.021839, 0.034641)),
    (480, 3.0): ((0.027961, 0.045875, 0.060275, 0.056234), (0.013572, 0.026277, 0.036959, 0.034511)),
    (480, 5.0): ((0.016781, 0.032822, 0.05032, 0.061594), (0.00691, 0.016545, 0.029917, 0.037777)),
}
_BLEND_MAE = {
    (1080, 3.0): ((0.011249, 0.022606, 0.035930, 0.045673), (0.004097, 0.010921, 0.021430, 0.031313)),
    (1080, 5.0): ((0.004052, 0.013939, 0.026298, 0.038833), (0.000927, 0.005544, 0.013415, 0.024515)),
    (2160, 3.0): ((0.002166, 0.011249, 0.022606, 0.035930), (0.000447, 0.004097, 0.010921, 0.021430)),
    (2160, 5.0): ((0.000077, 0.004052, 0.013939, 0.026298), (0.000045, 0.000927, 0.005544, 0.013415)),
    (720, 3.0): ((0.017329, 0.030870, 0.042134, 0.047410), (0.007509, 0.016707, 0.028072, 0.032722)),
    (720, 5.0): ((0.009689, 0.020577, 0.034162, 0.044523), (0.003302, 0.009579, 0.019661, 0.030318)),
    (480, 3.0): ((0.024969, 0.037825, 0.046676, 0.043974), (0.012511, 0.023424, 0.032139, 0.030166)),
    (480, 5.0): ((0.015665, 0.028766, 0.040612, 0.047483), (0.006514, 0.015107, 0.026476, 0.032776)),
}
# 2160 lines at 1.5H have the pixels per degree of 1080 lines at 3H
_BLEND[(2160, 1.5)] = _BLEND[(1080, 3.0)]
_BLEND_MAE[(2160, 1.5)] = _BLEND_MAE[(1080, 3.0)]

# Barten CSF (HDR-VDP-2 simplification) parameters, float32 in libvmaf
_B_ANCHORS = tuple(_F32(v) for v in (0.002, 0.02, 0.2, 2, 20, 150))
_B_PARAMS = tuple(tuple(_F32(v) for v in row) for row in (
    (0.0160737, 0.991265, 3.74038, 0.50722, 4.46044),
    (0.383873, 0.800889, 3.54104, 0.682505, 4.94958),
    (0.929301, 0.476505, 4.37453, 0.750315, 5.28678),
    (1.29776, 0.405782, 4.40602, 0.935314, 5.61425),
    (1.49222, 0.334278, 3.79542, 1.07327, 6.4635),
    (1.46213, 0.394533, 2.7755, 1.16577, 7.45665)))
_B_SA = tuple(_F32(v) for v in (30.162, 4.0627, 1.6596, 0.2712))
_B_MTF_A = tuple(_F32(v) for v in (0.424838596301290, 0.572435103936480,
                                   0.000167576239164937, 0.00255872352306433))
_B_MTF_B = tuple(_F32(v) for v in (0.028, 0.37, 37, 360))
_CSF_LUM = 100.0

OPTION_ALIASES = {"scf": "adm_csf_scale", "scfd": "adm_csf_diag_scale",
                  "dlmw": "adm_dlm_weight", "egl": "adm_enhn_gain_limit",
                  "nvd": "adm_norm_view_dist", "rdh": "adm_ref_display_height",
                  "csf": "adm_csf_mode", "nw": "adm_noise_weight",
                  "ssz": "adm_skip_scale0", "min": "adm_min_val"}

_RANGES = {"adm_csf_scale": (0.0, 50.0), "adm_csf_diag_scale": (0.0, 50.0),
           "adm_dlm_weight": (0.0, 1.0), "adm_enhn_gain_limit": (1.0, 100.0),
           "adm_norm_view_dist": (0.75, 24.0), "adm_ref_display_height": (1, 4320),
           "adm_csf_mode": (0, 3), "adm_noise_weight": (0.0, 1500.0),
           "adm_min_val": (0.0, 1.0)}

MIN_SIZE = 33


# ---------------------------------------------------------------- CSF factors

def _watson_factor(scale: int, theta: int, nvd: float, rdh: int) -> np.float32:
    """1 / Q(lambda, theta): Watson's DWT quantisation step, float32 as libvmaf."""
    r = float(_F32(nvd * rdh * math.pi / 180.0))
    temp = _F32(math.log10(math.pow(2.0, scale + 1) * float(_W_F0) * float(_W_G[theta]) / r))
    e = float(_F32(_F32(_W_K * temp) * temp))
    q = _F32(2.0 * float(_W_A) * math.pow(10.0, e) / float(_W_AMP[scale][theta]))
    return _F32(_F32(1.0) / q)


def _lerp(lp, lv, rp, rv, sp):
    return _F32(lv + _F32(_F32(_F32(rv - lv) / _F32(rp - lp)) * _F32(sp - lp)))


def _barten_factor(scale: int, nvd: float, rdh: int, lum: float, csf_scale: float) -> np.float32:
    r = _F32(nvd * rdh * math.pi / 180.0)
    sf = _F32(float(r) / math.pow(2, scale + 1))
    lo_, hi_ = float(_B_ANCHORS[0]), float(_B_ANCHORS[5])
    clamped = hi_ if lum > hi_ else (lo_ if lum < lo_ else lum)
    li = ri = 0
    for i in range(5):
        if float(_B_ANCHORS[i]) <= clamped <= float(_B_ANCHORS[i + 1]):
            li, ri = i, i + 1
            break
    lpos = _F32(math.log10(float(_B_ANCHORS[li])))
    rpos = _F32(math.log10(float(_B_ANCHORS[ri])))
    spos = _F32(math.log10(clamped))
    p = [_lerp(lpos, _B_PARAMS[li][k], rpos, _B_PARAMS[ri][k], spos) for k in (1, 2, 3, 4)]
    a = _F32(1.0 + math.pow(float(_F32(p[0] * sf)), float(p[1])))
    x = float(_F32(sf / _F32(7)))
    b = _F32(1.0 / math.pow(1 - math.exp(-math.pow(x, 2)), float(p[2])))
    csf = _F32(float(p[3]) / math.pow(float(_F32(a * b)), 0.5))
    mtf = _F32(0.0)
    for i in range(4):
        mtf = _F32(float(mtf) + float(_B_MTF_A[i]) * math.exp(float(_F32(-_B_MTF_B[i] * sf))))
    lumf = _F32(lum)
    rod = _F32(float(_B_SA[0]) * math.pow(
        math.pow(float(_F32(_B_SA[1] / lumf)), float(_B_SA[2])) + 1, -float(_B_SA[3])))
    return _F32(float(_F32(_F32(csf * mtf) * rod)) * csf_scale)


def csf_factors(opts) -> np.ndarray:
    """float32 CSF factors [scale, theta] (theta 0: h and v, 1: d)."""
    mode = int(opts["adm_csf_mode"])
    nvd = float(opts["adm_norm_view_dist"])
    rdh = int(opts["adm_ref_display_height"])
    out = np.zeros((4, 2), dtype=np.float32)
    for s in range(4):
        if mode == 1:
            out[s, 0] = _barten_factor(s, nvd, rdh, _CSF_LUM, float(opts["adm_csf_scale"]))
            out[s, 1] = _barten_factor(s, nvd, rdh, _CSF_LUM, float(opts["adm_csf_diag_scale"]))
        elif mode in (2, 3):
            table = _BLEND if mode == 2 else _BLEND_MAE
            key = (rdh, nvd)
            if key not in table:
                raise ValueError(
                    f"adm_csf_mode {mode} has no CSF for adm_ref_display_height {rdh} at "
                    f"adm_norm_view_dist {nvd}; known: {sorted(table)}")
            out[s, 0] = _F32(table[key][0][s])
            out[s, 1] = _F32(table[key][1][s])
        else:
            out[s, 0] = _watson_factor(s, 1, nvd, rdh)
            out[s, 1] = _watson_factor(s, 2, nvd, rdh)
    return out


def _ceil_log2(x: int) -> int:
    return int(math.ceil(math.log2(x)))


def _pow2_trunc(e: int) -> int:
    """(uint32_t)pow(2, e) for the small exponents used here (e = -1 gives 0)."""
    return int(math.pow(2, e))


def _cm_region(w: int, h: int):
    left = int(w * _BORDER - 0.5)
    top = int(h * _BORDER - 0.5)
    return top, h - top, left, w - left


def _ext_region(w: int, h: int):
    """Region where decoupling and CSF are computed (one tap wider)."""
    left = max(int(w * _BORDER - 0.5 - 1), 0)
    top = max(int(h * _BORDER - 0.5 - 1), 0)
    right = min(w - left + 2, w)
    bottom = min(h - top + 2, h)
    return top, bottom, left, right


def mirror_indices(n: int) -> np.ndarray:
    """(4, (n+1)//2) input indices 2i-1 .. 2i+2 of the DWT taps, mirrored."""
    half = (n + 1) // 2
    x = 2 * np.arange(half, dtype=np.int64)[None, :] - 1 + np.arange(4, dtype=np.int64)[:, None]
    # (arrays, not a loop over the taps: 16 of these make a 1080p scorer)
    return np.where(x < 0, -x, np.where(x >= n, 2 * n - x - 1, x))


# ---------------------------------------------------------------- kernels

@njit(**KERNEL, inline="always")
def _w32(x):
    return np.int64(np.int32(x))


@njit(**KERNEL)
def _vpass(r0, r1, r2, r3, lo, hi, norm, add_v, sh_v, wrap_v):
    """Vertical DWT pass over four input rows into the lo and hi rows."""
    for j in range(lo.shape[0]):
        s0 = np.int64(r0[j])
        s1 = np.int64(r1[j])
        s2 = np.int64(r2[j])
        s3 = np.int64(r3[j])
        acc = 15826 * s0 + 27411 * s1 + 7345 * s2 - 4240 * s3 - norm
        acc2 = -4240 * s0 - 7345 * s1 + 27411 * s2 - 15826 * s3
        if wrap_v:  # libvmaf's 32-bit accumulator at level 0
            acc = _w32(_w32(acc) + add_v)
            acc2 = _w32(_w32(acc2) + add_v)
        else:
            acc += add_v
            acc2 += add_v
        lo[j] = acc >> sh_v
        hi[j] = acc2 >> sh_v


#: the DWT's filters (lo, hi) as the sample pairs' taps of a multiply-add:
#: ((even, odd) of the pair (s0, s1), (even, odd) of (s2, s3))
_DWT_PAIR_TAPS = ((15826, 27411, 7345, -4240), (-4240, -7345, 27411, -15826))


@intrinsic
def _hdwt_step(typingctx, xs, jj, oas, obs, ad, sh):
    """16 outputs of a horizontal DWT pass at once: for l < 16,
    oas[jj + l] = (15826 s0 + 27411 s1 + 7345 s2 - 4240 s3 + ad) >> sh and
    obs[jj + l] = (-4240 s0 - 7345 s1 + 27411 s2 - 15826 s3 + ad) >> sh,
    (s0, s1, s2, s3) = xs[2 (jj + l) .. 2 (jj + l) + 3], by multiply-adds
    (vpmaddwd) of adjacent 16-bit samples: an output's pairs (s0, s1) and
    (s2, s3) are adjacent in the row, so two loads and four multiply-adds
    replace gathering the even and odd samples for eight multiplies.

    int16 rows and bands (level 0, _hpass32): the samples themselves.  Each
    pair's sum fits in int32 (no tap is -32768); the two pairs' add wraps
    as _hpass32's int32 sums do (they do not reach 2^31).

    int32 rows and bands (levels 1-3, _hpass): their 16-bit halves.  With
    s = 2^16 h + l (h = s >> 16, l = s & 0xFFFF taken as l - 2^15), a sum is
    2^16 (H + K) + L, H and L the multiply-add sums of the h and of the
    l - 2^15, K = 2^15 sum(taps) / 2^16 (23171 for the lo filter, 0 for the
    hi one), so that (sum + ad) >> sh = (H + K) << (16 - sh) + ((L + ad) >>
    sh) exactly for 0 < sh <= 16; |H|, |L + ad| < 54822 * 2^15 + 2^15 < 2^31,
    and only the first term can wrap, as the int64 result does when stored
    into an int32 band.

    Returns whether it did: not for other dtypes (compiled with the callers'
    branches, never run) nor for arrays that are not contiguous."""
    if not all(isinstance(a, types.Array) for a in (xs, oas, obs)):
        return None
    dts = {a.dtype for a in (xs, oas, obs)}
    ok = len(dts) == 1 and dts <= {types.int16, types.int32} and \
        all(a.layout == "C" for a in (xs, oas, obs))
    split = ok and xs.dtype == types.int32

    def codegen(context, builder, sig, args):
        from .vif import LANES, _emit_madd, _simd_mode
        if not ok:
            return ir.Constant(ir.IntType(1), 0)
        xs_v, jj_v, oa_v, ob_v, ad_v, sh_v = args
        i16, i32 = ir.IntType(16), ir.IntType(32)
        n = 2 * LANES
        v16 = ir.VectorType(i16, n)
        vi = ir.VectorType(i32, LANES)
        mode = _simd_mode()
        x = context.make_array(sig.args[0])(context, builder, xs_v)
        base = builder.gep(x.data, [builder.shl(jj_v, ir.Constant(jj_v.type, 1))])
        ptrs = (base, builder.gep(base, [ir.Constant(jj_v.type, 2)]))
        if split:  # (hi halves, lo halves - 2^15) of (s0, s1) and of (s2, s3)
            v32 = ir.VectorType(i32, n)
            loads = [builder.load(builder.bitcast(p, v32.as_pointer()), align=4) for p in ptrs]
            parts = [[builder.trunc(builder.ashr(v, ir.Constant(v32, [16] * n)), v16)
                      for v in loads],
                     [builder.xor(builder.trunc(v, v16), ir.Constant(v16, [-32768] * n))
                      for v in loads]]
        else:
            parts = [[builder.load(builder.bitcast(p, v16.as_pointer()), align=2) for p in ptrs]]

        def fsum(pairs, t):
            c = [ir.Constant(i16, v) for v in t]
            return builder.add(_emit_madd(builder, mode, pairs[0], c[0], c[1]),
                               _emit_madd(builder, mode, pairs[1], c[2], c[3]))
        adv = ir_splat(builder, ad_v, vi)
        shv = ir_splat(builder, sh_v, vi)
        if split:
            up = ir_splat(builder, builder.sub(ir.Constant(sh_v.type, 16), sh_v), vi)
        for taps, arr_v, ty in ((_DWT_PAIR_TAPS[0], oa_v, sig.args[2]),
                                (_DWT_PAIR_TAPS[1], ob_v, sig.args[3])):
            if split:
                k = (sum(taps) << 15) >> 16  # 2^15 sum(taps) / 2^16: the sums are even
                hs = builder.add(fsum(parts[0], taps), ir.Constant(vi, [k] * LANES))
                r = builder.add(builder.shl(hs, up),
                                builder.ashr(builder.add(fsum(parts[1], taps), adv), shv))
                vo = vi
            else:
                vo = ir.VectorType(i16, LANES)
                r = builder.trunc(builder.ashr(builder.add(fsum(parts[0], taps), adv), shv), vo)
            o = context.make_array(ty)(context, builder, arr_v)
            builder.store(r, builder.bitcast(builder.gep(o.data, [jj_v]), vo.as_pointer()),
                          align=vo.element.width // 8)
        return ir.Constant(ir.IntType(1), 1)

    return types.boolean(xs, jj, oas, obs, ad, sh), codegen


@njit(**KERNEL)
def _hdwt_steps(xs, oas, obs, n, add_h, sh_h):
    """Outputs 0.. of a horizontal pass (of n) by _hdwt_step, 16 at a time,
    while it can: the first output it left to the caller's scalar loop."""
    start = 0
    while start + 16 <= n:
        if not _hdwt_step(xs, start, oas, obs, np.int64(add_h), np.int64(sh_h)):
            break
        start += 16
    return start


@njit(**KERNEL)
def _hpass(x, oa, ob, ix, jend, add_h, sh_h):
    """Horizontal pass of row x, decimated by 2: oa lo-filtered, ob hi-filtered.
    Outputs 1..jend-1 read x[2j-1 .. 2j+2] directly; the others through the
    mirrored index table ix.  int32 rows and bands: 16 outputs a step by
    _hdwt_step."""
    n = jend - 1
    if n > 0:
        xs = x[1:]
        oas = oa[1:jend]
        obs = ob[1:jend]
        start = 0
        if (x.itemsize == 4 and oa.itemsize == 4 and ob.itemsize == 4 and 0 < sh_h <= 16
                and 0 <= add_h <= 65536):
            start = _hdwt_steps(xs, oas, obs, n, add_h, sh_h)
        for jj in range(start, n):
            s0 = np.int64(xs[2 * jj])
            s1 = np.int64(xs[2 * jj + 1])
            s2 = np.int64(xs[2 * jj + 2])
            s3 = np.int64(xs[2 * jj + 3])
            oas[jj] = (15826 * s0 + 27411 * s1 + 7345 * s2 - 4240 * s3 + add_h) >> sh_h
            obs[jj] = (-4240 * s0 - 7345 * s1 + 27411 * s2 - 15826 * s3 + add_h) >> sh_h
    for jj in range(oa.shape[0] - jend + 1):  # columns 0 and jend..
        j = 0 if jj == 0 else jend + jj - 1
        s0 = np.int64(x[ix[0, j]])
        s1 = np.int64(x[ix[1, j]])
        s2 = np.int64(x[ix[2, j]])
        s3 = np.int64(x[ix[3, j]])
        oa[j] = (15826 * s0 + 27411 * s1 + 7345 * s2 - 4240 * s3 + add_h) >> sh_h
        ob[j] = (-4240 * s0 - 7345 * s1 + 27411 * s2 - 15826 * s3 + add_h) >> sh_h


@njit(**KERNEL)
def _vpass32(r0, r1, r2, r3, lo, hi, norm, add_v, sh_v):
    """_vpass with libvmaf's 32-bit (wrapping) accumulator, in int32: the
    sums are the same modulo 2^32."""
    k_lo = _i32(((add_v - norm + (1 << 31)) % (1 << 32)) - (1 << 31))
    k_hi = _i32(add_v)
    sh = _i32(sh_v)
    for j in range(lo.shape[0]):
        acc, acc2 = _vsums32(r0[j], r1[j], r2[j], r3[j])
        lo[j] = _shr(_add(acc, k_lo), sh)
        hi[j] = _shr(_add(acc2, k_hi), sh)


@njit(**KERNEL, inline="always")
def _vsums32(x0, x1, x2, x3):
    """The vertical lo and hi filter sums of four samples, in wrapping int32."""
    s0 = _i32(x0)
    s1 = _i32(x1)
    s2 = _i32(x2)
    s3 = _i32(x3)
    c0, c1, c2, c3 = _i32(15826), _i32(27411), _i32(7345), _i32(4240)
    return (_sub(_add(_add(_mul(c0, s0), _mul(c1, s1)), _mul(c2, s2)), _mul(c3, s3)),
            _sub(_sub(_mul(c1, s2), _mul(c3, s0)), _add(_mul(c2, s1), _mul(c0, s3))))


@njit(**KERNEL)
def _vsum16(r0, r1, r2, r3, lo, hi):
    """_vpass of four int16 rows with no offset and no shift (level 1), in
    int32: each sum is at most 54822 * 2^15 < 2^31 in magnitude."""
    for j in range(lo.shape[0]):
        lo[j], hi[j] = _vsums32(r0[j], r1[j], r2[j], r3[j])


@njit(**KERNEL)
def _hpass32(x, oa, ob, ix, jend, add_h, sh_h):
    """_hpass of an int16 row in int32: the sums stay below 2^31
    (54822 * 2^15 + 2^15).  Into int16 bands (level 0), 16 outputs a step
    by _hdwt_step."""
    c0, c1, c2, c3 = _i32(15826), _i32(27411), _i32(7345), _i32(4240)
    ad = _i32(add_h)
    sh = _i32(sh_h)
    n = jend - 1
    if n > 0:
        xs = x[1:]
        oas = oa[1:jend]
        obs = ob[1:jend]
        start = 0
        if x.itemsize == 2 and oa.itemsize == 2 and ob.itemsize == 2:
            start = _hdwt_steps(xs, oas, obs, n, add_h, sh_h)
        for jj in range(start, n):
            s0 = _i32(xs[2 * jj])
            s1 = _i32(xs[2 * jj + 1])
            s2 = _i32(xs[2 * jj + 2])
            s3 = _i32(xs[2 * jj + 3])
            a = _sub(_add(_add(_mul(c0, s0), _mul(c1, s1)), _mul(c2, s2)), _mul(c3, s3))
            b = _sub(_sub(_mul(c1, s2), _mul(c3, s0)), _add(_mul(c2, s1), _mul(c0, s3)))
            oas[jj] = _shr(_add(a, ad), sh)
            obs[jj] = _shr(_add(b, ad), sh)
    for jj in range(oa.shape[0] - jend + 1):  # columns 0 and jend..
        j = 0 if jj == 0 else jend + jj - 1
        s0 = _i32(x[ix[0, j]])
        s1 = _i32(x[ix[1, j]])
        s2 = _i32(x[ix[2, j]])
        s3 = _i32(x[ix[3, j]])
        a = _sub(_add(_add(_mul(c0, s0), _mul(c1, s1)), _mul(c2, s2)), _mul(c3, s3))
        b = _sub(_sub(_mul(c1, s2), _mul(c3, s0)), _add(_mul(c2, s1), _mul(c0, s3)))
        oa[j] = _shr(_add(a, ad), sh)
        ob[j] = _shr(_add(b, ad), sh)


@njit(**KERNEL)
def dwt2(src, out, tmp, iy, ix, norm, add_v, sh_v, add_h, sh_h, wrap_v, nb):
    """One DWT level of ``src`` into ``out[0..3]`` = bands a, h, v, d.

    Output sample i reads input samples 2i-1 .. 2i+2 (``iy``/``ix``: the
    mirrored indices).  ``tmp`` is a scratch of shape (chunks, 2, width) whose
    dtype sets the precision of the vertical pass (int16 at level 0, int32
    after); ``out``'s dtype sets that of the bands.  ``norm`` is subtracted
    from the vertical lo sums; ``wrap_v`` emulates libvmaf's 32-bit vertical
    accumulator.  The rows are cut into nb bands, done in turn with the
    scratch ``tmp[0]`` (see _par).
    """
    w = src.shape[1]
    hh = iy.shape[1]
    ww = ix.shape[1]
    jend = min((w - 3) // 2 + 1, ww)
    lo = tmp[0, 0]
    hi = tmp[0, 1]
    for bd in range(nb):
        _dwt_rows(src, out, lo, hi, iy, ix, norm, add_v, sh_v, add_h, sh_h, wrap_v,
                  (bd * hh) // nb, ((bd + 1) * hh) // nb, jend)


@njit(**KERNEL)
def _dwt_rows(src, out, lo, hi, iy, ix, norm, add_v, sh_v, add_h, sh_h, wrap_v, i0, i1, jend):
    """Rows i0..i1-1 of dwt2."""
    noinline()
    for i in range(i0, i1):
        if wrap_v and lo.itemsize == 2:  # level 0: 32-bit lanes
            _vpass32(src[iy[0, i]], src[iy[1, i]], src[iy[2, i]], src[iy[3, i]],
                     lo, hi, norm, add_v, sh_v)
            _hpass32(lo, out[0, i], out[2, i], ix, jend, add_h, sh_h)
            _hpass32(hi, out[1, i], out[3, i], ix, jend, add_h, sh_h)
        elif src.itemsize == 2 and norm == 0 and add_v == 0 and sh_v == 0 and not wrap_v:
            # level 1 (the int16 band of level 0): plain sums, in int32 lanes
            _vsum16(src[iy[0, i]], src[iy[1, i]], src[iy[2, i]], src[iy[3, i]], lo, hi)
            _hpass(lo, out[0, i], out[2, i], ix, jend, add_h, sh_h)
            _hpass(hi, out[1, i], out[3, i], ix, jend, add_h, sh_h)
        else:
            _vpass(src[iy[0, i]], src[iy[1, i]], src[iy[2, i]], src[iy[3, i]],
                   lo, hi, norm, add_v, sh_v, wrap_v)
            _hpass(lo, out[0, i], out[2, i], ix, jend, add_h, sh_h)
            _hpass(hi, out[1, i], out[3, i], ix, jend, add_h, sh_h)


@njit(**KERNEL)
def _trunc(v, is16):
    if is16:
        return np.int64(np.int16(v))
    return np.int64(np.int32(v))


# Row kernels.  Loops run over 0-based ranges of row slices so that LLVM can
# vectorise them (an index from range(left, right) defeats it).

@njit(**KERNEL)
def _angle_row(oh, ov, th, tv, cos1sq, ang, is16):
    """1 where the angle between (oh, ov) and (th, tv) is below 1 degree
    (libvmaf's float test on the squared cosine).  With 16-bit coefficients
    the dot products are computed in int32 lanes (see the comment below);
    else in int64; either way each exact sum is rounded to float32 once."""
    if is16:
        # the dot products in int32 lanes (exact: |a c + b d| <= 2^31, and
        # 2^31, which wraps to -2^31, is the only value beyond int32's range
        # (-2^31 itself is out of reach); a^2 + b^2 <= 2^31 as uint32), each
        # rounded to float32 once as the reference rounds the exact value
        two31 = np.float32(2147483648.0)
        wrapped = _i32(-2147483648)
        for j in range(ang.shape[0]):
            a = _i32(oh[j])
            b = _i32(ov[j])
            c = _i32(th[j])
            d = _i32(tv[j])
            dot = _add(_mul(a, c), _mul(b, d))
            fd = two31 if dot == wrapped else np.float32(dot)
            fo = np.float32(np.uint32(_add(_mul(a, a), _mul(b, b))))
            ft = np.float32(np.uint32(_add(_mul(c, c), _mul(d, d))))
            d1 = np.float64(fd) / 4096.0
            om = np.float64(fo) / 4096.0
            tm = np.float64(ft) / 4096.0
            ang[j] = 1 if (d1 >= 0.0) & (d1 * d1 >= cos1sq * om * tm) else 0
        return
    for j in range(ang.shape[0]):
        a = np.int64(oh[j])
        b = np.int64(ov[j])
        c = np.int64(th[j])
        d = np.int64(tv[j])
        d1 = np.float64(np.float32(a * c + b * d)) / 4096.0
        om = np.float64(np.float32(a * a + b * b)) / 4096.0
        tm = np.float64(np.float32(c * c + d * d)) / 4096.0
        ang[j] = 1 if (d1 >= 0.0) & (d1 * d1 >= cos1sq * om * tm) else 0


@njit(**KERNEL, error_model="numpy")
def _recip_row(o, rec, shf, is16):
    """Q30 reciprocal of each reference coefficient, with the extra shift for
    magnitudes of 2^15 and more (rounded to 15 significant bits first):
    libvmaf's table's value, trunc(2^30 / m), computed by a float64 division, which
    is exact here (2^30 / m is at least 1 / m from any integer it is not, far
    more than the division's rounding), so that the loop vectorises."""
    n = o.shape[0]
    if is16:
        for j in range(n):
            v = np.float64(o[j])
            q = np.int32(1073741824.0 / v)
            rec[j] = q if v != 0.0 else 0
            shf[j] = 0
        return
    for j in range(n):
        v = np.int64(o[j])
        av = v if v >= 0 else -v
        sh = max(np.int64(64) - _clz64(av) - 15, 0)
        m = (av + ((np.int64(1) << sh) >> 1)) >> sh
        fm = np.float64(m if v >= 0 else -m)
        q = np.int32(1073741824.0 / fm)
        rec[j] = q if m != 0 else 0
        shf[j] = sh


@njit(**KERNEL)
def _decouple_row(o, t, rec, shf, ang, egl, egl_i, is16, nround, rr, aa):
    """Restored (rr) and additive (aa) parts of the distorted coefficients.
    The gain-limited value is truncated, except in the first ``nround``
    columns where it is rounded half to even (libvmaf's AVX-512 code).
    ``egl_i`` > 0: ``egl`` is that integer, and all of it is integer
    arithmetic (float64(rst) * egl is then an exact integer)."""
    if egl_i > 0 and is16:
        # level 0 (shift 0): all but the ratio's product in int32 lanes
        # (|k * o| <= 2^30, |rst * egl_i| < 2^31 for egl_i <= 65535)
        e32 = _i32(egl_i)
        r14 = _i32(16384)
        s15 = _i32(15)
        k0 = _i32(32768)
        for j in range(o.shape[0]):
            ov = _i32(o[j])
            tv = _i32(t[j])
            q = (np.int64(rec[j]) * np.int64(tv) + 16384) >> 15
            k = _i32(min(max(q, 0), 32768))
            k = k0 if ov == 0 else k
            rst = _i32(np.int16(_shr(_add(_mul(k, ov), r14), s15)))
            v = _mul(rst, e32)
            v = min(v, tv) if ov > 0 else max(v, tv)
            enh = (ang[j] != 0) & (k > 0) & (ov != 0)
            rst = _i32(np.int16(v)) if enh else rst
            rr[j] = rst
            aa[j] = np.int16(_sub(tv, rst))
        return
    if egl_i > 0:
        for j in range(o.shape[0]):
            ov = np.int64(o[j])
            tv = np.int64(t[j])
            sh = np.int64(shf[j])
            q = (np.int64(rec[j]) * tv + _w32(np.int64(1) << (14 + sh))) >> (15 + sh)
            k = min(max(q, 0), 32768)
            k = 32768 if ov == 0 else k
            rst = _trunc((k * ov + 16384) >> 15, is16)
            v = rst * egl_i
            v = min(v, tv) if ov > 0 else max(v, tv)
            enh = (ang[j] != 0) & (k > 0) & (ov != 0)
            rst = _trunc(v, is16) if enh else rst
            rr[j] = rst
            aa[j] = _trunc(tv - rst, is16)
        return
    for j in range(o.shape[0]):
        ov = np.int64(o[j])
        tv = np.int64(t[j])
        sh = np.int64(shf[j])
        q = (np.int64(rec[j]) * tv + _w32(np.int64(1) << (14 + sh))) >> (15 + sh)
        k = min(max(q, 0), 32768)
        k = 32768 if ov == 0 else k
        rst = _trunc((k * ov + 16384) >> 15, is16)
        v = rst * egl
        tf = np.float64(tv)
        v = min(v, tf) if ov > 0 else max(v, tf)
        v = np.rint(v) if j < nround else v
        enh = (ang[j] != 0) & (k > 0) & (ov != 0)
        rst = _trunc(np.int64(v), is16) if enh else rst
        rr[j] = rst
        aa[j] = _trunc(tv - rst, is16)


@njit(**KERNEL)
def _csf_row(x, rfv, adv, shv, m_flt, a_flt, s_flt, m_ctr, a_ctr, s_ctr, is16, f, g):
    """CSF-weight ``x`` and add its masking contributions to f (|c|/30) and
    g (|c|/15 - |c|/30, the centre correction)."""
    if is16:  # level 0 in int32 lanes (the products fit, or wrap as libvmaf's)
        rf32 = _i32(rfv)
        ad32 = _i32(adv)
        sh32 = _i32(shv)
        mf, af, sf = _i32(m_flt), _i32(a_flt), _i32(s_flt)
        mc, ac, sc = _i32(m_ctr), _i32(a_ctr), _i32(s_ctr)
        for j in range(x.shape[0]):
            d = _i32(np.int16(_shr(_add(_mul(rf32, _i32(x[j])), ad32), sh32)))
            d = d if d >= 0 else _sub(_i32(0), d)
            fl = _i32(np.int16(_shr(_add(_mul(mf, d), af), sf)))
            ct = _i32(np.int16(_shr(_add(_mul(mc, d), ac), sc)))
            f[j] = _add(f[j], fl)
            g[j] = _add(g[j], _sub(ct, fl))
        return
    for j in range(x.shape[0]):
        v = np.int64(x[j])
        d = _trunc((rfv * v + adv) >> shv, is16)
        d = d if d >= 0 else -d
        fl = _trunc((m_flt * d + a_flt) >> s_flt, is16)
        ct = _trunc((m_ctr * d + a_ctr) >> s_ctr, is16)
        f[j] += fl
        g[j] += ct - fl


@njit(**KERNEL)
def _sum3_row(a, b, c, out):
    for j in range(out.shape[0]):
        out[j] = np.int64(a[j]) + np.int64(b[j]) + np.int64(c[j])


@njit(**KERNEL)
def _cube_sum0(x, thr, rf, sub, add_sq, sh_sq, add_cub, sh_cub):
    """Level 0: sum of rounded max(|x * rf| - (thr << sub), 0)^3."""
    acc = np.int64(0)
    rf32 = _i32(rf)
    for j in range(x.shape[0]):
        v = np.int64(_mul(_i32(x[j]), rf32))  # wraps as libvmaf's 32-bit product
        v = v if v >= 0 else -v
        v = _w32(v - _w32(thr[j] << sub))
        v = v if v > 0 else np.int64(0)
        sq = _w32((v * v + add_sq) >> sh_sq)
        acc += (sq * v + add_cub) >> sh_cub
    return acc


@njit(**KERNEL)
def _cube_sum(x, thr, rf, add_sq, sh_sq, add_cub, sh_cub):
    """Levels 1..3: sum of rounded max(|(x * rf) >> 28| - thr, 0)^3."""
    acc = np.int64(0)
    for j in range(x.shape[0]):
        v = _w32((np.int64(x[j]) * rf + 134217728) >> 28)
        v = v if v >= 0 else -v
        v = _w32(v - thr[j])
        v = v if v > 0 else np.int64(0)
        sq = _w32((v * v + add_sq) >> sh_sq)
        acc += (sq * v + add_cub) >> sh_cub
    return acc


@njit(**KERNEL)
def _den_sum(x, scale0, add_sq, sh_sq, add_cub, sh_cub):
    acc = np.int64(0)
    if scale0:
        for j in range(x.shape[0]):
            v = np.int64(x[j])
            v = v if v >= 0 else -v
            acc += v * v * v
    else:
        for j in range(x.shape[0]):
            v = np.int64(x[j])
            v = v if v >= 0 else -v
            acc += (((v * v + add_sq) >> sh_sq) * v + add_cub) >> sh_cub
    return acc


@njit(**KERNEL)
def _decouple_into(ref, dis, r, left, right, egl, egl_i, cos1sq, rf, add_dst, sh_dst,
                   m_flt, a_flt, s_flt, m_ctr, a_ctr, s_ctr, is16, nround, ang, rec, shf,
                   rbs, abs_, fs, do_aim):
    """Decouple the distorted detail bands of row r into restored ``rbs``
    and additive ``abs_`` (theta 0..2 = h, v, d) and weight both by the CSF,
    on columns left..right-1.  The masking inputs are stored summed over
    orientations in ``fs``: ``f = sum |csf|/30`` and ``g = sum (|csf|/15 -
    |csf|/30)``; fs[0], fs[1] from the additive part (the masker for DLM),
    fs[2], fs[3] from the restored part (for AIM: only with do_aim)."""
    _angle_row(ref[1, r, left:right], ref[2, r, left:right],
               dis[1, r, left:right], dis[2, r, left:right], cos1sq, ang, is16)
    f_n = fs[0, left:right]
    g_n = fs[1, left:right]
    f_a = fs[2, left:right]
    g_a = fs[3, left:right]
    f_n[:] = 0
    g_n[:] = 0
    if do_aim:
        f_a[:] = 0
        g_a[:] = 0
    for t_ in range(3):
        o = ref[t_ + 1, r, left:right]
        rr = rbs[t_, left:right]
        aa = abs_[t_, left:right]
        _recip_row(o, rec, shf, is16)
        _decouple_row(o, dis[t_ + 1, r, left:right], rec, shf, ang, egl, egl_i, is16, nround,
                      rr, aa)
        _csf_row(aa, rf[t_], add_dst[t_], sh_dst[t_], m_flt, a_flt, s_flt,
                 m_ctr, a_ctr, s_ctr, is16, f_n, g_n)
        if do_aim:
            _csf_row(rr, rf[t_], add_dst[t_], sh_dst[t_], m_flt, a_flt, s_flt,
                     m_ctr, a_ctr, s_ctr, is16, f_a, g_a)


@njit(**KERNEL)
def measure_level(ref, dis, egl, egl_i, cos1sq, etop, ebottom, eleft, eright,
                  rf, add_dst, sh_dst, m_flt, a_flt, s_flt, m_ctr, a_ctr, s_ctr, is16, round_end,
                  top, bottom, left, right, sub, add_sq, sh_sq, add_cub, sh_cub, add_in, sh_in,
                  d_add_sq, d_sh_sq, d_add_cub, d_sh_cub, d_add_in, d_sh_in, do_aim,
                  dec_scratch, ring_b, ring_f, pool_scratch, out, nb):
    """Decoupling, CSF and contrast masking of one level, and its per-row
    sums over the pooled region rows top..bottom-1, columns left..right-1:
    out[i, 0:3] DLM numerator (h, v, d), out[i, 3:6] AIM numerator,
    out[i, 6:9] denominator (cubed reference), each rounded and shifted per
    row as libvmaf does.  Decoupling covers the extended region (``e*``); a
    chunk decouples the rows its pooled rows need (each row and its mirrored
    neighbours) into a ring of three row slots, so that the restored and
    additive bands and the masks never go through memory.  The gain-limited
    restored values of columns eleft..round_end-1 are rounded half to even.
    Scratch: dec_scratch (chunks, 3, eright - eleft) int32, ring_b (chunks,
    3, 2, 3, w) of the bands' dtype, ring_f (chunks, 3, 4, w) int32,
    pool_scratch (chunks, 2, w) int32 (the sums wrap as libvmaf's).  The
    pooled rows are cut into nb bands, done in turn with the scratch [0]
    (see _par)."""
    nround = min(max(round_end - eleft, 0), eright - eleft)
    rows = bottom - top
    for bd in range(nb):
        _measure_rows(ref, dis, egl, egl_i, cos1sq, eleft, eright, rf, add_dst,
                      sh_dst, m_flt, a_flt, s_flt, m_ctr, a_ctr, s_ctr, is16, nround,
                      left, right, sub, add_sq, sh_sq, add_cub, sh_cub, add_in, sh_in,
                      d_add_sq, d_sh_sq, d_add_cub, d_sh_cub, d_add_in, d_sh_in, do_aim,
                      dec_scratch[0], ring_b[0], ring_f[0], pool_scratch[0], out,
                      top + (bd * rows) // nb, top + ((bd + 1) * rows) // nb)


@njit(**KERNEL)
def _measure_rows(ref, dis, egl, egl_i, cos1sq, eleft, eright, rf, add_dst, sh_dst,
                  m_flt, a_flt, s_flt, m_ctr, a_ctr, s_ctr, is16, nround, left, right, sub,
                  add_sq, sh_sq, add_cub, sh_cub, add_in, sh_in, d_add_sq, d_sh_sq, d_add_cub,
                  d_sh_cub, d_add_in, d_sh_in, do_aim, dsc, rb_, rf_, psc, out, i0, i1):
    """Rows i0..i1-1 of measure_level with one thread's scratch."""
    noinline()
    h = ref.shape[1]
    w = ref.shape[2]
    ang = dsc[0]
    rec = dsc[1]
    shf = dsc[2]
    vs = psc[0]
    thr = psc[1]
    # the row each ring slot holds (-1: none); scalars, not an array (no
    # arrays made in a kernel: see _par)
    held0 = -1
    held1 = -1
    held2 = -1
    for i in range(i0, i1):
        up = i - 1 if i > 0 else 1
        dn = i + 1 if i < h - 1 else h - 1
        for r in (up, i, dn):
            sl = r % 3
            held = held0 if sl == 0 else (held1 if sl == 1 else held2)
            if held != r:
                _decouple_into(ref, dis, r, eleft, eright, egl, egl_i, cos1sq, rf,
                               add_dst, sh_dst, m_flt, a_flt, s_flt, m_ctr, a_ctr, s_ctr,
                               is16, nround, ang, rec, shf, rb_[sl, 0], rb_[sl, 1], rf_[sl],
                               do_aim)
                if sl == 0:
                    held0 = r
                elif sl == 1:
                    held1 = r
                else:
                    held2 = r
        su = up % 3
        si = i % 3
        sd = dn % 3
        fsi = rf_[si]
        # m = 0: DLM (restored part, masked by the additive part's f, g in
        # fs[0], fs[1]); m = 1: AIM (additive part, masked by fs[2], fs[3])
        for m in range(2 if do_aim else 1):
            _thr_row3(rf_[su, 2 * m], rf_[si, 2 * m], rf_[sd, 2 * m], fsi[2 * m + 1], left,
                      right, w, vs, thr)
            for t in range(3):
                x = rb_[si, m, t, left:right]
                if is16:
                    s = _cube_sum0(x, thr, rf[t], sub[t], add_sq[t], sh_sq[t], add_cub[t], sh_cub[t])
                else:
                    s = _cube_sum(x, thr, rf[t], add_sq[t], sh_sq[t], add_cub[t], sh_cub[t])
                out[i, 3 * m + t] = (s + add_in) >> sh_in
        for t in range(3):
            s = _den_sum(ref[t + 1, i, left:right], is16, d_add_sq, d_sh_sq, d_add_cub, d_sh_cub)
            out[i, 6 + t] = (s + d_add_in) >> d_sh_in


@njit(**KERNEL)
def _thr_row3(fu, fi, fd, g, left, right, w, vs, thr):
    """Masking threshold of the centre row, columns left..right-1, into
    thr[0..]: 3x3 sum of f (rows fu, fi, fd; columns mirrored: -1 -> 1,
    n -> n-1) plus g, as int32."""
    c0 = max(left - 1, 0)
    c1 = min(right + 1, w)
    _sum3_row(fu[c0:c1], fi[c0:c1], fd[c0:c1], vs[c0:c1])
    a = max(left, 1)
    b = min(right, w - 1)
    if b > a:
        vl = vs[a - 1:b - 1]
        vc = vs[a:b]
        vr = vs[a + 1:b + 1]
        gg = g[a:b]
        out = thr[a - left:b - left]
        for j in range(out.shape[0]):
            out[j] = _w32(vl[j] + vc[j] + vr[j] + np.int64(gg[j]))
    if left == 0:
        thr[0] = _w32(vs[1] + vs[0] + vs[1] + np.int64(g[0]))
    if right == w:
        thr[w - 1 - left] = _w32(vs[w - 2] + vs[w - 1] + vs[w - 1] + np.int64(g[w - 1]))


@njit(**KERNEL)
def _cbrt_norm(acc, div, pre_f32):
    """float32 cube root of a pooled sum: acc / div in float64 (or float32)."""
    if pre_f32:
        f = np.float32(acc) / np.float32(div)
    else:
        f = np.float32(np.float64(acc) / div)
    return np.float32(f ** np.float32(1.0 / 3.0))


@njit(**KERNEL)
def _powf_third(x):
    return np.float32(np.float32(x) ** np.float32(1.0 / 3.0))


@njit(**KERNEL)
def level_scores(rows, top, bottom, sums, num_div, den_div, rf3, area_nw, pre32, do_aim):
    """A level's float32 DLM numerator, denominator and AIM numerator from
    measure_level's per-row sums ``rows[top:bottom]`` (summed into ``sums``,
    9 int64), in libvmaf's order of float32 operations, with ``noise =
    cbrt(float32(area_nw))`` (the pooled area times the noise weight): per
    orientation t
    ``num += cbrt(sums[t] / num_div[t]) + noise``, ``aim += cbrt(sums[3 + t]
    / num_div[t])`` (its noise weight is 0) and ``den += cbrt(sums[6 + t] /
    den_div * rf3[t]) + noise`` (``rf3``: the CSF factors cubed, in
    float64).  One call instead of the ~13 scalar calls a level made."""
    for k in range(9):
        sums[k] = 0
    for i in range(top, bottom):
        r = rows[i]
        for k in range(9):
            sums[k] += r[k]
    nz = _powf_third(np.float32(area_nw))
    num = np.float32(0.0)
    aim = np.float32(0.0)
    den = np.float32(0.0)
    for t in range(3):
        num = np.float32(num + np.float32(_cbrt_norm(sums[t], num_div[t], pre32) + nz))
    if do_aim:
        zero = _powf_third(np.float32(0.0))
        for t in range(3):
            aim = np.float32(aim + np.float32(_cbrt_norm(sums[3 + t], num_div[t], pre32) + zero))
    for t in range(3):
        csf = (np.float64(sums[6 + t]) / den_div) * rf3[t]
        den = np.float32(den + np.float32(_powf_third(np.float32(csf)) + nz))
    return num, den, aim


# ---------------------------------------------------------------- extractor

class _Level:
    """Buffers and constants of one DWT level."""

    def __init__(self, scale, w_in, h_in, opts, factors, chunks):
        self.scale = scale
        self.w_in, self.h_in = w_in, h_in
        w = (w_in + 1) // 2
        h = (h_in + 1) // 2
        self.w, self.h = w, h
        s0 = scale == 0
        bdt = np.int16 if s0 else np.int32
        self.iy = mirror_indices(h_in)
        self.ix = mirror_indices(w_in)
        nch = max(1, min(chunks, h))
        self.tmp_r = np.empty((nch, 2, w_in), dtype=bdt)
        self.tmp_d = np.empty((nch, 2, w_in), dtype=bdt)
        self.ref = np.zeros((4, h, w), dtype=bdt)
        self.dis = np.zeros((4, h, w), dtype=bdt)
        self.rows = np.zeros((h, 9), dtype=np.int64)
        self.ext = _ext_region(w, h)
        # libvmaf's AVX-512 decoupling (what its x86 builds run on CPUs with
        # AVX-512) rounds the gain-limited value half to even where its C code
        # truncates, in the columns its 16-wide loop covers; the scalar tail
        # truncates.  This only matters for a non-integer adm_enhn_gain_limit.
        el, er = self.ext[2], self.ext[3]
        self.round_end = er - (er - el) % 16
        # measure_level's scratch, one per thread (its bands each also
        # decouple their two boundary rows)
        nch = max(1, min(chunks, h))
        self.dec_scratch = np.zeros((nch, 3, self.ext[3] - self.ext[2]), dtype=np.int32)
        self.pool_scratch = np.zeros((nch, 2, w), dtype=np.int32)  # wrapped as libvmaf
        # rows of measure_level's ring: restored/additive bands and masks
        self.ring_b = np.zeros((nch, 3, 2, 3, w), dtype=bdt)
        self.ring_f = np.zeros((nch, 3, 4, w), dtype=np.int32)
        top, bottom, left, right = _cm_region(w, h)
        self.reg = (top, bottom, left, right)
        self.area = (bottom - top) * (right - left)

        f_hv, f_d = factors[scale]
        self.rf_float = (f_hv, f_hv, f_d)
        nvd = float(opts["adm_norm_view_dist"])
        rdh = int(opts["adm_ref_display_height"])
        mode = int(opts["adm_csf_mode"])
        if s0:
            if abs(nvd * rdh - 3.0 * 1080) < 1e-8 and mode == 0:
                rf = (36453, 36453, 49417)
            else:
                rf = (int(float(f_hv) * 2.0 ** 21) & 0xFFFF, int(float(f_hv) * 2.0 ** 21) & 0xFFFF,
                      int(float(f_d) * 2.0 ** 23) & 0xFFFF)
            self.rf = np.array(rf, dtype=np.int64)
            self.add_dst = np.array((16384, 16384, 65535), dtype=np.int64)
            self.sh_dst = np.array((15, 15, 17), dtype=np.int64)
            self.flt = (4369, 2048, 12, 8738, 2048, 12)
            # contrast masking
            self.sub = np.array((10, 10, 12), dtype=np.int64)
            self.add_sq = np.array((1 << 28, 1 << 28, 1 << 29), dtype=np.int64)
            self.sh_sq = np.array((29, 29, 30), dtype=np.int64)
            shc_hv = int(math.ceil(math.log2(w) - 4))
            shc_d = int(math.ceil(math.log2(w) - 3))
            self.sh_cub = np.array((shc_hv, shc_hv, shc_d), dtype=np.int64)
            self.add_cub = np.array([_pow2_trunc(s - 1) for s in (shc_hv, shc_hv, shc_d)],
                                    dtype=np.int64)
            self.sh_in = _ceil_log2(h)
            self.add_in = _pow2_trunc(self.sh_in - 1)
            self.num_div = np.array([2.0 ** (52 - shc_hv - self.sh_in),
                                     2.0 ** (52 - shc_hv - self.sh_in),
                                     2.0 ** (57 - shc_d - self.sh_in)])
            # denominator
            sh = max(int(math.ceil(math.log2(self.area) - 20)), 0)
            self.d_sq = (0, 0)
            self.d_cub = (0, 0)
            self.d_in = ((1 << (sh - 1)) if sh > 0 else 0, sh)
            self.den_div = 2.0 ** (18 - sh)
        else:
            rf = [int(float(f) * 2.0 ** 32) & 0xFFFFFFFF for f in self.rf_float]
            self.rf = np.array(rf, dtype=np.int64)
            self.add_dst = np.full(3, 1 << 27, dtype=np.int64)
            self.sh_dst = np.full(3, 28, dtype=np.int64)
            # libvmaf's rounding constant 1u << 31 is stored in an int32: -2^31
            self.flt = (143165577, -(1 << 31), 32, 286331153, -(1 << 31), 32)
            self.sub = np.zeros(3, dtype=np.int64)
            self.add_sq = np.full(3, 1 << 29, dtype=np.int64)
            self.sh_sq = np.full(3, 30, dtype=np.int64)
            shc = _ceil_log2(w)
            self.sh_cub = np.full(3, shc, dtype=np.int64)
            self.add_cub = np.full(3, _pow2_trunc(shc - 1), dtype=np.int64)
            self.sh_in = _ceil_log2(h)
            self.add_in = _pow2_trunc(self.sh_in - 1)
            e = (45, 39, 36)[scale - 1] - shc - self.sh_in
            fs = float(np.float32(2.0 ** e))
            self.num_div = np.full(3, fs)
            # denominator
            sh_sq = (31, 30, 31)[scale - 1]
            shc_d = _ceil_log2(right - left)
            sha_d = _ceil_log2(bottom - top)
            self.d_sq = (1 << sh_sq, sh_sq)  # libvmaf adds 2^shift here, not 2^(shift-1)
            self.d_cub = (_pow2_trunc(shc_d - 1), shc_d)
            self.d_in = (_pow2_trunc(sha_d - 1), sha_d)
            e = ((32, 27, 23)[scale - 1] - sha_d - shc_d) % (1 << 32)
            self.den_div = math.inf if e > 1023 else 2.0 ** e
        self.is16 = s0
        # for level_scores
        self.rf3 = np.array([math.pow(float(f), 3) for f in self.rf_float], dtype=np.float64)
        self.sums = np.zeros(9, dtype=np.int64)


@register
class ADM(FeatureExtractor):
    name = "adm"
    reads_chroma = False  # the luma planes only
    warm_size = (64, 64)  # calls the kernels any larger frame calls (tests/test_warmup.py)
    provides = ("adm2", "adm_scale0", "adm_scale1", "adm_scale2", "adm_scale3", "aim", "adm3")
    default_options = {
        "adm_enhn_gain_limit": 100.0,
        "adm_norm_view_dist": 3.0,
        "adm_ref_display_height": 1080,
        "adm_csf_mode": 0,
        "adm_csf_scale": 1.0,
        "adm_csf_diag_scale": 1.0,
        "adm_noise_weight": 0.03125,
        "adm_dlm_weight": 0.5,
        "adm_min_val": 0.0,
        "adm_skip_scale0": False,
        "adm_skip_aim": False,
        "debug": False,
    }

    def __init__(self, **options):
        options = {OPTION_ALIASES.get(k, k): v for k, v in options.items()}
        for k in ("adm_skip_scale0", "adm_skip_aim", "debug"):
            v = options.get(k)
            if isinstance(v, str):  # libvmaf-style "true" / "false"
                if v.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"adm option {k} must be a boolean, got {v!r}")
                options[k] = v.lower() in ("true", "1")
        super().__init__(**options)
        o = self.options
        for k, (lo, hi) in _RANGES.items():
            v = o[k]
            if not lo <= v <= hi:
                raise ValueError(f"adm option {k}={v} outside [{lo}, {hi}]")
        for k in ("adm_ref_display_height", "adm_csf_mode"):
            if int(o[k]) != o[k]:
                raise ValueError(f"adm option {k} must be an integer, got {o[k]!r}")
        if float(o["adm_norm_view_dist"]) * int(o["adm_ref_display_height"]) < 3.0 * 1080:
            raise ValueError("adm: adm_norm_view_dist * adm_ref_display_height must be at least "
                             "3 * 1080 (libvmaf's integer ADM cannot go below that)")
        self._factors = csf_factors(o)

    def setup(self, fmt: FrameFormat) -> None:
        super().setup(fmt)
        if fmt.width < MIN_SIZE or fmt.height < MIN_SIZE:
            raise ValueError(f"adm needs frames of at least {MIN_SIZE}x{MIN_SIZE}, "
                             f"got {fmt.width}x{fmt.height}")
        o = self.options
        self._bpc = fmt.bitdepth
        self._egl = float(o["adm_enhn_gain_limit"])
        # an integer gain limit (every shipped model's) allows integer arithmetic
        self._egl_i = int(self._egl) if self._egl == int(self._egl) else 0
        self._cos1sq = float(np.float32(math.cos(math.pi / 180.0) * math.cos(math.pi / 180.0)))
        self._nw = float(o["adm_noise_weight"])
        chunks = max(1, KERNEL_THREADS)  # scratch: one per thread
        self._levels = []
        w, h = fmt.width, fmt.height
        for s in range(4):
            lv = _Level(s, w, h, o, self._factors, chunks)
            self._levels.append(lv)
            w, h = lv.w, lv.h
        self._numden_limit = 1e-10 * (fmt.width * fmt.height) / (1920.0 * 1080.0)

    # -- one level --------------------------------------------------------
    def _dwt(self, lv, ref, dis):
        if lv.scale == 0:
            b = self._bpc
            add_v = 1 << (b - 1)
            args = (46342 * add_v, add_v, b, 32768, 16, True)
        else:
            args = ((0, 0, 0, 16384, 15, False), (0, 32768, 16, 32768, 16, False),
                    (0, 32768, 16, 16384, 15, False))[lv.scale - 1]
        nb = band_count(KERNEL_THREADS, lv.h, 8)
        dwt2(ref, lv.ref, lv.tmp_r, lv.iy, lv.ix, *args, nb)
        dwt2(dis, lv.dis, lv.tmp_d, lv.iy, lv.ix, *args, nb)

    def _measure(self, lv, do_aim):
        etop, ebottom, eleft, eright = lv.ext
        top, bottom, left, right = lv.reg
        rows = lv.rows
        nb = band_count(KERNEL_THREADS, bottom - top, 24)
        measure_level(lv.ref, lv.dis, self._egl, self._egl_i, self._cos1sq,
                      etop, ebottom, eleft, eright, lv.rf, lv.add_dst, lv.sh_dst, *lv.flt,
                      lv.is16, lv.round_end, top, bottom, left, right, lv.sub, lv.add_sq,
                      lv.sh_sq, lv.add_cub, lv.sh_cub, lv.add_in, lv.sh_in, lv.d_sq[0],
                      lv.d_sq[1], lv.d_cub[0], lv.d_cub[1], lv.d_in[0], lv.d_in[1], do_aim,
                      lv.dec_scratch, lv.ring_b, lv.ring_f, lv.pool_scratch, rows, nb)
        num, den, aim = level_scores(rows, top, bottom, lv.sums, lv.num_div, lv.den_div,
                                     lv.rf3, lv.area * self._nw, not lv.is16, do_aim)
        return float(num), float(den), float(aim)

    def compute(self, ref_y: np.ndarray, dis_y: np.ndarray) -> dict:
        """All outputs for one luma pair (2-D arrays at the format's bit depth)."""
        o = self.options
        skip0 = bool(o["adm_skip_scale0"])
        do_aim = not bool(o["adm_skip_aim"])
        nums, dens, aims = [], [], []
        r, d = ref_y, dis_y
        for lv in self._levels:
            self._dwt(lv, r, d)
            if lv.scale == 0 and skip0:
                n, de, a = 0.0, float(np.float32(1e-10)), 0.0
            else:
                n, de, a = self._measure(lv, do_aim)
            nums.append(n)
            dens.append(de)
            aims.append(a)
            r, d = lv.ref[0], lv.dis[0]
        num = 0.0
        den = 0.0
        aim_num = 0.0
        for n, de, a in zip(nums, dens, aims):
            num += n
            den += de
            aim_num += a
        num = 0.0 if num < self._numden_limit else num
        den = 0.0 if den < self._numden_limit else den
        if den == 0.0:
            score, aim = 1.0, 0.0
        else:
            score, aim = num / den, aim_num / den
        wgt = float(o["adm_dlm_weight"])
        vals = {"adm2": score}
        for s in range(4):
            vals[f"adm_scale{s}"] = nums[s] / dens[s] if dens[s] != 0.0 else math.nan
        vals["aim"] = aim
        vals["adm3"] = max(score * wgt + (1.0 - aim) * (1.0 - wgt), float(o["adm_min_val"]))
        if o["debug"]:
            vals["adm"] = score
            vals["adm_num"] = num
            vals["adm_den"] = den
            for s in range(4):
                vals[f"adm_num_scale{s}"] = nums[s]
                vals[f"adm_den_scale{s}"] = dens[s]
        return vals

    def extract(self, index, ref, dis):
        return [(index, self.compute(ref[0], dis[0]))]
