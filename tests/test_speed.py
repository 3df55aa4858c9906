"""speed extractor (libvmaf's speed_chroma): slow numpy twins of each stage
compared with the Numba kernels, a float64 twin of the whole measure, and
libvmaf's speed_chroma (through ffmpeg's libvmaf filter) as oracle."""
import math
import time

import numpy as np
import pytest

import oracle as o
from vqa_core.features import speed as S
from vqa_core.features.base import FrameFormat
from vqa_core.features.registry import extractor_for_feature, get_extractor
from vqa_core.features.speed import Speed

F32 = np.float32
OUTPUTS = ("speed_chroma_u", "speed_chroma_v", "speed_chroma_uv")
# the speed_chroma options of the vmaf_v1.0.16 models
V1 = dict(speed_kernelscale=1.0, speed_nn_floor=0.1, speed_sigma_nn=0.19,
          speed_weight_var_mode=5, speed_max_val=45.0)          # 3d0h, hfr_3d0h
V1_2160 = dict(speed_nn_floor=0.1, speed_sigma_nn=0.19, speed_weight_var_mode=5,
               speed_prescale=0.5, speed_prescale_method="bilinear", speed_max_val=45.0)
V1_5D0H = dict(V1_2160, speed_prescale=0.6)
TOL = 0.01     # the per-frame tolerance
AIM = 2e-6     # what vqa achieves: libvmaf prints 6 decimals


# ================================================================ numpy twins

def conv_twin(img, f):
    """Separable float32 filter, rows then columns, mirrored borders
    (numpy 'reflect': -1 -> 1, n -> n-2), each sum in tap order."""
    r = len(f) // 2
    h, w = img.shape
    p = np.pad(img, ((r, r), (0, 0)), mode="reflect")
    v = np.zeros_like(img)
    for k in range(len(f)):
        v = v + f[k] * p[k:k + h]
    p = np.pad(v, ((0, 0), (r, r)), mode="reflect")
    out = np.zeros_like(img)
    for k in range(len(f)):
        out = out + f[k] * p[:, k:k + w]
    return out


def to_float_twin(plane, bpc):
    return (plane.astype(F32) / F32(2 ** (bpc - 8)) - F32(128)).astype(F32)


def gauss_twin(n, sigma):
    x = np.arange(n) - (n - 1) // 2
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def bilinear_twin(src, dw, dh):
    """Pixel-centre bilinear resize, float32, mirrored taps."""
    sh, sw = src.shape

    def axis(n_src, n_dst):
        ratio = F32(n_src) / F32(n_dst)
        t = ((np.arange(n_dst) + 0.5) * float(ratio) - 0.5).astype(F32)
        lo, hi = np.floor(t).astype(int), np.ceil(t).astype(int)
        lo = np.where(lo < 0, -lo, np.where(lo > n_src - 1, 2 * (n_src - 1) - lo, lo))
        hi = np.where(hi < 0, -hi, np.where(hi > n_src - 1, 2 * (n_src - 1) - hi, hi))
        return lo, hi, (t - lo.astype(F32)).astype(F32)

    x1, x2, dx = axis(sw, dw)
    y1, y2, dy = axis(sh, dh)
    dx, dy = dx[None, :], dy[:, None]
    one = F32(1)
    a = src[y1][:, x1]
    b = src[y1][:, x2]
    c = src[y2][:, x1]
    d = src[y2][:, x2]
    return ((one - dy) * (one - dx) * a + (one - dy) * dx * b + dy * (one - dx) * c
            + dy * dx * d).astype(F32)


def cubic_twin(t):
    """Keys' cubic with a = -0.75."""
    a, t = -0.75, np.abs(t)
    return np.where(t < 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, (((t - 5) * t + 8) * t - 4) * a, 0.0))


def lanczos_twin(t):
    return np.where(np.abs(t) < 4, np.sinc(t) * np.sinc(t / 4), 0.0)


