"""vif extractor: a slow, obvious numpy twin of libvmaf's integer VIF, compared
with the Numba kernels; libvmaf's ``integer_vif`` (through ffmpeg's libvmaf
filter) as oracle on generated media; options; a 1080p timing."""
import re
import time

import numba
import numpy as np
import pytest

import oracle as o
from vqa_core.features import vif as V
from vqa_core.features.base import FrameFormat
from vqa_core.features.registry import extractor_for_feature, get_extractor
from vqa_core.features.vif import VIF

SCALES = tuple(f"vif_scale{s}" for s in range(4))
DEBUG = ("vif", "vif_num", "vif_den") + tuple(
    f"vif_{w}_scale{s}" for s in range(4) for w in ("num", "den"))
TOL = 5e-4


# ================================================================ numpy twin
#
# Written from libvmaf's integer_vif.c as whole-array numpy: every scale is
# filtered at full resolution and then decimated, int64 (uint64 for the
# squared means) everywhere, float64 for the gain, as the C reference (the
# product ``g * sigma12`` rounded before the subtraction).

TAPS = (
    (489, 935, 1640, 2640, 3896, 5274, 6547, 7455, 7784, 7455, 6547, 5274, 3896, 2640, 1640, 935, 489),
    (1244, 3663, 7925, 12590, 14692, 12590, 7925, 3663, 1244),
    (3571, 16004, 26386, 16004, 3571),
    (10904, 43728, 10904),
)


def log_table():
    i = np.arange(32767, 65536)
    lg = np.log2(i.astype(np.float32)).astype(np.float64)  # float32 log2, as log2f
    t = np.zeros(65536, dtype=np.int64)
    t[32767:] = np.floor(lg * 2048 + 0.5)  # C round(): half away from zero
    return t


LOG = log_table()


def log2q(x):
    """libvmaf's log2 in 1/2048 units: table of the top 16 bits plus 2048 per shift."""
    x = np.asarray(x, dtype=np.int64)
    _, e = np.frexp(x.astype(np.float64))  # e = bit length (x < 2^53)
    k = e.astype(np.int64) - 16
    return LOG[x >> k] + 2048 * k


def w32(x):
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def filt(x, taps, axis):
    """Filter along axis with mirrored borders (-k -> k, n-1+k -> n-1-k)."""
    hf = len(taps) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (hf, hf)
    xp = np.pad(x, pad, mode="reflect")
    n = x.shape[axis]
    acc = np.zeros(x.shape, dtype=np.int64)
    for k, t in enumerate(taps):
        acc += t * (xp[k:k + n] if axis == 0 else xp[:, k:k + n])
    return acc


