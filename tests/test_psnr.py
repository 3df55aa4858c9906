"""psnr extractor: numpy twin of the kernel, ffmpeg's psnr filter as oracle,
and libvmaf's cap for identical planes."""
import math

import numpy as np
import pytest

import oracle as o
from vqa_core.features.base import FrameFormat
from vqa_core.features.psnr import PSNR, psnr_max_for, sse_plane
from vqa_core.features.registry import extractor_for_feature, get_extractor


# ---------------------------------------------------------------- numpy twin

def sse_twin(a, b):
    d = a.astype(np.int64) - b.astype(np.int64)
    return int(np.sum(d * d))


def psnr_twin(ref, dis, bitdepth):
    """Slow, obvious PSNR per plane and ffmpeg's size-weighted average."""
    peak = (1 << bitdepth) - 1
    cap = 6 * bitdepth + 12
    names = ("psnr_y", "psnr_u", "psnr_v")
    out, num, den = {}, 0.0, 0
    for name, r, d in zip(names, ref, dis):
        mse = sse_twin(r, d) / r.size
        out[name] = cap if mse == 0 else min(cap, 10 * math.log10(peak * peak / mse))
        num += mse * r.size
        den += r.size
    mse = num / den
    out["psnr_avg"] = cap if mse == 0 else min(cap, 10 * math.log10(peak * peak / mse))
    return out


@pytest.mark.parametrize("dtype,hi", [(np.uint8, 256), (np.uint16, 1024), (np.uint16, 65536)])
def test_sse_kernel_matches_twin_random(dtype, hi):
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (7, 13), (240, 320), (121, 161)]:
        a = rng.integers(0, hi, shape, dtype=dtype)
        b = rng.integers(0, hi, shape, dtype=dtype)
        assert sse_plane(a, b) == sse_twin(a, b)


def test_sse_kernel_non_contiguous_views():
    rng = np.random.default_rng(2)
    big_a = rng.integers(0, 256, (100, 140), dtype=np.uint8)
    big_b = rng.integers(0, 256, (100, 140), dtype=np.uint8)
    a, b = big_a[3:90:2, 5:131], big_b[1:88:2, 7:133]
    assert not a.flags.c_contiguous
    assert sse_plane(a, b) == sse_twin(a, b)
    # a transposed view (column-major strides)
    assert sse_plane(big_a.T, big_b.T) == sse_twin(big_a, big_b)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """x264-encoded natural content decoded to y4m: 8-bit and 10-bit."""
    d = tmp_path_factory.mktemp("psnr")
    out = {}
    for tag, pix in (("8", "yuv420p"), ("10", "yuv420p10le")):
        src = o.make_clip(d / f"src{tag}.y4m", "natural", "320x240", duration=0.2, pix_fmt=pix)
        enc = o.encode(src, d / f"enc{tag}.mp4",
                       ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "32", "-pix_fmt", pix])
        dis = o.decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix)
        out[tag] = (src, dis, d)
    return out


def test_extractor_matches_twin_natural(pairs):
    src, dis, _ = pairs["10"]
    ref_frames, dis_frames, fmt = o.read_pair(src, dis)
    depth = fmt.bitdepth
    ext = PSNR()
    ext.setup(fmt)
    for i, (r, d) in enumerate(zip(ref_frames, dis_frames)):
        got = ext.extract(i, r, d)[0][1]
        want = psnr_twin(r, d, depth)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], abs=1e-9)


@pytest.mark.parametrize("depth", ["8", "10"])
def test_psnr_matches_ffmpeg(pairs, depth):
    src, dis, d = pairs[depth]
    ref_frames, dis_frames, fmt = o.read_pair(src, dis)
    assert fmt.bitdepth == int(depth)
    want = o.ffmpeg_psnr(src, dis, d)
    assert len(want) == len(ref_frames) >= 4
    ext = get_extractor("psnr")()
    worst = {}
    for i, got in enumerate(o.extract_all(ext, ref_frames, dis_frames, fmt)):
        for k in ("psnr_y", "psnr_u", "psnr_v", "psnr_avg"):
            assert got[k] < ext._cap  # the comparison is meaningful below the cap
            worst[k] = max(worst.get(k, 0.0), abs(got[k] - want[i][k]))
    print(f"max |psnr - ffmpeg| at {depth} bits:", worst)
    assert max(worst.values()) < 0.01


@pytest.mark.parametrize("depth", [8, 10, 12])
def test_identical_frames_give_cap(depth):
    fmt = FrameFormat(33, 17, "420", depth)
    rng = np.random.default_rng(3)
    planes = tuple(rng.integers(0, 1 << depth, s, dtype=fmt.dtype) for s in fmt.plane_shapes())
    ext = PSNR()
    ext.setup(fmt)
    vals = ext.extract(5, planes, planes)
    assert vals[0][0] == 5
    cap = psnr_max_for(depth)
    assert cap == {8: 60.0, 10: 72.0, 12: 84.0}[depth]
    assert vals[0][1] == {"psnr_y": cap, "psnr_u": cap, "psnr_v": cap, "psnr_avg": cap}


def test_cap_option_and_clamp():
    fmt = FrameFormat(16, 16, "400", 8)
    a = np.zeros((16, 16), np.uint8)
    b = a.copy()
    b[0, 0] = 1  # mse = 1/256 -> 10*log10(255^2 * 256) = 72.2 dB, above the 60 dB cap
    ext = PSNR()
    ext.setup(fmt)
    assert ext.extract(0, (a,), (b,))[0][1] == {"psnr_y": 60.0, "psnr_avg": 60.0}
    ext = PSNR(psnr_max=100.0)
    ext.setup(fmt)
    v = ext.extract(0, (a,), (b,))[0][1]
    assert v["psnr_y"] == pytest.approx(10 * math.log10(255 ** 2 * 256))


def test_luma_only_and_registry():
    assert extractor_for_feature("psnr_avg") is PSNR
    assert get_extractor("psnr") is PSNR
    fmt = FrameFormat(20, 10, "400", 10)
    rng = np.random.default_rng(4)
    a = rng.integers(0, 1024, (10, 20), dtype=np.uint16)
    b = rng.integers(0, 1024, (10, 20), dtype=np.uint16)
    ext = PSNR()
    ext.setup(fmt)
    v = ext.extract(0, (a,), (b,))[0][1]
    assert set(v) == {"psnr_y", "psnr_avg"}
    assert v["psnr_y"] == v["psnr_avg"] == pytest.approx(psnr_twin((a,), (b,), 10)["psnr_y"])


def test_avg_weights_422():
    fmt = FrameFormat(8, 4, "422", 8)
    shapes = fmt.plane_shapes()
    assert shapes == [(4, 8), (4, 4), (4, 4)]
    ref = tuple(np.zeros(s, np.uint8) for s in shapes)
    dis = (np.full(shapes[0], 2, np.uint8), np.full(shapes[1], 4, np.uint8),
           np.zeros(shapes[2], np.uint8))
    ext = PSNR()
    ext.setup(fmt)
    v = ext.extract(0, ref, dis)[0][1]
    mse_avg = (4 * 32 + 16 * 16 + 0) / 64
    assert v["psnr_avg"] == pytest.approx(10 * math.log10(255 ** 2 / mse_avg))
    assert v["psnr_v"] == 60.0