def kernel_resize_twin(src, dw, dh, kern, radius):
    """Separable kernel resize at pixel centres, mirrored taps, normalised
    weights (float64)."""
    out = src.astype(np.float64)
    for axis, (n_src, n_dst) in ((0, (src.shape[0], dh)), (1, (src.shape[1], dw))):
        pos = (np.arange(n_dst) + 0.5) * (n_src / n_dst) - 0.5
        base = np.floor(pos).astype(int)
        taps = np.arange(-radius + 1, radius + 1) if radius == 2 else np.arange(-radius, radius + 1)
        idx = base[:, None] + taps[None, :]
        wgt = kern(idx - pos[:, None])
        wgt = wgt / wgt.sum(axis=1, keepdims=True)
        idx = np.where(idx < 0, -idx, np.where(idx > n_src - 1, 2 * (n_src - 1) - idx, idx))
        moved = np.moveaxis(out, axis, -1)[..., idx]  # (..., n_dst, taps)
        out = np.moveaxis(np.einsum("...nk,nk->...n", moved, wgt), -1, axis)
    return out


def nearest_twin(src, dw, dh):
    sh, sw = src.shape
    ys = (np.arange(dh, dtype=F32) * (F32(sh) / F32(dh))).astype(int)
    xs = (np.arange(dw, dtype=F32) * (F32(sw) / F32(dw))).astype(int)
    return src[ys][:, xs]


def gsm_twin(img, sigma_nn):
    """Float64 GSM: (entropies, variances, eigenvalues) of the 5x5 blocks."""
    nbv, nbh = img.shape[0] // 5, img.shape[1] // 5
    th, tw = 5 * nbv, 5 * nbh
    x = img[:th, :tw].astype(np.float64)
    subs = np.stack([x[r:r + th - 4, c:c + tw - 4].ravel() for r in range(5) for c in range(5)])
    subs = subs - subs.mean(axis=1, keepdims=True)
    K = subs @ subs.T / subs.shape[1]
    L = np.linalg.eigvalsh(K)
    Y = x.reshape(nbv, 5, nbh, 5).transpose(1, 3, 0, 2).reshape(25, -1)
    s = np.sum(Y * np.linalg.solve(K, Y), axis=0) / 25
    ent = np.sum(np.log2(np.maximum(L, 0)[:, None] * s[None, :] + sigma_nn), axis=0) \
        + 25 * math.log2(2 * math.pi * math.e)
    return ent, s, L


def score_twin(er, vr, ed, vd, sigma_nn, nn_floor, mode):
    base = 25 * (math.log2((1 + nn_floor) * sigma_nn) + math.log2(2 * math.pi * math.e))
    wr, wd = {0: (vr, vd), 1: (vr, vr), 2: (vd, vd), 3: ((vr + vd) / 2, (vr + vd) / 2),
              4: (vr, (vr + vd) / 2), 5: (vr, 0.75 * vr + 0.25 * vd),
              6: (vr, 0.25 * vr + 0.75 * vd)}[mode]
    t = np.abs(er * np.log2(1 + wr) - ed * np.log2(1 + wd))
    t = np.where((er < base) & (ed < base), 0.0, t)
    return t.mean()


def speed_twin(ref_c, dis_c, bpc, opts):
    """One chroma plane pair (already cropped), no prescale: the whole
    measure in float64 after float32 filtering."""
    o_ = {**Speed.default_options, **opts}
    n1, n4 = S.filter_size(1, 1.0), S.filter_size(4, 1.0)
    aa, lm = gauss_twin(n1, 2 * n1 / 5).astype(F32), gauss_twin(n4, n4 / 5).astype(F32)
    res = []
    for p in (ref_c, dis_c):
        h, w = p.shape
        dec = conv_twin(to_float_twin(p, bpc), aa)[:(h >> 4) * 16:16, :(w >> 4) * 16:16]
        res.append(gsm_twin(dec - conv_twin(dec, lm), o_["speed_sigma_nn"]))
    (er, vr, _), (ed, vd, _) = res
    return score_twin(er, vr, ed, vd, o_["speed_sigma_nn"], o_["speed_nn_floor"],
                      o_["speed_weight_var_mode"])