def decimate_twin(x, s, bpc):
    """Scale s (image x) low-passed with the taps of scale s + 1, decimated."""
    taps = TAPS[s + 1]
    rnd, sh = ((1 << (bpc - 1)), bpc) if s == 0 else (32768, 16)
    v = (filt(x, taps, 0) + rnd) >> sh
    hh = (filt(v, taps, 1) + 32768) >> 16
    return hh[0:2 * (x.shape[0] // 2):2, 0:2 * (x.shape[1] // 2):2]


def stat_twin(r, d, s, bpc, egl):
    """(num_log, den_log, non_log_num, non_log_den) of one scale."""
    taps = TAPS[s]
    if s == 0:
        rnd, sh = 1 << (bpc - 1), bpc
        sh2 = 2 * (bpc - 8)
        rnd2 = (1 << (sh2 - 1)) if sh2 else 0
    else:
        rnd, sh, rnd2, sh2 = 32768, 16, 32768, 16
    mu1 = filt((filt(r, taps, 0) + rnd) >> sh, taps, 1).astype(np.uint64)
    mu2 = filt((filt(d, taps, 0) + rnd) >> sh, taps, 1).astype(np.uint64)
    xx = (filt((filt(r * r, taps, 0) + rnd2) >> sh2, taps, 1) + 32768) >> 16
    yy = (filt((filt(d * d, taps, 0) + rnd2) >> sh2, taps, 1) + 32768) >> 16
    xy = (filt((filt(r * d, taps, 0) + rnd2) >> sh2, taps, 1) + 32768) >> 16
    return stat_moments_twin(mu1, mu2, xx, yy, xy, egl)


def stat_moments_twin(mu1, mu2, xx, yy, xy, egl):
    """The four sums from the filtered moments (mu1, mu2 uint64; xx, yy, xy
    the shifted square sums, int64)."""
    half = np.uint64(1 << 31)
    mu1_sq = ((mu1 * mu1 + half) >> np.uint64(32)).astype(np.int64)
    mu2_sq = ((mu2 * mu2 + half) >> np.uint64(32)).astype(np.int64)
    mu12 = ((mu1 * mu2 + half) >> np.uint64(32)).astype(np.int64)
    s1, s2, s12 = w32(xx - mu1_sq), np.maximum(w32(yy - mu2_sq), 0), w32(xy - mu12)
    nsq = 1 << 17
    log = s1 >= nsq
    den_log = int((log2q(s1[log] + nsq) - 17 * 2048).sum())
    m = log & (s12 > 0) & (s2 > 0)
    a, b, c = s1[m].astype(np.float64), s12[m].astype(np.float64), s2[m].astype(np.float64)
    g = b / (a + 65536 * 1.0e-10)
    sv = np.maximum(np.trunc(c - g * b).astype(np.int64), 0)
    g = np.minimum(g, egl)
    n1 = sv + nsq
    n2 = np.trunc(g * g * a).astype(np.int64) + n1
    num_log = int((log2q(n2) - log2q(n1)).sum())
    return num_log, den_log, int(s2[~log].sum()), int((~log).sum())


def vif_twin(ref, dis, bpc, egl=100.0, skip0=False):
    """Integer sums per scale and the outputs (libvmaf's float32 steps)."""
    r, d = ref.astype(np.int64), dis.astype(np.int64)
    sums, out = [], {}
    nums, dens = [], []
    for s in range(4):
        if s > 0:
            r, d = decimate_twin(r, s - 1, bpc), decimate_twin(d, s - 1, bpc)
        if s == 0 and skip0:
            sums.append(None)
            nums.append(np.float32(0))
            dens.append(np.float32(-1))
            out["vif_scale0"] = 0.0
            continue
        t = stat_twin(r, d, s, bpc, egl)
        sums.append(t)
        num = np.float32(t[0] / 2048.0 + (t[3] - (t[2] / 16384.0) / 65025.0))
        den = np.float32(t[1] / 2048.0 + t[3])
        nums.append(num)
        dens.append(den)
        out[f"vif_scale{s}"] = float(num / den)
    first = 1 if skip0 else 0
    out["vif"] = sum(map(float, nums[first:])) / sum(map(float, dens[first:]))
    return sums, out


def smooth_plane(rng, h, w, peak):
    y = np.cumsum(np.cumsum(rng.normal(size=(h, w)), 0), 1)
    y = y - y.min()
    return np.round(y / y.max() * peak).astype(np.uint8 if peak < 256 else np.uint16)


def distort(rng, y, peak, amount):
    n = rng.integers(-amount, amount + 1, y.shape)
    blur = (y.astype(np.int64) + np.roll(y, 1, 0) + np.roll(y, 1, 1) + np.roll(y, 1, (0, 1))) // 4
    return np.clip(np.where(rng.random(y.shape) < 0.5, blur, y) + n, 0, peak).astype(y.dtype)


def kernel(bpc, shape, fma=False, **opts):
    e = VIF(debug=True, **opts)
    e.fma = fma
    e.setup(FrameFormat(shape[1], shape[0], "400", bpc))
    return e


# ================================================================ kernels vs twin

def test_log2_table():
    np.testing.assert_array_equal(V.LOG2[32767:], LOG[32767:])
    assert V.LOG2[32768] == 15 * 2048 and V.LOG2[65535] == 32768
    x = np.array([1 << 17, (1 << 17) + 12345, 1 << 31, 3 << 40, (1 << 45) - 1])
    want = log2q(x)
    assert np.all(np.abs(want / 2048.0 - np.log2(x.astype(np.float64))) < 1e-3)


@numba.njit
def _log2q_table(x, out):
    V._log2q_lanes(x, V.LOG2, out, False)


@numba.njit
def _log2q_cubic(x, out):
    V._log2q_lanes(x, V.LOG2, out, True)


def test_log2_cubics_equal_table_everywhere():
    """The statistic's log2 on AVX-512 (cubics, no table loads) against the
    table for every one of the 32768 indices, each at several shifts and
    with arbitrary bits below the top 16 (which the log ignores): its code
    path is the kernel's own (``_emit_log2q``), so this covers every input
    it can see."""
    rng = np.random.default_rng(5)
    i = np.arange(32768, 65536, dtype=np.int64)
    for k in (1, 2, 15, 29):
        x = (i << k) + rng.integers(0, 1 << k, i.size)
        want = log2q(x)
        xf = x.astype(np.float64)
        assert np.array_equal(xf.astype(np.int64), x)
        got = np.empty(x.size, np.int32)
        _log2q_table(xf, got)
        np.testing.assert_array_equal(got, want)
        if V._simd_mode() != 512:
            continue
        _log2q_cubic(xf, got)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (k, i[bad[:10]], got[bad[:10]] - want[bad[:10]])
    if V._simd_mode() != 512:
        pytest.skip("no AVX-512 here: the statistic uses the table")


def test_log2_cubics_fit():
    """The cubics reproduce the table with room to spare in exact float32
    arithmetic; a fit that does not is refused (the kernel then keeps the
    table)."""
    coefs, bases = V.log2_cubics()
    u = np.arange(1024, dtype=np.float32)
    for j in range(32):
        z = V.cubic_eval(coefs[:, j], u).astype(np.float64)
        t = V.LOG2[32768 + 1024 * j + np.arange(1024)] - bases[j]
        assert ((z - t).min() > 2e-5) and ((t + 1 - z).min() > 2e-5)
    assert V.log2_cubics(min_margin=0.5) is None


@numba.njit
def _stat_sums_row(m1, m2, xx, yy, xy, w, egl, use_fma):
    return V._stat_sums(m1, m2, xx, yy, xy, w, egl, V.LOG2, use_fma)


@pytest.mark.parametrize("w", [1, 15, 16, 17, 1920, 3843])
def test_stat_sums_matches_twin(w):
    """The vectorised statistic on moments over the whole uint32 range (the
    32-bit differences wrap), plus realistic ones, with and without flat runs
    (16-pixel steps below the noise floor take a shortcut); lanes past w
    ignored."""
    rng = np.random.default_rng(w)
    n = w + 32  # the rows' room past w
    for egl in (100.0, 1.0, 2.5):
        mu1 = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        mu2 = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        sq = [rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32) for _ in range(3)]
        # realistic: mu of 8-bit content (Q16) and variances around sigma_nsq
        real1 = rng.integers(0, 255 << 16, n).astype(np.uint32)
        real2 = np.clip(real1.astype(np.int64) + rng.integers(-(1 << 20), 1 << 20, n), 0,
                        (255 << 16)).astype(np.uint32)
        m1sq = (real1.astype(np.uint64) ** 2 + (1 << 31)) >> np.uint64(32)
        m2sq = (real2.astype(np.uint64) ** 2 + (1 << 31)) >> np.uint64(32)
        m12 = (real1.astype(np.uint64) * real2 + (1 << 31)) >> np.uint64(32)
        var = [rng.integers(0, 1 << 19, n) for _ in range(3)]
        realsq = [(m + v.astype(np.uint64)).astype(np.uint32)
                  for m, v in zip((m1sq, m2sq, m12 - np.uint64(1 << 17)), var)]
        # flat runs (reference variance below sigma_nsq: whole 16-pixel steps
        # skip the logs) of lengths that start and end inside and across steps
        flat = np.zeros(n, bool)
        pos = 0
        while pos < n:
            k = int(rng.integers(1, 40))
            flat[pos:pos + k] = rng.random() < 0.6
            pos += k
        v1 = np.where(flat, rng.integers(0, 1 << 17, n), var[0])
        flatsq = [(m1sq + v1.astype(np.uint64)).astype(np.uint32)] + realsq[1:]
        for m1, m2, (a, b, c) in ((mu1, mu2, sq), (real1, real2, realsq),
                                  (real1, real2, flatsq)):
            want = stat_moments_twin(m1[:w].astype(np.uint64), m2[:w].astype(np.uint64),
                                     a[:w].astype(np.int64), b[:w].astype(np.int64),
                                     c[:w].astype(np.int64), egl)
            got = _stat_sums_row(m1, m2, a, b, c, w, egl, False)
            assert tuple(got) == want, (egl, w)


@pytest.mark.parametrize("bpc,shape,egl", [
    (8, (37, 53), 100.0),
    (8, (16, 16), 1.0),
    (10, (48, 64), 100.0),
    (10, (45, 71), 1.0),
    (12, (33, 34), 2.5),
    (16, (40, 41), 100.0),
    (9, (31, 90), 100.0),
])
def test_kernel_matches_twin_random(bpc, shape, egl):
    """Synthetic smooth content, white noise and their distortions: the four
    integer sums of every scale are libvmaf's, so the outputs are equal."""
    rng = np.random.default_rng(sum(shape) + bpc)
    peak = (1 << bpc) - 1
    e = kernel(bpc, shape, vif_enhn_gain_limit=egl)
    noise = rng.integers(0, peak + 1, shape).astype(np.uint8 if bpc == 8 else np.uint16)
    cases = [(smooth_plane(rng, *shape, peak), a) for a in (1, peak // 3)] + [(noise, peak // 8)]
    for ref, amount in cases:
        dis = distort(rng, ref, peak, amount)
        sums, want = vif_twin(ref, dis, bpc, egl)
        assert e.integer_sums(ref, dis) == sums
        got = e.compute(ref, dis)
        for k in SCALES + ("vif",):
            assert got[k] == want[k], k
        # with libvmaf's SIMD build rounding (one fused multiply-add) the sums
        # are the same here too: the two differ only on rare exact ties
        e.fma = True
        assert e.integer_sums(ref, dis) == sums
        e.fma = False


def test_kernel_matches_twin_structured():
    """Flat areas, hard edges, saturated values and a constant frame (16-bit
    white: the decimation's sums at their largest, 65535 * 65536 + 2^15)."""
    for bpc in (8, 10, 16):
        peak = (1 << bpc) - 1
        dt = np.uint8 if bpc == 8 else np.uint16
        h, w = 41, 67
        y, x = np.mgrid[:h, :w]
        ref = np.where((x // 7 + y // 5) % 2 == 0, peak, 0).astype(dt)
        ref[:, :10] = peak // 2
        dis = np.clip(ref.astype(np.int64) - (x % 3) * (peak // 50), 0, peak).astype(dt)
        e = kernel(bpc, (h, w))
        white = np.full((h, w), peak, dt)
        for r, d in ((ref, dis), (ref, ref), (dis, ref), (white, dis), (white, white),
                     (np.full((h, w), 3, dt), np.full((h, w), 3, dt))):
            sums, want = vif_twin(r, d, bpc)
            assert e.integer_sums(r, d) == sums
            got = e.compute(r, d)
            for k in SCALES:
                assert got[k] == want[k], k
    # identical frames: every scale near 1 (exactly the libvmaf value)
    assert all(abs(got[k] - 1.0) < 1e-6 for k in SCALES)


def test_kernel_matches_twin_natural(pairs):
    src, dis, _ = pairs["10"]
    rf, df, fmt = o.read_pair(src, dis)
    e = VIF()
    e.fma = False
    e.setup(fmt)
    for r, d in list(zip(rf, df))[:2]:
        sums, want = vif_twin(r[0], d[0], fmt.bitdepth)
        assert e.integer_sums(r[0], d[0]) == sums
        got = e.extract(0, r, d)[0][1]
        for k in SCALES:
            assert got[k] == want[k], k


@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (17, 40), (64, 33)])
def test_scale0_rows_from_the_planes_equal_the_padded_ones(shape):
    """8-bit scale 0 reads its rows (mirrored at the edges) straight from the
    planes; planes of another type (here read-only) go through pad_rows2:
    the same sums, odd heights included."""
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    ref = smooth_plane(rng, *shape, 255)
    dis = distort(rng, ref, 255, 5)
    e = kernel(8, shape)
    assert V._plain8(ref) and V._plain8(dis)
    direct = e.integer_sums(ref, dis)
    ro = [a.copy() for a in (ref, dis)]
    for a in ro:
        a.setflags(write=False)
    assert not V._plain8(ro[0])
    padded = e.integer_sums(*ro)
    assert direct == padded
    assert direct == e.integer_sums(ref, dis)  # nothing left over from the padded pass


def test_non_contiguous_views_and_skip():
    rng = np.random.default_rng(7)
    big = smooth_plane(rng, 100, 160, 255)
    dis_big = distort(rng, big, 255, 3)
    ref, dis = big[10:90:2, 5:150], dis_big[10:90:2, 5:150]
    e = kernel(8, ref.shape)
    a = e.compute(ref, dis)
    b = e.compute(np.ascontiguousarray(ref), np.ascontiguousarray(dis))
    assert a == b
    e = kernel(8, ref.shape, vif_skip_scale0=True)
    c = e.compute(ref, dis)
    _, want = vif_twin(ref, dis, 8, skip0=True)
    assert c["vif_scale0"] == 0.0 and c["vif_num_scale0"] == 0.0 and c["vif_den_scale0"] == -1.0
    for k in SCALES[1:]:
        assert c[k] == a[k]
    assert c["vif"] == pytest.approx(want["vif"], rel=1e-12)
    assert a["vif"] == pytest.approx(a["vif_num"] / a["vif_den"], rel=1e-12)


# ================================================================ contract

def test_registry_options_and_errors():
    assert get_extractor("vif") is VIF
    for f in SCALES:
        assert extractor_for_feature(f) is VIF
    assert VIF(egl=1.0).options["vif_enhn_gain_limit"] == 1.0  # libvmaf's aliases
    assert VIF(ssclz="true").options["vif_skip_scale0"] is True
    assert VIF(vif_skip_scale0="false").options["vif_skip_scale0"] is False
    for bad in (0.5, 100.5, "x"):
        with pytest.raises(ValueError):
            VIF(vif_enhn_gain_limit=bad)
    with pytest.raises(ValueError):
        VIF(vif_kernelscale=1.0)  # only libvmaf's float VIF has it
    with pytest.raises(ValueError):
        VIF(debug="maybe")
    with pytest.raises(ValueError):
        VIF().setup(FrameFormat(15, 100))
    e = VIF()
    e.setup(FrameFormat(20, 18, "420", 8))
    v = e.extract(3, (np.zeros((18, 20), np.uint8),), (np.zeros((18, 20), np.uint8),))
    assert v[0][0] == 3 and set(v[0][1]) == set(SCALES)


# ================================================================ libvmaf oracle

_NAME = re.compile(r"^integer_(vif_scale[0-3]|vif_num_scale\d|vif_den_scale\d|vif_num|vif_den|vif)"
                   r"(_.+)?$")


def oracle_values(ref, dis, tmp, opts=None, suffix="", model="version=vmaf_v0.6.1", debug=False):
    """Per-frame libvmaf integer_vif outputs whose names end with ``suffix``
    (libvmaf's option suffix, e.g. ``_egl_1``).  With ``opts`` or ``debug``
    a vif instance with those options is added."""
    feats = []
    if opts is not None or debug:
        kv = dict(opts or {})
        if debug:
            kv["debug"] = "true"
        feats = [o.feature_spec("vif", kv)]
    frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp, model=model, features=feats))
    out = []
    for fr in frames:
        d = {}
        for k, v in fr.items():
            m = _NAME.match(k)
            if m and (m.group(2) or "") == suffix:
                d[m.group(1)] = v
        out.append(d)
    return out


def our_values(ref, dis, **opts):
    return o.extract_all(VIF(**opts), *o.read_pair(ref, dis))


def assert_close(ours, theirs, label, keys=SCALES, tol=TOL):
    o.assert_close(ours, theirs, label, keys, tol)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return o.standard_pairs(tmp_path_factory.mktemp("vif"))


@pytest.mark.parametrize("case", ["8", "10", "12", "odd", "half", "small"])
def test_oracle_default(pairs, case):
    src, dis, d = pairs[case]
    assert_close(our_values(src, dis), oracle_values(src, dis, d), f"{case} default")


def test_oracle_identical(pairs):
    src, _, d = pairs["8"]
    assert_close(our_values(src, src), oracle_values(src, src, d), "identical")


@pytest.mark.parametrize("case", ["8", "10", "odd"])
def test_oracle_neg_model(pairs, case):
    """vmaf_v0.6.1neg's vif: vif_enhn_gain_limit 1.0 (names suffixed _egl_1)."""
    src, dis, d = pairs[case]
    assert_close(our_values(src, dis, vif_enhn_gain_limit=1.0),
                 oracle_values(src, dis, d, suffix="_egl_1", model="version=vmaf_v0.6.1neg"),
                 f"{case} egl=1")


@pytest.mark.parametrize("case,opts,suffix", [
    ("half", {"vif_enhn_gain_limit": 1.5}, "_egl_1.5"),
    ("10", {"vif_skip_scale0": "true"}, "_ssclz"),
])
def test_oracle_other_options(pairs, case, opts, suffix):
    src, dis, d = pairs[case]
    ours = {k: (v == "true" if v in ("true", "false") else v) for k, v in opts.items()}
    assert_close(our_values(src, dis, **ours), oracle_values(src, dis, d, opts, suffix=suffix),
                 f"{case} {opts}")


@pytest.mark.parametrize("case,opts,suffix", [
    ("8", None, ""),
    ("12", None, ""),
    ("odd", {"vif_skip_scale0": "true", "vif_enhn_gain_limit": 1.0}, "_egl_1_ssclz"),
])
def test_oracle_debug_num_den(pairs, case, opts, suffix):
    """libvmaf's debug outputs (per-scale float32 numerator and denominator,
    printed with 6 decimals, and the pooled vif) agree to their printed
    precision: the integer sums are libvmaf's."""
    src, dis, d = pairs[case]
    # a model whose vif has other options, so that the debug instance is a
    # separate one
    theirs = oracle_values(src, dis, d, opts, suffix=suffix, model="version=vmaf_v0.6.1neg",
                           debug=True)
    ours_opts = {"vif_skip_scale0": True, "vif_enhn_gain_limit": 1.0} if opts else {}
    ours = our_values(src, dis, debug=True, **ours_opts)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert set(DEBUG) <= set(b), sorted(b)
        for k in DEBUG:
            assert a[k] == pytest.approx(b[k], rel=2e-7, abs=6e-7), k
        for k in SCALES:
            assert a[k] == pytest.approx(b[k], abs=6e-7), k


# ================================================================ speed

def test_timing_1080p():
    """Prints the 1080p time per frame (one thread); asserts only that the
    result is the same on every call (no state carried between frames)."""
    rng = np.random.default_rng(0)
    ref = smooth_plane(rng, 1080, 1920, 255)
    dis = distort(rng, ref, 255, 3)
    e = VIF()
    e.setup(FrameFormat(1920, 1080, "420", 8))
    first = e.compute(ref, dis)  # warm-up
    n = 5
    t = time.perf_counter()
    for _ in range(n):
        assert e.compute(ref, dis) == first
    ms = (time.perf_counter() - t) / n * 1000
    print(f"\nvif 1920x1080 8-bit: {ms:.1f} ms/frame (one thread)")


@pytest.mark.parametrize("s", [1, 2, 3])
def test_decimation_filter_in_uint32_lanes(s):
    """The decimation's horizontal filter (_h2_even) sums in uint32 lanes,
    the symmetric taps' samples added first: equal to the int64 sum for any
    16-bit samples, all-65535 included (the largest sum, 65535 * 65536 +
    2^15, just below 2^32)."""
    rng = np.random.default_rng(s)
    taps = V.FILTERS[s].astype(np.int64)
    n = len(taps)
    wn = 37
    m = wn + n // 2 + 1
    for fill in (None, 65535):
        e = rng.integers(0, 65536, (2, m)).astype(np.uint32)
        o = rng.integers(0, 65536, (2, m)).astype(np.uint32)
        if fill is not None:
            e[:] = fill
            o[:] = fill
        out = np.zeros((2, wn), np.uint16)
        V._h2_even(e, o, taps, wn, out[0], out[1])
        x = np.zeros((2, 2 * m), np.int64)
        x[:, 0::2] = e
        x[:, 1::2] = o
        want = np.array([[(sum(int(taps[k]) * int(x[q, 2 * j + k]) for k in range(n)) + 32768) >> 16
                          for j in range(wn)] for q in range(2)])
        assert np.array_equal(out.astype(np.int64), want)
        if fill is not None:
            assert (out == 65535).all()
