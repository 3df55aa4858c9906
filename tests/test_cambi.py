"""cambi extractor: a slow, obvious numpy twin of libvmaf's CAMBI compared
with the Numba kernels; libvmaf's ``cambi`` (through ffmpeg's libvmaf filter)
as oracle on generated banded and natural media, 8/10/12-bit, with the v1
models' options, encode resolutions, full-reference mode and the
high-resolution speed-up; options; a 1080p timing."""
import math
import time

import numpy as np
import pytest

import oracle as o
from vqa_core.features import cambi as C
from vqa_core.features.base import FrameFormat
from vqa_core.features.cambi import Cambi
from vqa_core.features.registry import extractor_for_feature, get_extractor

TOL = 0.01
V1 = {"cambi_high_res_speedup": 1080, "cambi_vis_lum_threshold": 0.06, "cambi_max_val": 17.0}


# ================================================================ numpy twin
#
# Written from libvmaf's cambi.c as plain whole-array numpy: box counts from
# integral images, per-value count maps, a full sort for the pooling, and
# linear scans (not libvmaf's bisection) for the visibility thresholds.

def twin_lum(code, eotf):
    x = (min(max(code, 64), 940) - 64) / 876.0
    if eotf == "pq":
        m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
        p = x ** (1 / m2)
        return 10000 * (max(p - c1, 0) / (c2 - c3 * p)) ** (1 / m1)
    lw, lb = 300.0 ** (1 / 2.4), 0.01 ** (1 / 2.4)
    return (lw - lb) ** 2.4 * max(x + lb / (lw - lb), 0) ** 2.4


def twin_tvi(diff, thr, eotf):
    """Largest code in 64 .. 940 - diff - 1 where a step of diff is visible,
    by a linear scan (0 if none, 1023 if the whole range is)."""
    def vis(s):
        m = twin_lum(s, eotf)
        return twin_lum(s + diff, eotf) - m > thr * m
    if not vis(64):
        return 0
    for s in range(64, 940 - diff):
        if not vis(s + 1):
            return s
    return 1023


def twin_vlt(thr, eotf):
    s = 64
    while twin_lum(s, eotf) < thr:
        s += 1
    return 0 if s == 64 else s


def box_count(a, r):
    """Sum of a over the (2r+1)^2 square around each pixel, clipped to the frame."""
    h, w = a.shape
    ii = np.zeros((h + 1, w + 1), dtype=np.int64)
    ii[1:, 1:] = a.astype(np.int64).cumsum(0).cumsum(1)
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    return (ii[y1][:, x1] - ii[y0][:, x1] - ii[y1][:, x0] + ii[y0][:, x0])


def twin_resize_idx(n_in, n_out):
    if n_in == n_out:
        return np.arange(n_out)
    ratio = np.float32(n_in) / np.float32(n_out)
    start = np.float32(np.float64(ratio / np.float32(2)) - 0.5)
    steps = np.full(n_out, ratio, dtype=np.float32)
    steps[0] = start
    x = np.cumsum(steps, dtype=np.float32)  # sequential float32 sums
    return (x.astype(np.float64) + 0.5).astype(np.int64)


def twin_preprocess(y, depth, w, h, enc_depth):
    y = y.astype(np.int64)
    ih, iw = y.shape
    if (iw, ih) != (w, h):
        y = y[twin_resize_idx(ih, h)][:, twin_resize_idx(iw, w)]
    if depth <= 8:
        y = y << (10 - depth)
    elif depth == 9:
        y = y << 1
    elif depth > 10:
        y = (y + (1 << (depth - 11))) >> (depth - 10)
    if enc_depth < 10:
        p = np.pad(y, ((0, 1), (0, 1)), mode="edge")
        out = (p[:-1, :-1] + p[:-1, 1:] + p[1:, :-1] + p[1:, 1:]) >> 2
        out[:-1, -1] = (y[:-1, -1] + y[1:, -1]) >> 1
        out[-1, :-1] = (y[-1, :-1] + y[-1, 1:]) >> 1
        out[-1, -1] = y[-1, -1]
        y = out
    return y