def smooth_plane(rng, h, w, peak, grain=2.0):
    """Smooth random field plus grain (keeps the 25x25 covariance well conditioned)."""
    y = np.cumsum(np.cumsum(rng.normal(size=(h, w)), 0), 1)
    y = (y - y.min()) / (y.max() - y.min()) * peak * 0.8 + peak * 0.1
    y = y + rng.normal(scale=grain * peak / 255, size=(h, w))
    return np.clip(np.round(y), 0, peak).astype(np.uint8 if peak < 256 else np.uint16)


def distort(rng, y, peak, amount):
    blur = (y.astype(np.int64) + np.roll(y, 1, 0) + np.roll(y, 1, 1) + np.roll(y, 1, (0, 1))) // 4
    n = rng.integers(-amount, amount + 1, y.shape)
    return np.clip(blur + n, 0, peak).astype(y.dtype)


# ================================================================ kernels vs twins

@pytest.mark.parametrize("ks,sizes", [(1.0, (9, 3)), (0.5, (5, 3)), (2.0, (19, 5)),
                                      (1.5, (15, 3)), (3.0, (27, 7)), (360 / 97, (35, 9))])
def test_filters(ks, sizes):
    assert (S.filter_size(1, ks), S.filter_size(4, ks)) == sizes
    aa, lm = S.speed_filters(ks)
    assert (len(aa), len(lm)) == sizes
    np.testing.assert_allclose(aa, gauss_twin(sizes[0], 2 * sizes[0] / 5), rtol=2e-6)
    np.testing.assert_allclose(lm, gauss_twin(sizes[1], sizes[1] / 5), rtol=2e-6)


@pytest.mark.parametrize("bpc,shape,ks", [(8, (97, 131), 1.0), (10, (120, 83), 1.0),
                                          (12, (85, 160), 2.0), (16, (96, 96), 0.5)])
def test_blur_decimate_and_local_mean_bit_exact(bpc, shape, ks):
    rng = np.random.default_rng(bpc)
    peak = (1 << bpc) - 1
    plane = rng.integers(0, peak + 1, (shape[0] + 3, shape[1] + 5)).astype(
        np.uint8 if bpc == 8 else np.uint16)[2:2 + shape[0], 1:1 + shape[1]]  # a view
    h, w = shape
    aa, lm = S.speed_filters(ks)
    out = np.zeros((h >> 4, w >> 4), F32)
    S.blur_decimate16(plane, w, h, F32(2.0 ** (8 - bpc)), F32(-128), aa,
                      np.zeros(len(aa), np.int64), np.zeros(w, F32), out)
    want = conv_twin(to_float_twin(plane, bpc), aa)[::16, ::16][:h >> 4, :w >> 4]
    np.testing.assert_array_equal(out, want)
    got = np.zeros_like(out)
    S.remove_local_mean(out, lm, np.zeros_like(out), got)
    np.testing.assert_array_equal(got, out - conv_twin(out, lm))


@pytest.mark.parametrize("src,dst", [((83, 97), (41, 48)), ((60, 90), (36, 54)),
                                     ((40, 50), (60, 75)), ((33, 35), (43, 49))])
def test_prescalers(src, dst):
    rng = np.random.default_rng(sum(src))
    img = (rng.random(src) * 255 - 128).astype(F32)
    out = np.zeros(dst, F32)
    S.scale_bilinear(img, src[1], src[0], out, dst[1], dst[0], np.zeros(dst[1], np.int64),
                     np.zeros(dst[1], np.int64), np.zeros(dst[1], F32))
    np.testing.assert_array_equal(out, bilinear_twin(img, dst[1], dst[0]))
    S.scale_nearest(img, src[1], src[0], out, dst[1], dst[0])
    np.testing.assert_array_equal(out, nearest_twin(img, dst[1], dst[0]))
    S.scale_bicubic(img, src[1], src[0], out, dst[1], dst[0], np.zeros((2, 9), F32))
    # (float32 sample positions on a random image: differences of some 1e-3)
    np.testing.assert_allclose(out, kernel_resize_twin(img, dst[1], dst[0], cubic_twin, 2),
                               atol=5e-3)
    S.scale_lanczos4(img, src[1], src[0], out, dst[1], dst[0], np.zeros((2, 9), F32))
    np.testing.assert_allclose(out, kernel_resize_twin(img, dst[1], dst[0], lanczos_twin, 4),
                               atol=5e-3)


