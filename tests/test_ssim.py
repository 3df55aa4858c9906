"""ssim extractor: numpy twin of libvmaf's float_ssim algorithm, and libvmaf's
float_ssim feature (via ffmpeg's libvmaf filter) as oracle."""
import math
from pathlib import Path

import numpy as np
import pytest

import oracle as o
from vqa_core.features.base import FrameFormat
from vqa_core.features.registry import extractor_for_feature, get_extractor
from vqa_core.features.ssim import SSIM, PlaneSsim, decimate_box, scale_factor

F32 = np.float32
GAUSS = np.array([0.001028, 0.007599, 0.036001, 0.109361, 0.213006, 0.266012,
                  0.213006, 0.109361, 0.036001, 0.007599, 0.001028], dtype=F32)
C1 = F32(F32(F32(0.01) * F32(255)) ** 2)
C2 = F32(F32(F32(0.03) * F32(255)) ** 2)
C3 = F32(C2 / F32(2))


# ---------------------------------------------------------------- numpy twin
# Slow and obvious: whole-array numpy, float32 products summed in float64 tap
# by tap, as the IQA code in libvmaf does.

def to_float(plane, bitdepth):
    return plane.astype(F32) / F32(2 ** (bitdepth - 8))


def mirror(i, n):
    i = np.where(i < 0, -1 - i, i)
    return np.where(i >= n, 2 * n - 1 - i, i)


