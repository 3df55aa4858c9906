"""adm extractor: a slow, obvious numpy twin of libvmaf's integer ADM, compared
with the Numba kernels; libvmaf's ``integer_adm`` (through ffmpeg's libvmaf
filter) as oracle on generated media; options; a 1080p timing."""
import math
import re
import time

import numpy as np
import pytest

import oracle as o
from vqa_core.features import adm as A
from vqa_core.features.adm import ADM
from vqa_core.features.base import FrameFormat
from vqa_core.features.registry import extractor_for_feature, get_extractor

OUTPUTS = ("adm2", "adm_scale0", "adm_scale1", "adm_scale2", "adm_scale3", "aim", "adm3")
V1 = dict(adm_csf_mode=2, adm_dlm_weight=0.7, adm_enhn_gain_limit=1.0, adm_noise_weight=0.02,
          adm_norm_view_dist=3.0, adm_ref_display_height=1080, adm_min_val=0.5)
TOL = 5e-4


# ================================================================ numpy twin
#
# Written from libvmaf's integer_adm.c as plain whole-array numpy, int64
# everywhere, with explicit wrap-arounds where libvmaf's C types wrap.

def w32(x):
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def w16(x):
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


LO = (15826, 27411, 7345, -4240)
HI = (-4240, -7345, 27411, -15826)


