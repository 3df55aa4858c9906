"""motion extractor: a slow, obvious numpy twin of libvmaf's integer motion
(SAD of the blurred frame difference, and the motion2 / motion3 rules of its
flush), compared with the Numba kernel and the streaming extractor; libvmaf's
``integer_motion*`` (through ffmpeg's libvmaf filter, with the v0.6.1,
v1.0.16_3d0h and v1.0.16_hfr_3d0h models and other options) as oracle on
generated natural clips; the streaming contract; options; a 1080p timing."""
import re
import time

import numpy as np
import pytest

import oracle as o
from vqa_core.features import motion as M
from vqa_core.features.base import FrameFormat
from vqa_core.features.motion import Motion
from vqa_core.features.registry import extractor_for_feature, get_extractor

OUTPUTS = ("motion", "motion2", "motion3")
TOL = 5e-3        # the tolerance
PRINTED = 6e-7    # libvmaf prints 6 decimals: what we actually expect

V1 = {"motion_max_val": 18.0}
HFR = {"motion_max_val": 18.0, "motion_five_frame_window": True, "motion_moving_average": True}


# ================================================================ numpy twin
#
# Written from libvmaf's integer_motion.c as whole-array numpy in int64.

TAPS = np.array([3571, 16004, 26386, 16004, 3571], dtype=np.int64)


def blur_diff_twin(prev, cur, bpc):
    """The blurred difference prev - cur, in libvmaf's fixed point."""
    d = prev.astype(np.int64) - cur.astype(np.int64)
    h, w = d.shape
    # mirror without repeating the edge sample: numpy's "reflect"
    dp = np.pad(d, ((2, 2), (0, 0)), mode="reflect")
    y = sum(TAPS[k] * dp[k:k + h] for k in range(5))
    y = (y + (1 << (bpc - 1))) >> bpc
    yp = np.pad(y, ((0, 0), (2, 2)), mode="reflect")
    x = sum(TAPS[k] * yp[:, k:k + w] for k in range(5))
    return (x + (1 << 15)) >> 16


def sad_twin(prev, cur, bpc):
    return int(np.abs(blur_diff_twin(prev, cur, bpc)).sum())


def motion_twin(frames, bpc, **options):
    """All outputs of a whole sequence of reference luma planes, the way
    libvmaf's extract + flush produce them."""
    opt = {**Motion.default_options, **options}
    five = opt["motion_five_frame_window"]
    m = 2 if five else 1
    stride = 2 if five else 1
    mx, fps = opt["motion_max_val"], opt["motion_fps_weight"]
    n = len(frames)
    h, w = frames[0].shape if n else (1, 1)

    def blend(x):
        f, off = opt["motion_blend_factor"], opt["motion_blend_offset"]
        return x * f + (1 - f) * min(off, x)

    sad = []
    for i, y in enumerate(frames):
        if opt["motion_force_zero"] or i < m:
            sad.append(0.0)
        else:
            sad.append(min(sad_twin(frames[i - m], y, bpc) / 256.0 / (w * h) * fps, mx))
    stamp = min(blend(sad[m]), mx) if n > m else 0.0
    out, prev = [], 0.0
    for i in range(n):
        if i < m:
            m2, m3, prev = 0.0, stamp, stamp
        else:
            if i + 1 >= n:
                m2 = sad[i]
            elif i - stride + 1 >= m:
                m2 = min(sad[i - stride + 1], sad[i + 1])
            else:
                m2 = sad[i + 1]
            p = min(blend(m2), mx)
            m3 = (p + prev) / 2 if opt["motion_moving_average"] else p
            prev = p
        out.append({"motion": sad[i], "motion2": m2, "motion3": m3})
    return out


def run_stream(ext, frames, indices=None, dis=None):
    """Push frames one by one; returns [(index, values)] in emission order and
    checks each push returns only earlier-or-equal frames."""
    indices = list(range(len(frames))) if indices is None else indices
    out = []
    for k, (i, y) in enumerate(zip(indices, frames)):
        d = y if dis is None else dis[k]
        got = ext.extract(i, (y,), (d,))
        assert all(j in indices[:k + 1] for j, _ in got)
        out += got
    out += ext.flush()
    return out