def test_eigen_and_solve_match_float64():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(25, 60))
    K = (A @ A.T / 60 + 0.5 * np.eye(25)).astype(F32)
    n = 25
    z = lambda *s: np.zeros(s, F32)
    eig = z(n)
    S.eigenvalues_sym(K, z(n, n), z(n), z(n), z(n), z(n), eig)
    want = np.linalg.eigvalsh(K.astype(np.float64))
    np.testing.assert_allclose(np.sort(eig), want, rtol=1e-5, atol=1e-5 * want.max())
    Y = rng.normal(size=(25, 7)).astype(F32)
    X = z(25, 7)
    assert S.solve_qr(K, Y, X, z(n, n), z(n, n), z(n, n), z(n, n), z(n, n), z(n), z(25, 7))
    np.testing.assert_allclose(X, np.linalg.solve(K.astype(np.float64), Y), rtol=1e-4, atol=1e-4)
    # a pivot below 1e-6 is refused
    Ks = np.diag(np.linspace(1, 2, n)).astype(F32)
    Ks[3, 3] = 1e-8
    assert not S.solve_qr(Ks, Y, X, z(n, n), z(n, n), z(n, n), z(n, n), z(n, n), z(n), z(25, 7))


def matmul_twin(X, Y):
    """X Y in float32, each element summed over k in order from 0, a rounded
    product added to a rounded sum (libvmaf's triple loop)."""
    T = np.zeros((X.shape[0], Y.shape[1]), F32)
    for k in range(X.shape[1]):
        T = (T + (X[:, k:k + 1] * Y[k:k + 1, :]).astype(F32)).astype(F32)
    return T


def solve_qr_twin(K, Y):
    """libvmaf's Householder QR solve as written there: explicit reflector
    matrices, full products, the rows and columns above k reset to the
    identity at each step; None for a pivot below 1e-6."""
    n = K.shape[0]
    Z = K.copy()
    P = np.eye(n, dtype=F32)
    for k in range(n - 1):
        Z[:k, :] = 0
        Z[:, :k] = 0
        Z[np.arange(k), np.arange(k)] = 1
        v = Z[:, k].copy()
        for _ in range(2):
            nrm = F32(0)
            for i in range(n):
                nrm = F32(nrm + F32(v[i] * v[i]))
            nrm = F32(math.sqrt(float(nrm)))
            if _ == 0:
                v[k] = F32(v[k] + (F32(1) if K[k, k] >= 0 else F32(-1)) * nrm)
        v = (v / nrm).astype(F32)
        H = ((F32(-2.0) * v[:, None]).astype(F32) * v[None, :]).astype(F32)
        H[np.arange(n), np.arange(n)] += F32(1)
        Z = matmul_twin(H, Z)
        P = matmul_twin(H, P)
    R = matmul_twin(P, K)
    rhs = matmul_twin(P, Y)
    X = np.zeros_like(Y)
    for i in range(n - 1, -1, -1):
        if abs(float(R[i, i])) < 1e-6:
            return None
        for j in range(Y.shape[1]):
            acc = rhs[i, j]
            for k in range(i + 1, n):
                acc = F32(acc - F32(X[k, j] * R[i, k]))
            X[i, j] = F32(acc / R[i, i])
    return X


@pytest.mark.parametrize("seed", range(4))
def test_solve_qr_bit_exact(seed):
    """solve_qr skips the products that the reflectors' structure makes zeros
    and runs the back-substitution's right-hand sides side by side: the
    same floats as libvmaf's explicit algorithm (the twin), bit for bit."""
    rng = np.random.default_rng(seed)
    n = 25
    A = rng.normal(size=(n, 60)) * rng.uniform(0.05, 40)
    K = (A @ A.T / 60 + rng.uniform(0.01, 1) * np.eye(n)).astype(F32)
    Y = (rng.normal(size=(n, 72)) * 20).astype(F32)
    z = lambda *s: np.zeros(s, F32)
    X = z(n, 72)
    assert S.solve_qr(K, Y, X, z(n, n), z(n, n), z(n, n), z(n, n), z(n, n), z(n), z(n, 72))
    want = solve_qr_twin(K, Y)
    assert want is not None and np.array_equal(X, want)