def decimate_box_twin(img, f):
    h, w = img.shape
    sw, sh = w // f + (w & 1), h // f + (h & 1)
    kv = F32(1) / F32(f * f)
    ys, xs = np.arange(sh) * f, np.arange(sw) * f
    acc = np.zeros((sh, sw))
    for v in range(-(f // 2), f - f // 2):
        for u in range(-(f // 2), f - f // 2):
            acc += (img[mirror(ys + v, h)][:, mirror(xs + u, w)] * kv).astype(np.float64)
    return acc.astype(F32)


def conv_valid_twin(img):
    h, w = img.shape
    k = len(GAUSS)
    acc = np.zeros((h, w - k + 1))
    for t in range(k):
        acc += (img[:, t:t + w - k + 1] * GAUSS[t]).astype(np.float64)
    tmp = acc.astype(F32)
    acc = np.zeros((h - k + 1, w - k + 1))
    for t in range(k):
        acc += (tmp[t:t + h - k + 1] * GAUSS[t]).astype(np.float64)
    return acc.astype(F32)


def ssim_lcs_twin(a, b):
    """(ssim, l, c, s) means of two float32 images, no downscaling."""
    mu1, mu2 = conv_valid_twin(a), conv_valid_twin(b)
    var1 = np.maximum(conv_valid_twin(a * a) - mu1 * mu1, F32(0))
    var2 = np.maximum(conv_valid_twin(b * b) - mu2 * mu2, F32(0))
    cov = conv_valid_twin(a * b) - mu1 * mu2
    sd12 = np.sqrt((var1 * var2).astype(np.float64)).astype(F32)
    l = (2.0 * mu1.astype(np.float64) * mu2 + C1) / (mu1 * mu1 + mu2 * mu2 + C1).astype(np.float64)
    c = (2.0 * sd12.astype(np.float64) + C2) / (var1 + var2 + C2).astype(np.float64)
    cov = np.where((cov < 0) & (sd12 <= 0), F32(0), cov)
    s = ((cov + C3) / (sd12 + C3)).astype(np.float64)
    n = l.size
    return tuple(F32(np.sum(x) / n) for x in (l * c * s, l, c, s))


def float_ssim_twin(ref, dis, bitdepth):
    """libvmaf float_ssim of one plane."""
    a, b = to_float(ref, bitdepth), to_float(dis, bitdepth)
    h, w = a.shape
    f = max(1, math.floor(min(w, h) / 256 + 0.5))
    if f > 1:
        a, b = decimate_box_twin(a, f), decimate_box_twin(b, f)
    return float(ssim_lcs_twin(a, b)[0])


# ---------------------------------------------------------------- twin tests

def test_scale_factor():
    assert scale_factor(320, 240) == 1
    assert scale_factor(640, 383) == 1
    assert scale_factor(640, 384) == 2          # 1.5 rounds up
    assert scale_factor(1280, 720) == 3
    assert scale_factor(1920, 1080) == 4
    assert scale_factor(3840, 2160) == 8


@pytest.mark.parametrize("f,w,h", [(2, 21, 17), (3, 30, 19), (4, 23, 40), (2, 20, 20)])
def test_decimate_matches_twin(f, w, h):
    rng = np.random.default_rng(f * w)
    plane = rng.integers(0, 1024, (h, w), dtype=np.uint16)
    sw, sh = w // f + (w & 1), h // f + (h & 1)
    out = np.empty((sh, sw), F32)
    decimate_box(plane, F32(4), f, out, np.empty(w))
    np.testing.assert_array_equal(out, decimate_box_twin(to_float(plane, 10), f))


def natural_planes(shape, seed, depth=8):
    """Smooth textured plane and a blurred+noisy distortion of it."""
    rng = np.random.default_rng(seed)
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0) + 30 * np.sin((x + 2 * y) / 31.0)
    base += rng.normal(0, 6, shape)
    dis = base + rng.normal(0, 4, shape)
    dis[:, 1:] = 0.5 * dis[:, 1:] + 0.5 * dis[:, :-1]
    dis[: h // 4, : w // 4] = 40  # a flat distorted block
    scale = 1 << (depth - 8)
    dt = np.uint8 if depth == 8 else np.uint16
    clip = lambda v: np.clip(np.rint(v * scale), 0, 255 * scale).astype(dt)
    return clip(base), clip(dis)


@pytest.mark.parametrize("shape,depth", [((60, 80), 8), ((240, 320), 10), ((385, 641), 8),
                                         ((391, 777), 12)])
def test_plane_ssim_matches_twin(shape, depth):
    ref, dis = natural_planes(shape, shape[0], depth)
    h, w = shape
    got = PlaneSsim(w, h, depth)(ref, dis)
    want = float_ssim_twin(ref, dis, depth)
    assert got == pytest.approx(want, abs=1e-6)
    rng = np.random.default_rng(7)
    hi = 1 << depth
    dt = ref.dtype
    a = rng.integers(0, hi, shape, dtype=dt)
    b = np.clip(a.astype(np.int64) + rng.integers(-hi // 16, hi // 16, shape), 0, hi - 1).astype(dt)
    assert PlaneSsim(w, h, depth)(a, b) == pytest.approx(float_ssim_twin(a, b, depth), abs=1e-6)
    # identical content: exactly 1 (also on flat windows)
    a[: h // 2, : w // 2] = 7
    assert PlaneSsim(w, h, depth)(a, a) == pytest.approx(1.0, abs=1e-6)


def test_non_contiguous_views():
    ref, dis = natural_planes((200, 300), 5)
    big_r = np.zeros((230, 650), np.uint8)
    big_d = np.zeros((230, 650), np.uint8)
    big_r[10:210, 20:620:2] = ref
    big_d[10:210, 21:621:2] = dis
    vr, vd = big_r[10:210, 20:620:2], big_d[10:210, 21:621:2]
    assert not vr.flags.c_contiguous
    assert PlaneSsim(300, 200, 8)(vr, vd) == PlaneSsim(300, 200, 8)(ref, dis)


def test_extractor_combines_planes():
    assert extractor_for_feature("ssim_u") is SSIM
    fmt = FrameFormat(96, 64, "420", 8)
    ry, dy = natural_planes((64, 96), 1)
    ru, du = natural_planes((32, 48), 2)
    rv, dv = natural_planes((32, 48), 3)
    ext = get_extractor("ssim")()
    ext.setup(fmt)
    [(idx, v)] = ext.extract(3, (ry, ru, rv), (dy, du, dv))
    assert idx == 3
    want = [float_ssim_twin(r, d, 8) for r, d in ((ry, dy), (ru, du), (rv, dv))]
    assert [v["ssim_y"], v["ssim_u"], v["ssim_v"]] == pytest.approx(want, abs=1e-6)
    assert v["ssim"] == pytest.approx((4 * v["ssim_y"] + v["ssim_u"] + v["ssim_v"]) / 6, abs=1e-12)
    # luma only
    ext = SSIM()
    ext.setup(FrameFormat(96, 64, "400", 8))
    v = ext.extract(0, (ry,), (dy,))[0][1]
    assert set(v) == {"ssim_y", "ssim"} and v["ssim"] == v["ssim_y"]
    # planes too small for the 11x11 window give NaN
    ext = SSIM()
    ext.setup(FrameFormat(16, 16, "420", 8))
    p = tuple(np.zeros(s, np.uint8) for s in FrameFormat(16, 16).plane_shapes())
    v = ext.extract(0, p, p)[0][1]
    assert v["ssim_y"] == 1.0 and math.isnan(v["ssim_u"]) and math.isnan(v["ssim"])


# ---------------------------------------------------------------- libvmaf oracle

def write_y4m(path: Path, lumas, depth: int) -> Path:
    """A 4:2:0 y4m whose luma planes are given (chroma mid-grey)."""
    h, w = lumas[0].shape
    tag = "C420jpeg" if depth == 8 else f"C420p{depth}"
    dt = np.dtype(np.uint8) if depth == 8 else np.dtype("<u2")
    grey = np.full(((h + 1) // 2, (w + 1) // 2), 1 << (depth - 1), dt).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 {tag}\n".encode())
        for y in lumas:
            f.write(b"FRAME\n" + np.ascontiguousarray(y, dt).tobytes() + grey + grey)
    return path


def encoded_pair(d: Path, tag: str, size: str, pix: str, frames: int = 3):
    """Natural content, x264 at a low rate, decoded back to y4m (odd sizes are
    encoded at the even size below and scaled back on decode)."""
    w, h = map(int, size.split("x"))
    src = o.make_clip(d / f"src_{tag}.y4m", "natural", size, duration=frames / 25, pix_fmt=pix)
    enc = o.encode(src, d / f"enc_{tag}.mp4",
                   ["-vf", f"scale={w // 2 * 2}:{h // 2 * 2}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-crf", "35", "-pix_fmt", pix])
    dis = o.decode_y4m(enc, d / f"dis_{tag}.y4m", pix_fmt=pix, size=size)
    return src, dis


CASES = [("8bit", "320x240", "yuv420p"), ("10bit", "320x240", "yuv420p10le"),
         ("odd8", "641x385", "yuv420p"), ("odd10", "361x203", "yuv420p10le")]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("ssim")
    return d, {tag: encoded_pair(d, tag, size, pix) for tag, size, pix in CASES}


@pytest.mark.parametrize("tag", [c[0] for c in CASES])
def test_ssim_y_matches_libvmaf(media, tag):
    d, pairs = media
    src, dis = pairs[tag]
    ref_frames, dis_frames, fmt = o.read_pair(src, dis)
    want = o.libvmaf_frames(o.libvmaf(src, dis, d, features=["name=float_ssim"]))
    assert len(want) == len(ref_frames) == 3
    ours = o.extract_all(SSIM(), ref_frames, dis_frames, fmt)
    diffs = [abs(a["ssim_y"] - b["float_ssim"]) for a, b in zip(ours, want)]
    print(f"{tag} {fmt.width}x{fmt.height} {fmt.bitdepth}-bit: max |ssim_y - float_ssim| = {max(diffs):.2e}")
    assert max(diffs) < 1e-4


@pytest.mark.parametrize("tag", ["8bit", "odd10"])
def test_ssim_chroma_matches_libvmaf_on_chroma_plane(media, tag):
    """ssim_u / ssim_v == libvmaf float_ssim run on the U / V plane as luma."""
    d, pairs = media
    src, dis = pairs[tag]
    ref_frames, dis_frames, fmt = o.read_pair(src, dis)
    depth = fmt.bitdepth
    ours = o.extract_all(SSIM(), ref_frames, dis_frames, fmt)
    for p, name in ((1, "ssim_u"), (2, "ssim_v")):
        rs = write_y4m(d / f"r_{tag}_{p}.y4m", [f[p] for f in ref_frames], depth)
        ds = write_y4m(d / f"d_{tag}_{p}.y4m", [f[p] for f in dis_frames], depth)
        want = o.libvmaf_frames(o.libvmaf(rs, ds, d, features=["name=float_ssim"]))
        diffs = [abs(a[name] - b["float_ssim"]) for a, b in zip(ours, want)]
        print(f"{tag}: max |{name} - float_ssim(plane)| = {max(diffs):.2e}")
        assert max(diffs) < 1e-4