def smooth_seq(rng, n, h, w, peak, step=(1, 2)):
    """A moving smooth image plus grain: n frames."""
    big = np.cumsum(np.cumsum(rng.normal(size=(h + 4 * n, w + 4 * n)), 0), 1)
    big = (big - big.min()) / (big.max() - big.min()) * peak
    dt = np.uint8 if peak < 256 else np.uint16
    out = []
    for t in range(n):
        y = big[t * step[0]:t * step[0] + h, t * step[1]:t * step[1] + w]
        y = y + rng.normal(scale=peak / 100, size=y.shape)
        out.append(np.clip(np.round(y), 0, peak).astype(dt))
    return out


# ================================================================ kernel vs twin

@pytest.mark.parametrize("bpc,shape", [(8, (37, 53)), (8, (3, 3)), (8, (4, 7)),
                                       (10, (48, 64)), (12, (33, 34)), (16, (40, 41)),
                                       (10, (5, 200)), (8, (120, 9))])
def test_sad_kernel_matches_twin_random(bpc, shape):
    rng = np.random.default_rng(sum(shape) * bpc)
    peak = (1 << bpc) - 1
    dt = np.uint8 if bpc == 8 else np.uint16
    yrow = np.zeros(shape[1] + 4, np.int64)
    y32 = np.zeros(shape[1] + 4, np.int32)
    dr = np.zeros((8, shape[1]), np.int16)
    nb = 4 if shape[0] >= 4 else 1
    a = rng.integers(0, peak + 1, shape).astype(dt)
    b = rng.integers(0, peak + 1, shape).astype(dt)
    # extremes: full-range steps, where intermediate sums are largest
    z = np.zeros(shape, dt)
    f = np.full(shape, peak, dt)
    chk = (np.indices(shape).sum(0) % 2 * peak).astype(dt)
    for p, c in [(a, b), (b, a), (z, f), (f, z), (chk, z), (a, a)]:
        assert M.motion_sad(p, c, bpc, yrow, y32, dr, nb) == sad_twin(p, c, bpc)


def test_sad_kernel_non_contiguous_and_structured():
    rng = np.random.default_rng(5)
    seq = smooth_seq(rng, 2, 100, 160, 1023)
    p, c = seq[0][3:97:2, 5:150], seq[1][3:97:2, 5:150]
    ext = Motion()
    ext.setup(FrameFormat(145, 47, "400", 10))
    a = ext.sad_score(p, c)
    b = ext.sad_score(np.ascontiguousarray(p), np.ascontiguousarray(c))
    assert a == b == sad_twin(p, c, 10) / 256.0 / (145 * 47)
    assert ext.sad_score(p, p) == 0.0


# ================================================================ streaming vs twin

@pytest.mark.parametrize("opts", [
    {}, V1, HFR,
    {"motion_five_frame_window": True},
    {"motion_moving_average": True},
    {"motion_blend_factor": 0.3, "motion_blend_offset": 2.0, "motion_fps_weight": 1.7},
    {"motion_max_val": 1.0, "motion_moving_average": True},
    {"motion_force_zero": True},
])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 9])
def test_stream_matches_twin(opts, n):
    rng = np.random.default_rng(n)
    frames = smooth_seq(rng, n, 31, 45, 255) if n else []
    ext = Motion(**opts)
    ext.setup(FrameFormat(45, 31, "400", 8))
    for rep in range(2):  # reusable after flush
        idx = [7 + 3 * k for k in range(n)]  # arbitrary increasing indices
        out = run_stream(ext, frames, idx)
        assert [i for i, _ in out] == idx  # every frame once, in order
        want = motion_twin(frames, 8, **opts)
        for (_, got), w in zip(out, want):
            assert set(got) == set(OUTPUTS)
            for k in OUTPUTS:
                assert got[k] == w[k], (k, got, w)


def test_stream_emits_as_soon_as_known():
    rng = np.random.default_rng(2)
    frames = smooth_seq(rng, 5, 20, 20, 255)
    for opts, first in (({}, 1), ({"motion_five_frame_window": True}, 2)):
        ext = Motion(**opts)
        ext.setup(FrameFormat(20, 20, "400", 8))
        lens = [len(ext.extract(i, (y,), (y,))) for i, y in enumerate(frames)]
        assert lens == [0] * first + [first] + [1] * (4 - first)
        assert [i for i, _ in ext.flush()] == [4]