def twin_mask(img):
    h, w = img.shape
    right = np.ones((h, w), bool)
    right[:, :-1] = img[:, :-1] == img[:, 1:]
    down = np.ones((h, w), bool)
    down[:-1] = img[:-1] == img[1:]
    cnt = box_count(right & down, 3)
    thr = (49 + 3 * (math.ceil(math.log2(max((w // 64) * (h // 64), 1))) - 11) - 1) // 2
    return cnt > thr


def mode3(a, b, c):
    m = np.minimum(np.minimum(a, b), c)
    return np.where((a == b) | (a == c), a, np.where(b == c, b, m))


def twin_mode_filter(x):
    hz = x.copy()
    hz[:, 1:-1] = mode3(x[:, :-2], x[:, 1:-1], x[:, 2:])
    out = x.copy()
    out[1:-1] = mode3(hz[:-2], hz[1:-1], hz[2:])
    return out


def twin_cmap(img, mask, window, nd, tvi_raw, vlt):
    """c value of every pixel: counts of masked values in the window."""
    r = window // 2
    maps = {}

    def count(u):
        if u not in maps:
            maps[u] = box_count(mask & (img == u), r)
        return maps[u]

    lut = np.array([0.0] + [float("%.9g" % (1.0 / i)) for i in range(1, 2 * window * window + 2)],
                   dtype=np.float32)
    weights = (1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8,
               8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9)
    c = np.zeros(img.shape, np.float32)
    for v in np.unique(img[mask]):
        sel = mask & (img == v)
        p0 = count(v)[sel]
        best = np.zeros(p0.shape, np.float32)
        for d in range(nd):
            if v <= tvi_raw[d] and v + nd + d + 1 > vlt:
                p1 = count(v + d + 1)[sel]
                p2 = count(v - d - 1)[sel] if v - d - 1 >= 0 else np.zeros_like(p0)
                pm = np.maximum(p1, p2)
                val = (weights[d] * p0 * pm).astype(np.float32) * lut[p0 + pm]
                best = np.maximum(best, val)
        c[sel] = best
    return c


def twin_cambi(y, depth, *, window_size=65, topk=0.6, tvi_threshold=0.019, vlt=0.0,
               max_log_contrast=2, eotf="bt1886", enc=None, enc_depth=None, speedup=False,
               max_val=1000.0):
    h, w = y.shape
    ew, eh = enc or (w, h)
    img = twin_preprocess(y, depth, ew, eh, enc_depth or depth)
    nd = 2 ** max_log_contrast
    tvi_raw = [twin_tvi(d + 1, tvi_threshold, eotf) for d in range(nd)]
    vl = twin_vlt(vlt, eotf)
    win = window_size * (ew + eh) // 375 // 16
    if speedup:
        win = (win + 1) // 2
    win |= 1
    mask = twin_mask(img)
    score = 0.0
    for s in range(5):
        if s > 0 or speedup:
            img, mask = img[::2, ::2], mask[::2, ::2]
        img = twin_mode_filter(img)
        c = twin_cmap(img, mask, win, nd, tvi_raw, vl)
        n = c.size
        k = min(max(int(topk * n), 1), n)
        top = np.sort(c.ravel())[::-1][:k]
        score += top.astype(np.float64).sum() / k * (16, 8, 4, 2, 1)[s]
    return min(score / (win * win), max_val)


# ---------------------------------------------------------------- test images

def sky(w, h, n, depth, lo=0.18, hi=0.32, noise=0.3, seed=0, step=1):
    """Smooth 'sky' gradients with a soft moving blob, lightly dithered.
    Without noise the 8-bit rounding alone bands (CAMBI sees steps of up to
    4 10-bit codes); ``step`` quantises deeper ones as coarsely."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    peak = (1 << depth) - 1
    out = []
    for t in range(n):
        g = lo + (hi - lo) * (yy / h) ** 1.3 + 0.02 * np.sin(xx / w * 3 + t * 0.2)
        g += 0.05 * np.exp(-(((xx - w * (0.3 + 0.02 * t)) / (0.2 * w)) ** 2
                             + ((yy - 0.4 * h) / (0.25 * h)) ** 2))
        v = g * peak + rng.normal(0, noise, g.shape) * (peak / 255)
        v = np.round(v / step) * step
        out.append(np.clip(v, 0, peak).astype(np.uint16))
    return out


def write_y4m(path, frames, depth, chroma="420"):
    h, w = frames[0].shape
    tag = {8: "420jpeg"}.get(depth, f"420p{depth}") if chroma == "420" else \
        ("444" if depth == 8 else f"444p{depth}")
    dt = np.uint8 if depth == 8 else np.dtype("<u2")
    cs = ((h + 1) // 2, (w + 1) // 2) if chroma == "420" else (h, w)
    c = np.full(cs, 1 << (depth - 1), dtype=dt)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C{tag}\n".encode())
        for y in frames:
            f.write(b"FRAME\n" + y.astype(dt).tobytes() + c.tobytes() + c.tobytes())
    return path


# ================================================================ twin tests

def test_tables_and_geometry():
    # libvmaf's reciprocal table is 1/i to 9 significant digits, not 1.0f/i
    assert C.RECIPROCAL_LUT[82] != np.float32(1) / np.float32(82)
    assert C.RECIPROCAL_LUT[82] == np.float32(0.012195122)
    for thr in (0.019, 0.03, 0.1, 1.0):
        for eotf in ("bt1886", "pq"):
            f = C.EOTFS[eotf]
            assert [C.tvi_for_diff(d, thr, f) for d in (1, 2, 3, 4, 8, 32)] == \
                [twin_tvi(d, thr, eotf) for d in (1, 2, 3, 4, 8, 32)], (thr, eotf)
    for thr in (0.0, 0.06, 1.0, 20.0):
        for eotf in ("bt1886", "pq"):
            assert C.vlt_luma(thr, C.EOTFS[eotf]) == twin_vlt(thr, eotf)
    assert [C.tvi_for_diff(d, 0.019, C.bt1886_eotf) for d in (1, 2, 3, 4)] == [178, 305, 432, 559]
    assert C.adjust_window(65, 1920, 1080, False) == 33
    assert C.adjust_window(65, 1920, 1080, True) == 17
    assert C.adjust_window(65, 3840, 2160, False) == 65
    assert C.adjust_window(65, 320, 240, False) == 7
    for n_in, n_out in ((320, 240), (1920, 1280), (1080, 720), (301, 217), (500, 500), (217, 301)):
        assert np.array_equal(C.nn_indices(n_in, n_out), twin_resize_idx(n_in, n_out))


def _frames(rng, h, w, depth):
    peak = (1 << depth) - 1
    yield "sky", sky(w, h, 1, depth, seed=int(rng.integers(1 << 30)))[0]
    yield "banded", sky(w, h, 1, depth, noise=0.0, step=1 << max(depth - 8, 0))[0]
    blocks = rng.integers(60, 120, size=(h // 8 + 1, w // 8 + 1)) << max(depth - 8, 0)
    yield "blocks", np.kron(blocks, np.ones((8, 8), np.int64))[:h, :w].astype(np.uint16)
    yield "random", rng.integers(0, peak + 1, size=(h, w)).astype(np.uint16)
    dark = sky(w, h, 1, depth, lo=0.06, hi=0.12, noise=0.2)[0]
    yield "dark", dark


@pytest.mark.parametrize("depth,h,w", [(8, 151, 233), (10, 131, 231), (12, 99, 230)])
def test_twin_pipeline(depth, h, w):
    rng = np.random.default_rng(depth)
    fmt = FrameFormat(w, h, "400", depth)
    dt = fmt.dtype
    cases = [({}, {}),
             ({"window_size": 40, "topk": 0.2, "tvi_threshold": 0.05, "max_log_contrast": 3},
              {"window_size": 40, "topk": 0.2, "tvi_threshold": 0.05, "max_log_contrast": 3}),
             ({"cambi_vis_lum_threshold": 1.0, "cambi_eotf": "pq", "max_log_contrast": 1},
              {"vlt": 1.0, "eotf": "pq", "max_log_contrast": 1}),
             ({"enc_width": w - 13, "enc_height": max(h - 17, 150), "enc_bitdepth": 8},
              # (an encode height above the frame's: libvmaf keeps the frame's size)
              {"enc": (w - 13, max(h - 17, 150)) if max(h - 17, 150) <= h else None,
               "enc_depth": 8})]
    for opts, tw in cases:
        ext = Cambi(**opts)
        ext.setup(fmt)
        for name, y in _frames(rng, h, w, depth):
            if opts and name not in ("sky", "dark"):
                continue
            y = y.astype(dt)
            got = ext.extract(0, (y,), (y,))[0][1]["cambi"]
            want = twin_cambi(y, depth, **tw)
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (opts, name)


def test_pooling_both_ways(monkeypatch):
    """Top-k pooling: when no more c values are non-zero than k, the sum of
    them all (no binning); otherwise the binned selection.  Both against
    the twin, and both taken."""
    calls = []
    real = C.bin_cvals
    monkeypatch.setattr(C, "bin_cvals", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(11)
    h, w = 131, 231
    fmt = FrameFormat(w, h, "400", 10)
    frames = dict(_frames(rng, h, w, 10))
    for topk, binned in ((1.0, False), (0.05, True)):
        ext = Cambi(topk=topk)
        ext.setup(fmt)
        calls.clear()
        for name in ("sky", "banded", "blocks", "dark"):
            y = frames[name].astype(fmt.dtype)
            got = ext.extract(0, (y,), (y,))[0][1]["cambi"]
            assert got == pytest.approx(twin_cambi(y, 10, topk=topk), rel=1e-9, abs=1e-12)
        assert bool(calls) == binned, topk


def test_twin_speedup_and_views():
    """The high-resolution path (decimation before scale 0) on a small frame,
    forced by shrinking the threshold; non-contiguous input views."""
    big = sky(500, 400, 1, 10)[0]
    y = big[10:390:2, 3:480]  # non-contiguous
    fmt = FrameFormat(y.shape[1], y.shape[0], "400", 10)
    saved = dict(C.HIGH_RES_THRESHOLDS)
    try:
        C.HIGH_RES_THRESHOLDS[1080] = 1
        ext = Cambi(cambi_high_res_speedup=1080)
        ext.setup(fmt)
    finally:
        C.HIGH_RES_THRESHOLDS.clear()
        C.HIGH_RES_THRESHOLDS.update(saved)
    assert ext.speedup
    got = ext.extract(0, (y,), (y,))[0][1]["cambi"]
    assert got == pytest.approx(twin_cambi(y, 10, speedup=True), rel=1e-9)
    plain = Cambi()
    plain.setup(fmt)
    a = plain.extract(0, (y,), (y,))[0][1]["cambi"]
    b = plain.extract(1, (np.ascontiguousarray(y),), (np.ascontiguousarray(y),))[0][1]["cambi"]
    assert a == b == pytest.approx(twin_cambi(y, 10), rel=1e-9)


def twin_runs(row, mrow, base, size):
    """(first, last, value - base) of each maximal run of equal masked
    values whose value is in base .. base + size - 1."""
    out = []
    j, w = 0, len(row)
    while j < w:
        if not mrow[j]:
            j += 1
            continue
        a = j
        while j + 1 < w and mrow[j + 1] and row[j + 1] == row[a]:
            j += 1
        if 0 <= int(row[a]) - base < size:
            out.append((a, j, int(row[a]) - base))
        j += 1
    return out


def test_kernels_against_twin():
    rng = np.random.default_rng(5)
    for h, w in ((37, 53), (64, 1), (1, 40), (2, 3)):
        x = rng.integers(0, 4, size=(h, w)).astype(np.uint16)
        out = np.zeros_like(x)
        C.mode_filter(x, np.zeros_like(x), out)
        assert np.array_equal(out, twin_mode_filter(x)), (h, w)
        dith = np.zeros_like(x)
        C.anti_dither(x, dith)
        assert np.array_equal(dith, twin_preprocess(x, 10, w, h, 8)), (h, w)
        m = np.zeros((h, w), np.uint8)
        C.spatial_mask(x, C.mask_index(w, h), np.zeros((h, w), np.uint8),
                       np.zeros((2, w + 6), np.int32), m)
        assert np.array_equal(m.astype(bool), twin_mask(x)), (h, w)
        # the extractor's fused kernels: mask (decimated by 2 with the speed-up)
        for step in (1, 2):
            md = np.zeros(((h + step - 1) // step, (w + step - 1) // step), np.uint8)
            C.mask_decimated(x, C.mask_index(w, h), step, np.zeros((h, w), np.uint8),
                             np.zeros((3, 2 * w + 6), np.uint8), md)
            assert np.array_equal(md.astype(bool), twin_mask(x)[::step, ::step]), (h, w, step)
    # preprocess: resize, 10 bits and anti-dithering in one pass, on views
    for depth, (ih, iw), (h, w), enc in ((8, (37, 53), (37, 53), 8), (8, (40, 60), (31, 45), 8),
                                         (12, (37, 53), (37, 53), 12), (10, (33, 47), (20, 30), 8),
                                         (8, (2, 3), (2, 3), 8), (8, (1, 5), (1, 5), 8)):
        big = rng.integers(0, 1 << depth, size=(ih, 2 * iw))
        y = big.astype(np.uint8 if depth == 8 else np.uint16)[:, ::2]
        ys, xs = twin_resize_idx(ih, h), twin_resize_idx(iw, w)
        conv = {8: (2, 0, 0), 10: (0, 0, 0), 12: (0, 2, 2)}[depth]
        for ident in ((True, False) if (ih, iw) == (h, w) else (False,)):
            out = np.zeros((h, w), np.uint16)
            C.preprocess(y, ys, xs, ident, *conv, enc < 10, np.zeros((3, 2, w), np.uint16), out)
            assert np.array_equal(out, twin_preprocess(y, depth, w, h, enc)), (depth, h, w, ident)
    # decimation by 2, odd and even sizes, both dtypes
    for h, w in ((5, 7), (6, 8), (1, 1), (3, 2), (9, 65)):
        for dt in (np.uint16, np.uint8):
            x = rng.integers(0, 200, size=(h, w)).astype(dt)
            out = np.zeros(((h + 1) // 2, (w + 1) // 2), dt)
            C.decimate(x, out)
            assert np.array_equal(out, x[::2, ::2]), (h, w, dt)
    # runs of equal masked in-band values, row by row, at widths around the
    # 64-column words of find_runs' bit scan
    for h, w in ((5, 1), (4, 63), (4, 64), (4, 65), (3, 128), (6, 200), (2, 960)):
        x = rng.integers(60, 70, size=(h, w)).astype(np.uint16)
        x[:, w // 3: w // 2] = 64  # a long run
        m = (rng.random((h, w)) < 0.8).astype(np.uint8)
        m[0] = 1
        m[-1, ::2] = 0
        base, size = 62, 6
        ra, rb, rv = (np.zeros((h, w), np.int16) for _ in range(3))
        rn, npx = np.zeros(h, np.int64), np.zeros(h, np.int64)
        nw = (w + 63) // 64
        C.find_runs(x, m, base, size, ra, rb, rv, rn, npx, np.zeros(w + 1, np.uint8),
                    np.zeros(nw, np.uint64), np.zeros(nw, np.uint64))
        for i in range(h):
            want = twin_runs(x[i], m[i], base, size)
            got = [(int(ra[i, q]), int(rb[i, q]), int(rv[i, q])) for q in range(rn[i])]
            assert got == want, (h, w, i)
            assert npx[i] == sum(b - a + 1 for a, b, _ in want)
    # top-k pooling with ties, zeros and k at every boundary
    c = rng.choice(np.float32([0, 0, 0.5, 1.25, 3.0, 7.1]), size=(31, 17)).astype(np.float32)
    c[3, 4] = 1e-30
    n = c.size
    srt = np.sort(c.ravel())[::-1].astype(np.float64)
    scratch = (np.zeros((2, 65536), np.int64), np.zeros((2, 65536)), np.zeros((2, 65536), np.int64))
    for k in (1, 2, 50, 200, n - 1, n):
        for nch in (1, 2):
            assert C.topk_mean(c, k, nch, *scratch) == pytest.approx(srt[:k].sum() / k, rel=1e-12)


# ================================================================ contract

def test_registry_options_and_errors():
    assert get_extractor("cambi") is Cambi
    assert extractor_for_feature("cambi") is Cambi
    e = Cambi(ws=31, ctpk=0.3, tvit=0.02, vlt=0.06, mlc=3, ceot="pq", hrs=1080, cmxv=17,
              encw=960, ench=540, encbd=8)
    o_ = e.options
    assert (o_["window_size"], o_["cambi_topk"], o_["max_log_contrast"], o_["cambi_eotf"]) == \
        (31, 0.3, 3, "pq")
    assert e.topk == 0.3 and e.eotf == "pq"
    assert Cambi(topk=0.2, cambi_topk=0.3).topk == 0.2  # topk wins when not default
    assert Cambi(eotf="pq").eotf == "pq"
    assert Cambi(cambi_window_size=47).options["window_size"] == 47
    assert Cambi(full_ref="true").options["full_ref"] is True
    for bad in ({"window_size": 14}, {"window_size": 128}, {"topk": 0.0}, {"cambi_topk": 1.5},
                {"tvi_threshold": 0.0}, {"cambi_vis_lum_threshold": 301}, {"max_log_contrast": 6},
                {"cambi_max_val": -1}, {"enc_width": 100}, {"enc_height": 8000},
                {"enc_bitdepth": 5}, {"src_width": 200}, {"eotf": "hlg"}, {"cambi_eotf": "x"},
                {"full_ref": "maybe"}, {"window_size": 30.5}, {"bogus": 1}):
        with pytest.raises(ValueError):
            Cambi(**bad)
    with pytest.raises(ValueError):  # below 216 in both directions
        Cambi().setup(FrameFormat(200, 200))
    with pytest.raises(ValueError):
        Cambi(enc_width=200, enc_height=150).setup(FrameFormat(320, 240))
    with pytest.raises(ValueError):  # window 131 at 8K: beyond libvmaf's table
        Cambi().setup(FrameFormat(7680, 4320, "400"))
    # an encode resolution above the frame's falls back to the frame's
    e = Cambi(enc_width=640, enc_height=480)
    e.setup(FrameFormat(320, 240, "400"))
    assert (e._dis.w, e._dis.h) == (320, 240)
    # speed-up only from the threshold resolution
    e = Cambi(cambi_high_res_speedup=1080)
    e.setup(FrameFormat(1920, 1080, "400"))
    assert e.speedup and e._dis.window == 17
    for hrs, size in ((1080, (1280, 720)), (1440, (1920, 1080)), (720, (1920, 1080))):
        e = Cambi(cambi_high_res_speedup=hrs)
        e.setup(FrameFormat(*size, "400"))
        assert not e.speedup
    # max_val clips; full_ref gives the three outputs
    y = sky(320, 240, 1, 8, noise=0.0)[0].astype(np.uint8)
    e = Cambi(cambi_max_val=0.5, full_ref=True)
    e.setup(FrameFormat(320, 240, "400"))
    v = e.extract(0, (y,), (y,))[0][1]
    assert v == {"cambi": 0.5, "cambi_source": 0.5, "cambi_full_reference": 0.0}


def test_heatmaps(tmp_path):
    y = sky(320, 240, 1, 8, noise=0.0)[0].astype(np.uint8)
    e = Cambi(heatmaps_path=str(tmp_path))
    e.setup(FrameFormat(320, 240, "400"))
    for i in range(2):
        e.extract(i, (y,), (y,))
    e.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "cambi_heatmap_scale_0_320x240_16b.gray"
    assert len(names) == 5
    data = np.fromfile(tmp_path / names[0], dtype="<u2")
    assert data.size == 2 * 320 * 240 and data.max() > 0


def twin_cmap0(y, depth):
    """The twin's scale-0 c values of a luma plane (Cambi's defaults)."""
    h, w = y.shape
    img = twin_preprocess(y, depth, w, h, depth)
    nd = 4
    tvi_raw = [twin_tvi(d + 1, 0.019, "bt1886") for d in range(nd)]
    win = (65 * (w + h) // 375 // 16) | 1
    mask = twin_mask(img)
    return twin_cmap(twin_mode_filter(img), mask, win, nd, tvi_raw, twin_vlt(0.0, "bt1886"))


def test_heatmap_values(tmp_path):
    """The heat maps carry every pixel's c value (zero outside the runs), also
    for a frame after one of other content: c values are kept in the frame's
    array only on this path (and the binned pooling's)."""
    a = sky(320, 240, 1, 8, noise=0.0)[0].astype(np.uint8)
    # b: c = 0 on ~9000 pixels where a's is not (stale values would show)
    b = sky(320, 240, 1, 8, noise=0.0, lo=0.1, hi=0.2)[0].astype(np.uint8)
    e = Cambi(heatmaps_path=str(tmp_path))
    e.setup(FrameFormat(320, 240, "400"))
    for i, y in enumerate((a, b)):
        e.extract(i, (y,), (y,))
    scale = e._heat_scale
    e.close()
    data = np.fromfile(tmp_path / "cambi_heatmap_scale_0_320x240_16b.gray", dtype="<u2")
    for i, y in enumerate((a, b)):
        want = (scale * twin_cmap0(y, 8).astype(np.float64)).astype(np.uint16)
        got = data[i * 320 * 240:(i + 1) * 320 * 240].reshape(240, 320)
        assert want.max() > 0 and np.array_equal(got, want), i


# ================================================================ libvmaf oracle

def oracle_values(ref, dis, tmp, opts=None):
    """Per-frame libvmaf cambi outputs of one cambi instance with ``opts``
    (its names carry libvmaf's option suffix)."""
    feat = o.feature_spec("cambi", opts)
    frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp, features=[feat]))
    out = []
    for fr in frames:
        d = {}
        for k, v in fr.items():
            if k.startswith("cambi_source"):
                d["cambi_source"] = v
            elif k.startswith("cambi_full_reference"):
                d["cambi_full_reference"] = v
            elif k.startswith("cambi"):
                d["cambi"] = v
        out.append(d)
    return out


def our_values(ref, dis, **opts):
    return o.extract_all(Cambi(**opts), *o.read_pair(ref, dis))


def assert_close(ours, theirs, label, banded=False):
    assert len(ours) == len(theirs) and theirs
    worst = {}
    for a, b in zip(ours, theirs):
        assert set(b) == set(a), (label, sorted(b), sorted(a))
        for k in b:
            worst[k] = max(worst.get(k, 0.0), abs(a[k] - b[k]))
    print(f"\n{label}: max |diff| " + " ".join(f"{k}={v:.1e}" for k, v in worst.items())
          + f"  (cambi {theirs[0]['cambi']:.3f})")
    for k, v in worst.items():
        assert v < TOL, (label, k, v)
        assert v <= 1e-6, (label, k, v)  # libvmaf prints 6 decimals: aim for exact
    if banded:
        assert min(f["cambi"] for f in theirs) > 1.0, (label, "no banding in the test media")


def _x264(src, d, tag, pix, crf, size=None):
    enc = d / f"enc{tag}.mp4"
    o.encode(src, enc, ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", pix])
    return o.decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix, size=size)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("cambi")
    m = {}
    s8 = write_y4m(d / "sky8.y4m", sky(320, 240, 3, 8), 8)
    m["sky8"] = (s8, _x264(s8, d, "sky8", "yuv420p", 30), d)
    sb = write_y4m(d / "bright8.y4m", sky(320, 240, 2, 8, lo=0.25, hi=0.6, noise=1.0, seed=6), 8)
    m["bright8"] = (sb, _x264(sb, d, "bright8", "yuv420p", 30), d)
    s10 = write_y4m(d / "sky10.y4m", sky(320, 240, 3, 10, seed=1), 10)
    m["sky10"] = (s10, _x264(s10, d, "sky10", "yuv420p10le", 30), d)
    s12 = write_y4m(d / "sky12.y4m", sky(256, 216, 2, 12, seed=2), 12)
    q12 = write_y4m(d / "q12.y4m", sky(256, 216, 2, 12, seed=2, noise=0.0, step=16), 12)
    m["sky12"] = (s12, q12, d)
    # odd size, quantised without an encoder, 4:4:4
    so = write_y4m(d / "odd.y4m", sky(301, 227, 2, 8, seed=3), 8, chroma="444")
    qo = write_y4m(d / "oddq.y4m", sky(301, 227, 2, 8, seed=3, noise=0.0), 8, chroma="444")
    m["odd"] = (so, qo, d)
    sd = write_y4m(d / "dark8.y4m", sky(320, 240, 2, 8, lo=0.06, hi=0.12, noise=0.2, seed=4), 8)
    m["dark8"] = (sd, _x264(sd, d, "dark8", "yuv420p", 28), d)
    n8 = o.make_clip(d / "nat8.y4m", "natural", "320x240", duration=0.12, pix_fmt="yuv420p")
    m["nat8"] = (n8, _x264(n8, d, "nat8", "yuv420p", 38), d)
    n10 = o.make_clip(d / "nat10.y4m", "natural", "320x240", duration=0.12, pix_fmt="yuv420p10le")
    m["nat10"] = (n10, _x264(n10, d, "nat10", "yuv420p10le", 38), d)
    # encoded at 240x180 and scaled back up (bicubic): the encode-resolution case
    e8 = d / "half8.mp4"
    o.encode(s8, e8, ["-vf", "scale=240:180:flags=bicubic", "-c:v", "libx264", "-preset",
                      "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p"])
    m["up8"] = (s8, o.decode_y4m(e8, d / "up8.y4m", pix_fmt="yuv420p", size="320x240"), d)
    return m


@pytest.mark.parametrize("case", ["sky8", "bright8", "sky10", "sky12", "odd", "dark8", "nat8",
                                  "nat10", "up8"])
def test_oracle_default(media, case):
    src, dis, d = media[case]
    assert_close(our_values(src, dis), oracle_values(src, dis, d), f"{case} default",
                 banded=case not in ("nat8", "nat10"))


@pytest.mark.parametrize("case", ["bright8", "sky10", "nat8", "nat10", "dark8"])
def test_oracle_v1_options(media, case):
    """The vmaf_v1.0.16 models' cambi options (dark8 bands beyond the clip at 17)."""
    src, dis, d = media[case]
    assert_close(our_values(src, dis, **V1), oracle_values(src, dis, d, V1), f"{case} v1")


@pytest.mark.parametrize("case,opts", [
    ("up8", {"enc_width": 240, "enc_height": 180}),
    ("sky10", {"enc_width": 256, "enc_height": 192, "enc_bitdepth": 8}),
    ("sky8", {"enc_width": 320, "enc_height": 200, "enc_bitdepth": 10}),
    ("nat8", {"enc_width": 300, "enc_height": 225}),
])
def test_oracle_encode_resolution(media, case, opts):
    src, dis, d = media[case]
    assert_close(our_values(src, dis, **opts), oracle_values(src, dis, d, opts), f"{case} {opts}")


@pytest.mark.parametrize("case,opts", [
    ("sky8", {"window_size": 40, "topk": 0.3, "tvi_threshold": 0.03, "max_log_contrast": 3,
              "eotf": "pq"}),
    ("sky10", {"cambi_topk": 0.9, "max_log_contrast": 0, "cambi_eotf": "pq"}),
    ("dark8", {"cambi_vis_lum_threshold": 1.0, "window_size": 127, "max_log_contrast": 5}),
    ("odd", {"tvi_threshold": 0.01, "cambi_max_val": 30.0, "topk": 1.0}),
    ("nat8", {"tvi_threshold": 0.01, "topk": 0.05, "max_log_contrast": 1}),
])
def test_oracle_other_options(media, case, opts):
    src, dis, d = media[case]
    assert_close(our_values(src, dis, **opts), oracle_values(src, dis, d, opts), f"{case} {opts}")


@pytest.mark.parametrize("case,opts", [
    ("sky8", {}),
    ("sky10", {"src_width": 320, "src_height": 240, "enc_width": 240, "enc_height": 180}),
    ("sky8", {"src_width": 320, "src_height": 200, "enc_width": 300, "enc_height": 200}),
    ("dark8", {"src_width": 400, "src_height": 300}),  # the source upscaled
    ("odd", {"window_size": 31}),
])
def test_oracle_full_ref(media, case, opts):
    src, dis, d = media[case]
    ours = our_values(src, dis, full_ref=True, **opts)
    theirs = oracle_values(src, dis, d, {"full_ref": "true", **opts})
    assert_close(ours, theirs, f"{case} full_ref {opts}")


@pytest.fixture(scope="module")
def hd(tmp_path_factory):
    d = tmp_path_factory.mktemp("cambi_hd")
    src = write_y4m(d / "hd.y4m", sky(1920, 1080, 2, 10, seed=5), 10)
    return src, _x264(src, d, "hd", "yuv420p10le", 30), d


def test_oracle_1080p_high_res_speedup(hd):
    src, dis, d = hd
    for opts in (V1, {"cambi_high_res_speedup": 1080}, {}):
        theirs = oracle_values(src, dis, d, opts)
        assert all(f["cambi"] < opts.get("cambi_max_val", 1000.0) for f in theirs)  # not clipped
        assert_close(our_values(src, dis, **opts), theirs, f"1080p {opts}", banded=True)


# ================================================================ speed

def test_timing_1080p(hd):
    src, dis, _ = hd
    _, frames, fmt = o.read_pair(src, dis)
    for opts in ({}, V1):
        ext = Cambi(**opts)
        ext.setup(fmt)
        ext.extract(0, frames[0], frames[0])  # warm-up
        n = 4
        t = time.perf_counter()
        for i in range(n):
            v = ext.extract(i, frames[i % 2], frames[i % 2])[0][1]["cambi"]
        ms = (time.perf_counter() - t) / n * 1000
        print(f"\ncambi 1920x1080 10-bit {opts or 'default'}: {ms:.1f} ms/frame")
        assert 0.0 < v < 1000.0