@pytest.mark.parametrize("mode", range(7))
def test_score_modes_match_twin(mode):
    rng = np.random.default_rng(mode)
    n = 40
    er, ed = rng.normal(-30, 20, n).astype(F32), rng.normal(-30, 20, n).astype(F32)
    vr, vd = rng.random(n).astype(F32) * 50, rng.random(n).astype(F32) * 50
    got = S.speed_score(er, vr, ed, vd, n, F32(0.19), F32(0.1), mode)
    want = score_twin(er.astype(float), vr.astype(float), ed.astype(float), vd.astype(float),
                      float(F32(0.19)), float(F32(0.1)), mode)
    assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("bpc,chroma,size,opts", [
    (8, "420", (1282, 722), V1),
    (10, "444", (647, 483), {}),
    (12, "422", (642, 481), {"speed_weight_var_mode": 3, "speed_sigma_nn": 0.5}),
])
def test_extractor_matches_float64_twin(bpc, chroma, size, opts):
    """Synthetic planes with grain (well-conditioned covariance): the float32
    pipeline agrees with a float64 twin; also the entropies and variances."""
    rng = np.random.default_rng(bpc)
    peak = (1 << bpc) - 1
    fmt = FrameFormat(size[0], size[1], chroma, bpc)
    ref = tuple(smooth_plane(rng, *s, peak) for s in fmt.plane_shapes())
    dis = tuple(distort(rng, p, peak, 3 * (peak // 255)) for p in ref)
    ext = Speed(**opts)
    ext.setup(fmt)
    got = ext.extract(7, ref, dis)
    assert got[0][0] == 7
    vals = got[0][1]
    cw = size[0] // 2 if chroma in ("420", "422") else size[0]
    ch = size[1] // 2 if chroma == "420" else size[1]
    want = [speed_twin(ref[p][:ch, :cw], dis[p][:ch, :cw], bpc, opts) for p in (1, 2)]
    assert vals["speed_chroma_u"] == pytest.approx(want[0], rel=2e-3)
    assert vals["speed_chroma_v"] == pytest.approx(want[1], rel=2e-3)
    assert vals["speed_chroma_uv"] == pytest.approx((vals["speed_chroma_u"] + vals["speed_chroma_v"]) / 2,
                                                    rel=1e-6)
    assert all(v > 0 for v in vals.values())


def test_identical_flat_views_and_cap():
    rng = np.random.default_rng(11)
    fmt = FrameFormat(640, 480, "420", 8)
    big = [smooth_plane(rng, 2 * r, c + 9, 255) for r, c in fmt.plane_shapes()]
    ref = tuple(b[::2, 3:3 + c] for b, (r, c) in zip(big, fmt.plane_shapes()))  # views
    dis = tuple(distort(rng, p, 255, 4) for p in ref)
    ext = Speed()
    ext.setup(fmt)
    a = ext.compute(ref, dis)
    assert a == ext.compute(tuple(map(np.ascontiguousarray, ref)), dis)
    assert ext.compute(ref, ref) == {k: 0.0 for k in OUTPUTS}
    capped = Speed(speed_max_val=0.5)
    capped.setup(fmt)
    assert capped.compute(ref, dis) == {k: min(v, 0.5) for k, v in a.items()}
    # a flat U plane in both: singular U, so uv takes V's score (libvmaf's rule)
    flat = np.full_like(ref[1], 128)
    b = ext.compute((ref[0], flat, ref[2]), (dis[0], flat, dis[2]))
    assert b["speed_chroma_uv"] == b["speed_chroma_v"] == a["speed_chroma_v"]
    assert b["speed_chroma_u"] == 0.0
    # flat only in the distorted plane: that plane scores 0 and uv is V's
    c = ext.compute(ref, (dis[0], flat, dis[2]))
    assert c["speed_chroma_u"] == 0.0 and c["speed_chroma_uv"] == a["speed_chroma_v"]


# ================================================================ contract

def test_registry_options_and_errors():
    assert get_extractor("speed") is Speed
    for f in OUTPUTS:
        assert extractor_for_feature(f) is Speed
    e = Speed(ks=0.5, snn=0.19, nnf=0.1, wvm=5, mxv=45, ps=0.5, psm="bilinear")
    assert e.options["speed_kernelscale"] == 0.5 and e.options["speed_prescale_method"] == "bilinear"
    assert e.options["speed_weight_var_mode"] == 5 and e.options["speed_max_val"] == 45
    for bad in ({"speed_kernelscale": 1.3}, {"speed_kernelscale": 5.0},
                {"speed_sigma_nn": 0.05}, {"speed_nn_floor": 1.5}, {"speed_max_val": -1},
                {"speed_weight_var_mode": 7}, {"speed_weight_var_mode": 2.5},
                {"speed_prescale": 0.05}, {"speed_prescale_method": "area"},
                {"speed_sigma_nn": "x"}, {"bogus": 1}):
        with pytest.raises(ValueError):
            Speed(**bad)
    with pytest.raises(ValueError, match="luma only"):
        Speed().setup(FrameFormat(640, 480, "400"))
    with pytest.raises(ValueError, match="at least 80x80"):
        Speed().setup(FrameFormat(158, 480, "420"))
    with pytest.raises(ValueError, match="at least 80x80"):
        Speed(speed_prescale=0.5).setup(FrameFormat(150, 300, "444"))
    Speed().setup(FrameFormat(160, 160, "420"))  # the smallest 4:2:0 size


# ================================================================ libvmaf oracle

def _feature(opts):
    return o.feature_spec("speed_chroma", opts)


def _key(frame, out, opts):
    """libvmaf's key for an output: the name with the non-default options'
    aliases and values appended (e.g. speed_chroma_uv_mxv_45_nnf_0.1_snn_0.19_wvm_5)."""
    alias = {v: k for k, v in S.OPTION_ALIASES.items()}
    want = {alias[k]: str(v) for k, v in opts.items() if v != Speed.default_options[k]}

    def same(a, b):
        try:
            return float(a) == float(b)
        except ValueError:
            return a == b

    for k in frame:
        if k == out and not want:
            return k
        if k.startswith(out + "_"):
            parts = k[len(out) + 1:].split("_")
            got = dict(zip(parts[0::2], parts[1::2]))
            if got.keys() == want.keys() and all(same(got[a], want[a]) for a in want):
                return k
    raise KeyError((out, opts, sorted(frame)))


def assert_close(ours, theirs, opts, label):
    assert len(ours) == len(theirs) > 0
    worst = {}
    for a, b in zip(ours, theirs):
        for k in OUTPUTS:
            worst[k] = max(worst.get(k, 0.0), abs(a[k] - b[_key(b, k, opts)]))
    print(f"\n{label}: max |diff| " + " ".join(f"{k}={v:.1e}" for k, v in worst.items()))
    for k, v in worst.items():
        assert v < TOL, (label, k, v)
        assert v < AIM, (label, k, v)


def _pair(d, tag, size, pix, half=False, crf=32, frames=0.32):
    src = o.make_clip(d / f"src{tag}.y4m", "natural", size, duration=frames, pix_fmt=pix)
    w, h = (int(v) for v in size.split("x"))
    if w % 2 or h % 2:  # x264 needs even sizes: scale down and up instead
        mid = o.encode(src, d / f"mid{tag}.y4m", ["-vf", f"scale={w // 2}:{h // 2}:flags=bicubic",
                                                  "-pix_fmt", pix, "-strict", "-1"])
        return src, o.decode_y4m(mid, d / f"dis{tag}.y4m", pix_fmt=pix, size=size)
    enc = d / f"enc{tag}.mp4"
    args = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", pix]
    if half:
        o.encode(src, enc, ["-vf", f"scale={w // 2}:{h // 2}:flags=bicubic", *args])
        return src, o.decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix, size=size,
                                 scale_flags="bicubic")
    o.encode(src, enc, args)
    return src, o.decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix)


# option sets run against libvmaf on every pair (one libvmaf run per pair)
OPTION_SETS = {
    "default": {},
    "v1": V1,
    "v1_2160": V1_2160,
    "v1_5d0h": V1_5D0H,
}
# more option sets, on the 8-bit pair only
MORE_OPTIONS = {
    "ks2": dict(V1, speed_kernelscale=2.0),                  # 19-tap anti-alias filter
    "ks0.5_mode0": dict(speed_kernelscale=0.5, speed_weight_var_mode=0),
    "nearest_1.3": dict(V1, speed_prescale=1.3, speed_prescale_method="nearest"),
    "bicubic_0.7": dict(V1, speed_prescale=0.7, speed_prescale_method="bicubic"),
    "lanczos4_0.6": dict(V1, speed_prescale=0.6, speed_prescale_method="lanczos4"),
    "mode3_cap": dict(speed_weight_var_mode=3, speed_sigma_nn=1.0, speed_max_val=2.0),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("speed")
    return {
        "8": (*_pair(d, "8", "1280x720", "yuv420p"), d),
        "10": (*_pair(d, "10", "1280x720", "yuv420p10le"), d),
        "half8": (*_pair(d, "half8", "1280x720", "yuv420p", half=True, frames=0.2), d),
        "half10": (*_pair(d, "half10", "1280x720", "yuv420p10le", half=True, frames=0.2), d),
        "odd444_12": (*_pair(d, "odd", "485x323", "yuv444p12le", frames=0.2), d),
    }


def _oracle_case(media, case, sets):
    src, dis, d = media[case]
    theirs = o.libvmaf_frames(o.libvmaf(src, dis, d, features=[_feature(v) for v in sets.values()]))
    rf, df, fmt = o.read_pair(src, dis)
    for label, opts in sets.items():
        ours = o.extract_all(Speed(**opts), rf, df, fmt)
        assert_close(ours, theirs, opts, f"{case} {label}")


@pytest.mark.parametrize("case", ["8", "10", "half8", "half10", "odd444_12"])
def test_oracle_v1_option_sets(media, case):
    """The options of every vmaf_v1.0.16 model, and the defaults."""
    _oracle_case(media, case, OPTION_SETS)


def test_oracle_more_options(media):
    _oracle_case(media, "8", MORE_OPTIONS)


def test_oracle_v1_model(media):
    """The built-in vmaf_v1.0.16_3d0h model's own speed_chroma instance."""
    src, dis, d = media["10"]
    theirs = o.libvmaf_frames(o.libvmaf(src, dis, d, model="version=vmaf_v1.0.16_3d0h"))
    assert "speed_chroma_uv_mxv_45_nnf_0.1_snn_0.19_wvm_5" in theirs[0]
    assert_close(o.extract_all(Speed(**V1), *o.read_pair(src, dis)), theirs, V1, "10 model 3d0h")


# ================================================================ timing

def test_timing_1080p():
    rng = np.random.default_rng(0)
    fmt = FrameFormat(1920, 1080, "420", 8)
    ref = tuple(smooth_plane(rng, *s, 255) for s in fmt.plane_shapes())
    dis = tuple(distort(rng, p, 255, 3) for p in ref)
    for label, opts in (("v1", V1), ("v1_2160 options", V1_2160)):
        ext = Speed(**opts)
        ext.setup(fmt)
        first = ext.compute(ref, dis)  # warm-up
        n = 10
        t = time.perf_counter()
        for _ in range(n):
            vals = ext.compute(ref, dis)
        ms = (time.perf_counter() - t) / n * 1000
        print(f"\nspeed_chroma 1920x1080 4:2:0 8-bit ({label}): {ms:.2f} ms/frame")
        assert vals == first and all(0 < v < 45 for v in vals.values())