def test_distorted_is_ignored_and_10bit():
    rng = np.random.default_rng(3)
    frames = smooth_seq(rng, 6, 41, 67, 1023)
    noise = [np.clip(f.astype(int) + rng.integers(-50, 50, f.shape), 0, 1023).astype(np.uint16)
             for f in frames]
    a, b = Motion(**HFR), Motion(**HFR)
    a.setup(FrameFormat(67, 41, "400", 10))
    b.setup(FrameFormat(67, 41, "400", 10))
    ra, rb = run_stream(a, frames), run_stream(b, frames, dis=noise)
    assert ra == rb
    want = motion_twin(frames, 10, **HFR)
    assert [v for _, v in ra] == want


# ================================================================ contract

def test_registry_options_and_errors():
    assert get_extractor("motion") is Motion and Motion.temporal
    for f in OUTPUTS:
        assert extractor_for_feature(f) is Motion
    e = Motion(mmxv=18, mffw="true", mma=True, force_0="false", mbf=0.5, mbo=3, mfw=2)
    assert e.options == {"motion_max_val": 18.0, "motion_five_frame_window": True,
                         "motion_moving_average": True, "motion_force_zero": False,
                         "motion_blend_factor": 0.5, "motion_blend_offset": 3.0,
                         "motion_fps_weight": 2.0, "debug": False}
    for bad in ({"motion_blend_factor": 1.5}, {"motion_blend_offset": -1},
                {"motion_fps_weight": 5.1}, {"motion_max_val": 10001},
                {"motion_five_frame_window": "maybe"}, {"motion_max_val": "x"},
                {"bogus": 1}):
        with pytest.raises(ValueError):
            Motion(**bad)
    with pytest.raises(ValueError):
        Motion().setup(FrameFormat(2, 100))
    assert Motion().flush() == []


# ================================================================ libvmaf oracle

_KEY = re.compile(r"^(?:VMAF_integer_feature_(motion)_sad_score|integer_(motion2|motion3))(_.*)?$")


def oracle_values(ref, dis, tmp, model="version=vmaf_v0.6.1", opts=None):
    """Per-frame libvmaf outputs.  Without ``opts`` the model's own motion
    instance (whatever its option suffix); with ``opts`` an added motion
    instance with those options (run beside vmaf_v0.6.1, whose motion has no
    suffix, so ours is the suffixed one)."""
    feats = []
    if opts:
        feats = [o.feature_spec("motion", opts)]
    frames = o.libvmaf_frames(o.libvmaf(ref, dis, tmp, model=model, features=feats))
    out = []
    for fr in frames:
        d = {}
        for k, v in fr.items():
            mt = _KEY.match(k)
            if mt and (not opts or mt.group(3)):
                d[mt.group(1) or mt.group(2)] = v
        assert set(d) == set(OUTPUTS), sorted(fr)
        out.append(d)
    return out


def our_values(ref, dis, **opts):
    rf, df, fmt = o.read_pair(ref, dis)
    ext = Motion(**opts)
    ext.setup(fmt)
    out = run_stream(ext, [r[0] for r in rf], dis=[d[0] for d in df])
    assert [i for i, _ in out] == list(range(len(rf)))
    return [v for _, v in out]


def assert_close(ours, theirs, label):
    assert len(ours) == len(theirs) and theirs
    worst = {k: max(abs(a[k] - b[k]) for a, b in zip(ours, theirs)) for k in OUTPUTS}
    print(f"\n{label}: max |diff| " + " ".join(f"{k}={v:.1e}" for k, v in worst.items()))
    for k, v in worst.items():
        assert v < TOL, (label, k, v)
        assert v < PRINTED, (label, k, v)
    # libvmaf logs "%.6f": the same doubles print the same
    for a, b in zip(ours, theirs):
        for k in OUTPUTS:
            assert float(f"{a[k]:.6f}") == b[k], (label, k, a[k], b[k])


def _pair(d, tag, size, pix, frames=12, half=False):
    src = o.make_clip(d / f"src{tag}.y4m", "natural", size, duration=frames * 0.04, pix_fmt=pix)
    enc = d / f"enc{tag}.mp4"
    args = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "32", "-pix_fmt", pix]
    if half:
        w, h = (int(v) for v in size.split("x"))
        o.encode(src, enc, ["-vf", f"scale={w // 2}:{h // 2}:flags=bicubic", *args])
        dis = o.decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix, size=size)
    else:
        o.encode(src, enc, args)
        dis = o.decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix)
    return src, dis