def taps(n):
    """Input indices 2i-1 .. 2i+2 of output i, mirrored at both ends."""
    out = []
    for i in range((n + 1) // 2):
        row = []
        for x in range(2 * i - 1, 2 * i + 3):
            if x < 0:
                x = -x
            if x >= n:
                x = 2 * n - x - 1
            row.append(x)
        out.append(row)
    return np.array(out).T  # (4, half)


def dwt_twin(x, level, bpc=8):
    """One level: returns bands (a, h, v, d) as int64 arrays."""
    x = x.astype(np.int64)
    ty, tx = taps(x.shape[0]), taps(x.shape[1])
    lo = sum(c * x[ty[k]] for k, c in enumerate(LO))
    hi = sum(c * x[ty[k]] for k, c in enumerate(HI))
    if level == 0:
        half = 1 << (bpc - 1)
        lo = w16(w32(w32(lo - 46342 * half) + half) >> bpc)
        hi = w16(w32(w32(hi) + half) >> bpc)
        add_h, sh_h, store = 32768, 16, w16
    else:
        add_v, sh_v = ((0, 0), (32768, 16), (32768, 16))[level - 1]
        lo = w32((lo + add_v) >> sh_v)
        hi = w32((hi + add_v) >> sh_v)
        add_h, sh_h = ((16384, 15), (32768, 16), (16384, 15))[level - 1]
        store = w32

    def horiz(v, coeffs):
        return store((sum(c * v[:, tx[k]] for k, c in enumerate(coeffs)) + add_h) >> sh_h)

    return horiz(lo, LO), horiz(hi, LO), horiz(lo, HI), horiz(hi, HI)


def reciprocal_ratio(o, t):
    """clip(t/o, 0, 1) in Q15, by libvmaf's Q30 table (and its 15-bit rounding
    of larger denominators)."""
    ao = np.abs(o)
    nbits = np.zeros_like(ao)
    for b in range(1, 40):
        nbits = np.where(ao >= (1 << (b - 1)), b, nbits)
    shift = np.where(ao >= 32768, nbits - 15, 0)
    m = np.where(ao >= 32768, (ao + (1 << np.maximum(shift - 1, 0))) >> shift, ao)
    recip = np.where(m > 0, (1 << 30) // np.maximum(m, 1), 0)
    q = ((recip * t) * np.sign(o) + w32(np.int64(1) << (14 + shift))) >> (15 + shift)
    k = np.clip(q, 0, 32768)
    return np.where(o == 0, 32768, k)


def region(w, h, ext):
    if ext:
        left = max(int(w * 0.1 - 0.5 - 1), 0)
        top = max(int(h * 0.1 - 0.5 - 1), 0)
        return top, min(h - top + 2, h), left, min(w - left + 2, w)
    left, top = int(w * 0.1 - 0.5), int(h * 0.1 - 0.5)
    return top, h - top, left, w - left


def decouple_twin(ref, dis, egl, store, rounded):
    """(r, a) lists over theta = h, v, d.  The gain-limited value is rounded
    half to even in the columns where ``rounded`` is set (libvmaf's AVX-512
    loop), truncated elsewhere (its C code)."""
    oh, ov, th, tv = ref[1], ref[2], dis[1], dis[2]
    cos1 = float(np.float32(math.cos(math.pi / 180) ** 2))
    dp = oh * th + ov * tv
    f = lambda v: v.astype(np.float32).astype(np.float64) / 4096.0
    angle = (f(dp) >= 0) & (f(dp) * f(dp) >= cos1 * f(oh * oh + ov * ov) * f(th * th + tv * tv))
    rs, as_ = [], []
    for theta in range(3):
        o_, t_ = ref[1 + theta], dis[1 + theta]
        k = reciprocal_ratio(o_, t_)
        r = store((k * o_ + 16384) >> 15)
        up = np.minimum(r * egl, t_)
        dn = np.maximum(r * egl, t_)
        up = np.where(rounded, np.rint(up), np.trunc(up)).astype(np.int64)
        dn = np.where(rounded, np.rint(dn), np.trunc(dn)).astype(np.int64)
        r = np.where(angle & (k > 0) & (o_ > 0), store(up), r)
        r = np.where(angle & (k > 0) & (o_ < 0), store(dn), r)
        rs.append(r)
        as_.append(store(t_ - r))
    return rs, as_


def csf_twin(x, level, rf):
    """(csf, csf/30, csf/15) of one band as libvmaf's fixed point."""
    if level == 0:
        add, sh = rf[1]
        c = w16(w32(rf[0] * x + add) >> sh)
        return c, w16((4369 * np.abs(c) + 2048) >> 12), w16((8738 * np.abs(c) + 2048) >> 12)
    c = w32((rf[0] * x + (1 << 27)) >> 28)
    # libvmaf's rounding constant here is (int32_t)(1u << 31) == -2^31
    return (c, w32((143165577 * np.abs(c) - (1 << 31)) >> 32),
            w32((286331153 * np.abs(c) - (1 << 31)) >> 32))


def mirror3(a, i_idx, j_idx):
    return a[np.ix_(i_idx, j_idx)]


def masking_threshold(by30, by15):
    """sum over theta of the 3x3 sum of |c|/30 with the centre as |c|/15;
    rows/cols mirrored -1 -> 1 and n -> n-1."""
    h, w = by30[0].shape
    rows = [np.r_[1, 0:h - 1], np.arange(h), np.r_[1:h, h - 1]]
    cols = [np.r_[1, 0:w - 1], np.arange(w), np.r_[1:w, w - 1]]
    thr = np.zeros((h, w), dtype=np.int64)
    for t in range(3):
        for a in range(3):
            for b in range(3):
                if a == 1 and b == 1:
                    thr += by15[t]
                else:
                    thr += mirror3(by30[t], rows[a], cols[b])
    return w32(thr)


def ceil_log2(x):
    return int(math.ceil(math.log2(x)))


def powf3(x):
    return float(np.float32(x) ** np.float32(1.0 / 3.0))


def level_twin(ref, dis, level, opts, factors):
    """Integer sums and float32 (num, den, aim) of one level."""
    h, w = ref[0].shape
    store = w16 if level == 0 else w32
    f_hv, f_d = (float(v) for v in factors[level])
    mode, nvd, rdh = opts["adm_csf_mode"], opts["adm_norm_view_dist"], opts["adm_ref_display_height"]
    if level == 0:
        if mode == 0 and abs(nvd * rdh - 3240) < 1e-8:
            irf = (36453, 36453, 49417)
        else:
            irf = (int(f_hv * 2 ** 21) & 0xFFFF, int(f_hv * 2 ** 21) & 0xFFFF,
                   int(f_d * 2 ** 23) & 0xFFFF)
        csf_p = [(irf[0], (16384, 15)), (irf[1], (16384, 15)), (irf[2], (65535, 17))]
    else:
        irf = tuple(int(f * 2 ** 32) & 0xFFFFFFFF for f in (f_hv, f_hv, f_d))
        csf_p = [(v, None) for v in irf]
    # decoupling and CSF on the extended region only (outside stays 0)
    et, eb, el, er = region(w, h, True)
    crop = np.zeros((h, w), dtype=bool)
    crop[et:eb, el:er] = True
    rounded = np.zeros(w, dtype=bool)
    rounded[el:er - (er - el) % 16] = True
    r, a = decouple_twin(ref, dis, float(opts["adm_enhn_gain_limit"]), store, rounded)
    r = [np.where(crop, x, 0) for x in r]
    a = [np.where(crop, x, 0) for x in a]
    csf_a = [csf_twin(a[t], level, csf_p[t]) for t in range(3)]
    csf_r = [csf_twin(r[t], level, csf_p[t]) for t in range(3)]
    top, bottom, left, right = region(w, h, False)
    area = (bottom - top) * (right - left)

    def cm(x, masker):
        thr = masking_threshold([m[1] for m in masker], [m[2] for m in masker])
        sums = []
        for t in range(3):
            if level == 0:
                v = np.abs(w32(x[t] * irf[t]))
                v = w32(v - w32(thr << (10, 10, 12)[t]))
                sh_sq = (29, 29, 30)[t]
                sh_cub = int(math.ceil(math.log2(w) - (4, 4, 3)[t]))
            else:
                v = np.abs(w32((x[t] * irf[t] + (1 << 27)) >> 28))
                v = w32(v - thr)
                sh_sq, sh_cub = 30, ceil_log2(w)
            v = np.maximum(v, 0)[top:bottom, left:right]
            sq = w32((v * v + (1 << (sh_sq - 1))) >> sh_sq)
            val = (sq * v + int(2.0 ** (sh_cub - 1))) >> sh_cub
            sh_in = ceil_log2(h)
            sums.append(int(((val.sum(axis=1) + int(2.0 ** (sh_in - 1))) >> sh_in).sum()))
        return sums

    num_i = cm(r, csf_a)  # DLM: restored part masked by the additive part
    aim_i = cm(a, csf_r)  # AIM: additive part masked by the restored part
    den_i = []
    for t in range(3):
        v = np.abs(ref[1 + t][top:bottom, left:right])
        if level == 0:
            s = max(int(math.ceil(math.log2(area) - 20)), 0)
            rows = (v ** 3).sum(axis=1)
            den_i.append(int(((rows + ((1 << (s - 1)) if s else 0)) >> s).sum()))
        else:
            sq = (31, 30, 31)[level - 1]
            sc, sa = ceil_log2(right - left), ceil_log2(bottom - top)
            val = (((v * v + (1 << sq)) >> sq) * v + int(2.0 ** (sc - 1))) >> sc
            den_i.append(int(((val.sum(axis=1) + int(2.0 ** (sa - 1))) >> sa).sum()))
    # floats, as libvmaf
    if level == 0:
        shc = [int(math.ceil(math.log2(w) - d)) for d in (4, 4, 3)]
        div = [2.0 ** (e - s - ceil_log2(h)) for e, s in zip((52, 52, 57), shc)]
        f = [np.float32(n / d) for n, d in zip(num_i, div)]
        fa = [np.float32(n / d) for n, d in zip(aim_i, div)]
        s = max(int(math.ceil(math.log2(area) - 20)), 0)
        dd = 2.0 ** (18 - s)
    else:
        e = (45, 39, 36)[level - 1] - ceil_log2(w) - ceil_log2(h)
        d32 = np.float32(2.0 ** e)
        f = [np.float32(n) / d32 for n in num_i]
        fa = [np.float32(n) / d32 for n in aim_i]
        dd = 2.0 ** ((32, 27, 23)[level - 1] - ceil_log2(bottom - top) - ceil_log2(right - left))
    noise = np.float32(powf3(area * float(opts["adm_noise_weight"])))
    num = np.float32(0)
    aim = np.float32(0)
    den = np.float32(0)
    for t, fr in enumerate((f_hv, f_hv, f_d)):
        num = np.float32(num + np.float32(np.float32(powf3(f[t])) + noise))
        aim = np.float32(aim + np.float32(powf3(fa[t])))
        den = np.float32(den + np.float32(np.float32(powf3((den_i[t] / dd) * fr ** 3)) + noise))
    return (num_i, aim_i, den_i), (float(num), float(den), float(aim))


def adm_twin(ref_y, dis_y, bpc, **options):
    opts = {**ADM.default_options, **options}
    factors = A.csf_factors(opts)
    r, d = ref_y.astype(np.int64), dis_y.astype(np.int64)
    ints, nums, dens, aims = [], [], [], []
    for level in range(4):
        rb, db = dwt_twin(r, level, bpc), dwt_twin(d, level, bpc)
        i_, (n, de, a) = level_twin(rb, db, level, opts, factors)
        ints.append(i_)
        nums.append(n)
        dens.append(de)
        aims.append(a)
        r, d = rb[0], db[0]
    num, den, aim = sum(nums), sum(dens), sum(aims)
    score = num / den
    aim = aim / den
    wgt = opts["adm_dlm_weight"]
    out = {"adm2": score, "aim": aim,
           "adm3": max(score * wgt + (1 - aim) * (1 - wgt), opts["adm_min_val"])}
    for s in range(4):
        out[f"adm_scale{s}"] = nums[s] / dens[s]
    return out, ints


def kernel_ints(ext):
    """Integer sums (num, aim, den per theta) of each level after compute()."""
    out = []
    for lv in ext._levels:
        top, bottom = lv.reg[:2]
        s = [int(v) for v in lv.rows[top:bottom].sum(axis=0)]
        out.append((s[0:3], s[3:6], s[6:9]))
    return out


def smooth_plane(rng, h, w, peak):
    y = np.cumsum(np.cumsum(rng.normal(size=(h, w)), 0), 1)
    y = y - y.min()
    return np.round(y / y.max() * peak).astype(np.uint8 if peak < 256 else np.uint16)


def distort(rng, y, peak, amount):
    n = rng.integers(-amount, amount + 1, y.shape)
    blur = (y.astype(np.int64) + np.roll(y, 1, 0) + np.roll(y, 1, 1) + np.roll(y, 1, (0, 1))) // 4
    return np.clip(np.where(rng.random(y.shape) < 0.5, blur, y) + n, 0, peak).astype(y.dtype)


# ================================================================ kernels vs twin

def _extreme_rows(rng, w, dtype):
    """Full-scale rows (every sample the top, every one the bottom, both
    alternating), random ones, and a strided one, of ``dtype``."""
    info = np.iinfo(dtype)
    top, bottom = int(info.max), int(info.min)
    rows = [np.full(w, top, dtype), np.full(w, bottom, dtype),
            np.resize(np.array([top, bottom], dtype), w),
            np.resize(np.array([bottom, top, top, bottom], dtype), w)]
    rows += [rng.integers(bottom, top, w, endpoint=True).astype(dtype) for _ in range(4)]
    rows.append(rng.integers(bottom, top, 2 * w, endpoint=True).astype(dtype)[::2])
    return rows


@pytest.mark.parametrize("dtype, rounding", [(np.int16, ((32768, 16), (16384, 15), (0, 0))),
                                             (np.int32, ((16384, 15), (32768, 16)))])
def test_horizontal_dwt_pass_in_multiply_adds_exact(dtype, rounding):
    """The horizontal DWT passes take 16 outputs a step by multiply-adds of
    adjacent 16-bit samples (_hdwt_step): at level 0 (_hpass32, int16) of the
    samples, at levels 1-3 (_hpass, int32) of their 16-bit halves.  The same
    results as the filter taken in int64 and stored into the band's dtype
    (wrapping where the exact value leaves int32), for full-scale and random
    rows over the dtype's whole range, the levels' (rounding, shift) pairs,
    widths with no step, one and many; a strided row takes the scalar loop."""
    rng = np.random.default_rng(11)
    hpass = A._hpass32 if dtype == np.int16 else A._hpass
    for w in (33, 34, 37, 53, 64, 100, 1920):
        ww = (w + 1) // 2
        jend = min((w - 3) // 2 + 1, ww)
        ix = np.zeros((4, ww), np.int64)
        for x in _extreme_rows(rng, w, dtype):
            xs = x[1:].astype(np.int64)
            n = jend - 1
            s0, s1, s2, s3 = (xs[k:k + 2 * n:2] for k in range(4))
            for add_h, sh_h in rounding:
                oa = np.zeros(ww, dtype)
                ob = np.zeros(ww, dtype)
                hpass(x, oa, ob, ix, jend, add_h, sh_h)
                a = (15826 * s0 + 27411 * s1 + 7345 * s2 - 4240 * s3 + add_h) >> sh_h
                b = (-4240 * s0 - 7345 * s1 + 27411 * s2 - 15826 * s3 + add_h) >> sh_h
                np.testing.assert_array_equal(oa[1:jend], a.astype(dtype))
                np.testing.assert_array_equal(ob[1:jend], b.astype(dtype))


def test_dwt_kernel_matches_twin():
    rng = np.random.default_rng(3)
    for bpc, shape in [(8, (37, 53)), (10, (48, 64)), (12, (33, 34)), (16, (40, 41))]:
        peak = (1 << bpc) - 1
        x = rng.integers(0, peak + 1, shape).astype(np.uint8 if bpc == 8 else np.uint16)
        lv = A._Level(0, shape[1], shape[0], ADM.default_options, A.csf_factors(ADM.default_options), 4)
        half = 1 << (bpc - 1)
        # 5 bands (uneven split)
        A.dwt2(x, lv.ref, lv.tmp_r, lv.iy, lv.ix, 46342 * half, half, bpc, 32768, 16, True, 5)
        want = dwt_twin(x, 0, bpc)
        for b in range(4):
            np.testing.assert_array_equal(lv.ref[b], want[b])
        # the next levels on int32 input, including a non-contiguous view
        for level in (1, 2, 3):
            big = rng.integers(-30000, 30000, (shape[0], 2 * shape[1])).astype(np.int32)
            x32 = big[:, ::2]
            lv = A._Level(level, shape[1], shape[0], ADM.default_options,
                          A.csf_factors(ADM.default_options), 3)
            args = ((0, 0, 0, 16384, 15, False), (0, 32768, 16, 32768, 16, False),
                    (0, 32768, 16, 16384, 15, False))[level - 1]
            A.dwt2(x32, lv.ref, lv.tmp_r, lv.iy, lv.ix, *args, 1 + level)
            want = dwt_twin(x32, level)
            for b in range(4):
                np.testing.assert_array_equal(lv.ref[b], want[b])
        # level 1 on an int16 band (as level 0 leaves it: the int32-lane
        # vertical pass), full-range extremes included
        lv = A._Level(1, shape[1], shape[0], ADM.default_options,
                      A.csf_factors(ADM.default_options), 2)
        x16 = rng.integers(-32768, 32768, shape).astype(np.int16)
        x16[::3] = 32767
        x16[1::3, ::2] = -32768
        for x in (x16, np.full(shape, -32768, np.int16), np.full(shape, 32767, np.int16)):
            A.dwt2(x, lv.ref, lv.tmp_r, lv.iy, lv.ix, 0, 0, 0, 16384, 15, False, 2)
            want = dwt_twin(x.astype(np.int32), 1)
            for b in range(4):
                np.testing.assert_array_equal(lv.ref[b], want[b])


@pytest.mark.parametrize("bpc,shape,opts", [
    (8, (64, 96), {}),
    (8, (45, 71), {"adm_enhn_gain_limit": 1.0}),
    (10, (72, 80), V1),
    (12, (50, 66), {"adm_enhn_gain_limit": 1.7, "adm_noise_weight": 0.5}),
    (8, (36, 40), {"adm_csf_mode": 3, "adm_norm_view_dist": 5.0}),
    (10, (66, 36), {"adm_csf_mode": 1, "adm_csf_scale": 0.02, "adm_csf_diag_scale": 0.01}),
    (8, (40, 90), {"adm_norm_view_dist": 1.5, "adm_ref_display_height": 2160, "adm_csf_mode": 2}),
])
def test_extractor_matches_twin_random(bpc, shape, opts):
    """Synthetic smooth content and distortions, including strong ones that
    make the level 1..3 coefficients exceed 15 bits; integer sums equal."""
    rng = np.random.default_rng(sum(shape) + bpc)
    peak = (1 << bpc) - 1
    ext = ADM(**opts)
    ext.setup(FrameFormat(shape[1], shape[0], "400", bpc))
    for amount in (2, peak // 3):
        ref = smooth_plane(rng, *shape, peak)
        dis = distort(rng, ref, peak, amount)
        got = ext.compute(ref, dis)
        want, ints = adm_twin(ref, dis, bpc, **opts)
        assert kernel_ints(ext) == [tuple(map(list, x)) for x in ints]
        for k in OUTPUTS:
            assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-7), k


def test_extractor_matches_twin_natural(pairs):
    src, dis, _ = pairs["10"]
    rf, df, fmt = o.read_pair(src, dis)
    depth = fmt.bitdepth
    ext = ADM()
    ext.setup(fmt)
    for r, d in list(zip(rf, df))[:2]:
        got = ext.extract(0, r, d)[0][1]
        want, ints = adm_twin(r[0], d[0], depth)
        assert kernel_ints(ext) == [tuple(map(list, x)) for x in ints]
        for k in OUTPUTS:
            assert got[k] == pytest.approx(want[k], rel=1e-6), k


def test_non_contiguous_views_and_identical():
    rng = np.random.default_rng(7)
    big = smooth_plane(rng, 100, 160, 255)
    dis_big = distort(rng, big, 255, 3)
    ref, dis = big[10:90:2, 5:150], dis_big[10:90:2, 5:150]
    ext = ADM()
    ext.setup(FrameFormat(145, 40, "400", 8))
    a = ext.compute(ref, dis)
    b = ext.compute(np.ascontiguousarray(ref), np.ascontiguousarray(dis))
    assert a == b
    same = ext.compute(ref, ref)
    assert same["aim"] == 0.0
    assert same["adm2"] == pytest.approx(1.0, abs=1e-3)


# ================================================================ contract

def test_registry_options_and_errors():
    assert get_extractor("adm") is ADM
    for f in OUTPUTS:
        assert extractor_for_feature(f) is ADM
    e = ADM(egl=1.0, nvd=5.0, csf=2)  # libvmaf's aliases
    assert e.options["adm_enhn_gain_limit"] == 1.0 and e.options["adm_csf_mode"] == 2
    with pytest.raises(ValueError):
        ADM(adm_enhn_gain_limit=0.5)
    with pytest.raises(ValueError):
        ADM(adm_norm_view_dist=1.5)  # 1.5 * 1080 < 3 * 1080: libvmaf refuses too
    with pytest.raises(ValueError):
        ADM(adm_csf_mode=2, adm_ref_display_height=4000)
    with pytest.raises(ValueError):
        ADM(bogus=1)
    with pytest.raises(ValueError):
        ADM().setup(FrameFormat(32, 100))
    assert ADM(adm_skip_scale0="false").options["adm_skip_scale0"] is False
    e = ADM(adm_skip_aim=True, adm_skip_scale0="true", debug=True)
    e.setup(FrameFormat(64, 64, "400"))
    rng = np.random.default_rng(1)
    r = smooth_plane(rng, 64, 64, 255)
    v = e.compute(r, distort(rng, r, 255, 4))
    assert v["aim"] == 0.0 and v["adm_scale0"] == 0.0 and v["adm_num_scale0"] == 0.0
    assert v["adm_den_scale0"] == pytest.approx(1e-10)
    assert v["adm2"] == pytest.approx(v["adm_num"] / v["adm_den"])


# ================================================================ libvmaf oracle

_NAME = re.compile(r"^integer_(adm2|adm3|aim|adm_scale[0-3]|adm_num_scale\d|adm_den_scale\d)(_.*)?$")


def oracle_values(ref, dis, tmp, opts=None, model="version=vmaf_v0.6.1", debug=False):
    """Per-frame libvmaf integer_adm outputs.  With ``opts`` an adm instance
    with those options is added (its names carry libvmaf's option suffix)."""
    feats = []
    if opts is not None or debug:
        kv = dict(opts or {})
        if debug:
            kv["debug"] = "true"
        feats = [o.feature_spec("adm", kv)]
    frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp, model=model, features=feats))
    want_suffix = bool(opts)
    out = []
    for fr in frames:
        d = {}
        for k, v in fr.items():
            m = _NAME.match(k)
            if m and bool(m.group(2)) == want_suffix:
                d[m.group(1)] = v
        out.append(d)
    return out


def our_values(ref, dis, **opts):
    return o.extract_all(ADM(**opts), *o.read_pair(ref, dis))


def assert_close(ours, theirs, label):
    o.assert_close(ours, theirs, label, OUTPUTS, TOL)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return o.standard_pairs(tmp_path_factory.mktemp("adm"))


@pytest.mark.parametrize("case", ["8", "10", "12", "odd", "half", "small"])
def test_oracle_default(pairs, case):
    src, dis, d = pairs[case]
    assert_close(our_values(src, dis), oracle_values(src, dis, d), f"{case} default")


def test_oracle_identical(pairs):
    src, _, d = pairs["8"]
    ours = our_values(src, src)
    assert_close(ours, oracle_values(src, src, d), "identical")
    assert all(v["aim"] == 0.0 for v in ours)


@pytest.mark.parametrize("case", ["8", "10", "odd"])
def test_oracle_neg_model(pairs, case):
    """vmaf_v0.6.1neg's adm: adm_enhn_gain_limit 1.0."""
    src, dis, d = pairs[case]
    assert_close(our_values(src, dis, adm_enhn_gain_limit=1.0),
                 oracle_values(src, dis, d, {"adm_enhn_gain_limit": 1.0}), f"{case} egl=1")


def test_oracle_v1_model(pairs):
    """The built-in vmaf_v1.0.16_3d0h model's own adm instance."""
    src, dis, d = pairs["10"]
    assert_close(our_values(src, dis, **V1),
                 oracle_values(src, dis, d, V1, model="version=vmaf_v1.0.16_3d0h"), "v1.0.16_3d0h")


@pytest.mark.parametrize("case,extra", [
    ("8", {}),
    ("odd", {"adm_norm_view_dist": 5.0}),
    ("half", {"adm_norm_view_dist": 1.5, "adm_ref_display_height": 2160}),
    ("12", {"adm_norm_view_dist": 3.0, "adm_ref_display_height": 2160}),
    ("small", {"adm_norm_view_dist": 5.0, "adm_ref_display_height": 2160}),
])
def test_oracle_v1_options(pairs, case, extra):
    """The options of the vmaf_v1.0.16 models, through the feature option."""
    src, dis, d = pairs[case]
    opts = {**V1, **extra}
    assert_close(our_values(src, dis, **opts), oracle_values(src, dis, d, opts), f"{case} v1 {extra}")


@pytest.mark.parametrize("case,opts", [
    ("8", {"adm_csf_mode": 3}),
    ("10", {"adm_skip_scale0": "true", "adm_noise_weight": 0.1}),
    ("odd", {"adm_enhn_gain_limit": 1.3, "adm_dlm_weight": 0.2, "adm_min_val": 0.9}),
])
def test_oracle_other_options(pairs, case, opts):
    src, dis, d = pairs[case]
    ours = {k: (v == "true" if v in ("true", "false") else v) for k, v in opts.items()}
    assert_close(our_values(src, dis, **ours), oracle_values(src, dis, d, opts), f"{case} {opts}")


@pytest.mark.parametrize("case,opts", [("8", None), ("10", V1), ("odd", {"adm_enhn_gain_limit": 1.7})])
def test_oracle_debug_num_den_bit_exact(pairs, case, opts):
    """libvmaf's debug outputs (per-level float32 numerator and denominator,
    printed with 6 decimals) agree to their printed precision."""
    src, dis, d = pairs[case]
    # with default options, a model whose adm has other options, so that the
    # debug instance is a separate one
    theirs = oracle_values(src, dis, d, opts, model="version=vmaf_v0.6.1neg", debug=True)
    ours = our_values(src, dis, debug=True, **(opts or {}))
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        for s in range(4):
            for k in (f"adm_num_scale{s}", f"adm_den_scale{s}"):
                assert a[k] == pytest.approx(b[k], rel=2e-7, abs=6e-7), k


# ================================================================ speed

def test_speed_1080p():
    rng = np.random.default_rng(0)
    ref = smooth_plane(rng, 1080, 1920, 255)
    dis = distort(rng, ref, 255, 3)
    ext = ADM()
    ext.setup(FrameFormat(1920, 1080, "420", 8))
    ext.compute(ref, dis)  # warm-up
    n = 5
    t = time.perf_counter()
    for _ in range(n):
        ext.compute(ref, dis)
    ms = (time.perf_counter() - t) / n * 1000
    print(f"\nadm 1920x1080 8-bit: {ms:.1f} ms/frame")
    assert ms < 2000


def test_mirror_indices_as_the_taps_reach_past_the_edges():
    """The DWT's input rows/columns 2i-1 .. 2i+2, mirrored at both ends (-x
    below 0, 2n-1-x from n on), for odd and even sizes down to 1."""
    from vqa_core.features.adm import mirror_indices
    for n in (1, 2, 3, 4, 5, 17, 540, 960, 1080, 1920):
        got = mirror_indices(n)
        half = (n + 1) // 2
        assert got.shape == (4, half) and got.dtype == np.int64
        for i in range(half):
            for k in range(4):
                x = 2 * i - 1 + k
                want = -x if x < 0 else (2 * n - x - 1 if x >= n else x)
                assert got[k, i] == want, (n, k, i)


def test_angle_row_int16_lanes_exact():
    """Level 0's angle test computes the dot products in int32 lanes: the
    same flags as the float64 reference formula (each exact sum rounded to
    float32 once), also at the extremes, where a c + b d = 2^31 wraps in
    int32 (all four -32768) and a^2 + b^2 = 2^31."""
    rng = np.random.default_rng(3)
    n = 2048
    cos1sq = np.cos(np.deg2rad(1.0)) ** 2

    def want(oh, ov, th, tv):
        a, b, c, d = (x.astype(np.float64) for x in (oh, ov, th, tv))
        r = lambda v: v.astype(np.float32).astype(np.float64) / 4096.0
        d1, om, tm = r(a * c + b * d), r(a * a + b * b), r(c * c + d * d)
        return ((d1 >= 0) & (d1 * d1 >= cos1sq * om * tm)).astype(np.int32)

    for t, scale in enumerate((200, 4000, 40000)):
        oh, ov, th, tv = (np.clip(rng.normal(0, scale, n), -32768, 32767).astype(np.int16)
                          for _ in range(4))
        # near-parallel pairs (the flag's interesting side)
        th[::2] = np.clip(oh[::2].astype(int) + rng.integers(-2, 3, n // 2), -32768, 32767)
        tv[::2] = np.clip(ov[::2].astype(int) + rng.integers(-2, 3, n // 2), -32768, 32767)
        for x in (oh, ov, th, tv):
            x[:3] = (-32768, -32768, 32767)
        ang = np.zeros(n, np.int32)
        A._angle_row(oh, ov, th, tv, cos1sq, ang, True)
        assert np.array_equal(ang, want(oh, ov, th, tv)), t
        assert ang[0] == 1 and ang[1:].any() and not ang.all()