def _head(d, y4m, n):
    dst = d / f"{y4m.stem}_{n}.y4m"
    o.run_ffmpeg(["-i", str(y4m), "-frames:v", str(n), "-strict", "-1", str(dst)])
    return dst


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    d = tmp_path_factory.mktemp("motion")
    return {
        "8": (*_pair(d, "8", "320x240", "yuv420p"), d),
        "10": (*_pair(d, "10", "320x240", "yuv420p10le", half=True), d),
        "12odd": (*_pair(d, "12odd", "181x97", "yuv444p12le", frames=10), d),
    }


@pytest.mark.parametrize("case", ["8", "10", "12odd"])
@pytest.mark.parametrize("model,opts", [
    ("version=vmaf_v0.6.1", {}),
    ("version=vmaf_v1.0.16_3d0h", V1),
    ("version=vmaf_v1.0.16_hfr_3d0h", HFR),
])
def test_oracle_models(pairs, case, model, opts):
    """Each model's own motion instance; motion2 (v0.6.1) and motion3 (v1)."""
    if case == "12odd" and model.endswith("_3d0h") and "hfr" not in model:
        pytest.skip("covered by the 8 and 10-bit cases")
    src, dis, d = pairs[case]
    if case == "12odd" and opts:
        # libvmaf's cambi (part of the v1 models) fails on this 4:4:4 12-bit
        # clip, so the model's motion options are given as a feature instead
        theirs = oracle_values(src, dis, d, opts=opts)
    else:
        theirs = oracle_values(src, dis, d, model)
    assert_close(our_values(src, dis, **opts), theirs, f"{case} {model}")


@pytest.mark.parametrize("case,opts", [
    ("8", {"motion_max_val": 1.9, "motion_moving_average": True}),
    ("10", {"motion_blend_factor": 0.4, "motion_blend_offset": 1.5, "motion_fps_weight": 1.3}),
    ("8", {"motion_five_frame_window": True}),
    ("12odd", {"motion_fps_weight": 0.5, "motion_max_val": 4.0, "motion_five_frame_window": True,
               "motion_moving_average": True, "motion_blend_factor": 0.8,
               "motion_blend_offset": 2.2}),
    ("10", {"motion_force_zero": True}),
])
def test_oracle_options(pairs, case, opts):
    src, dis, d = pairs[case]
    assert_close(our_values(src, dis, **opts), oracle_values(src, dis, d, opts=opts),
                 f"{case} {opts}")


@pytest.mark.parametrize("case", ["10", "12odd"])
@pytest.mark.parametrize("opts", [{}, HFR])
def test_oracle_full_depth_reference(pairs, case, opts):
    """The generated sources are 8-bit content at 10 / 12 bits; the decoded
    x264 output uses the low bits too, so it serves as the reference here."""
    src, dis, d = pairs[case]
    assert_close(our_values(dis, src, **opts), oracle_values(dis, src, d, opts=opts or None),
                 f"{case} swapped {opts}")


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_oracle_short_streams(pairs, n):
    """First and last frames of very short streams (libvmaf's flush rules)."""
    src, dis, d = pairs["8"]
    s, t = _head(d, src, n), _head(d, dis, n)
    assert_close(our_values(s, t), oracle_values(s, t, d), f"{n} frames")
    assert_close(our_values(s, t, **HFR), oracle_values(s, t, d, opts=HFR), f"{n} frames hfr")


# ================================================================ speed

def test_timing_1080p():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1090, 1930)).astype(np.uint8)
    frames = [base[t:t + 1080, 2 * t:2 * t + 1920] for t in range(4)]
    for bpc in (8, 10):
        fr = frames if bpc == 8 else [(f.astype(np.uint16) << 2) for f in frames]
        ext = Motion()
        ext.setup(FrameFormat(1920, 1080, "420", bpc))
        run_stream(ext, fr[:2])  # warm-up
        n = 12
        t = time.perf_counter()
        out = run_stream(ext, [fr[k % 4] for k in range(n)])
        ms = (time.perf_counter() - t) / n * 1000
        print(f"\nmotion 1920x1080 {bpc}-bit: {ms:.2f} ms/frame")
        assert out[1][1]["motion"] == sad_twin(fr[0], fr[1], bpc) / 256.0 / (1920 * 1080)
