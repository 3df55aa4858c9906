"""ms_ssim extractor: numpy twin of libvmaf's float_ms_ssim algorithm, and
libvmaf's float_ms_ssim feature (via ffmpeg's libvmaf filter) as oracle."""
import math

import numpy as np
import pytest

import oracle as o
from test_ssim import encoded_pair, mirror, natural_planes, ssim_lcs_twin, to_float
from vqa_core.features.base import FrameFormat
from vqa_core.features.ms_ssim import MSSSIM, MsSsimPlan, decimate_lpf, split_pad
from vqa_core.features.registry import extractor_for_feature, get_extractor

F32 = np.float32
# libvmaf's 9x9 low-pass (9/7 biorthogonal wavelet), a symmetric table given by
# its upper-left quadrant: LPF[v][u] = Q[min(v, 8-v)][min(u, 8-u)]
Q = [[0.000714, -0.000450, -0.002090, 0.007132, 0.016114],
     [-0.000450, 0.000283, 0.001316, -0.004490, -0.010146],
     [-0.002090, 0.001316, 0.006115, -0.020867, -0.047149],
     [0.007132, -0.004490, -0.020867, 0.071207, 0.160885],
     [0.016114, -0.010146, -0.047149, 0.160885, 0.363505]]
LPF = np.array([[Q[min(v, 8 - v)][min(u, 8 - u)] for u in range(9)] for v in range(9)], F32)
ALPHAS = F32([0, 0, 0, 0, 0.1333])
BETAS = F32([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


# ---------------------------------------------------------------- numpy twin

def decimate_lpf_twin(img):
    """9x9 low-pass centred on every other pixel, mirrored borders."""
    h, w = img.shape
    sw, sh = w // 2 + (w & 1), h // 2 + (h & 1)
    ys, xs = np.arange(sh) * 2, np.arange(sw) * 2
    acc = np.zeros((sh, sw))
    for v in range(9):
        for u in range(9):
            acc += (img[mirror(ys + v - 4, h)][:, mirror(xs + u - 4, w)] * LPF[v, u]).astype(np.float64)
    return acc.astype(F32)


def ms_ssim_twin(ref, dis, bitdepth):
    a, b = to_float(ref, bitdepth), to_float(dis, bitdepth)
    score = 1.0
    for i in range(5):
        _, l, c, s = ssim_lcs_twin(a, b)
        score *= (float(l) ** float(ALPHAS[i]) * float(c) ** float(BETAS[i])) * float(s) ** float(BETAS[i])
        if i < 4:
            a, b = decimate_lpf_twin(a), decimate_lpf_twin(b)
    return score


def test_lpf_table():
    from vqa_core.features import ms_ssim
    np.testing.assert_array_equal(ms_ssim.LPF, LPF)


@pytest.mark.parametrize("w,h", [(11, 11), (20, 13), (33, 40), (177, 190)])
def test_decimate_matches_twin(w, h):
    rng = np.random.default_rng(w * h)
    img = (rng.random((h, w)) * 255).astype(F32)
    sw, sh = w // 2 + (w & 1), h // 2 + (h & 1)
    even = np.empty((h, (w + 9) // 2), F32)
    odd = np.empty((h, (w + 8) // 2), F32)
    split_pad(img, F32(1), even, odd)
    out = np.empty((sh, sw), F32)
    decimate_lpf(even, odd, LPF, out, np.empty(sw))
    np.testing.assert_array_equal(out, decimate_lpf_twin(img))


@pytest.mark.parametrize("shape,depth", [((176, 176), 8), ((240, 320), 10), ((203, 361), 8)])
def test_ms_ssim_matches_twin(shape, depth):
    h, w = shape
    ref, dis = natural_planes(shape, h + depth, depth)
    assert MsSsimPlan(w, h, depth)(ref, dis) == pytest.approx(ms_ssim_twin(ref, dis, depth), abs=1e-6)
    rng = np.random.default_rng(11)
    hi = 1 << depth
    a = rng.integers(0, hi, shape, dtype=ref.dtype)
    b = np.clip(a.astype(np.int64) + rng.integers(-hi // 8, hi // 8, shape), 0, hi - 1).astype(ref.dtype)
    assert MsSsimPlan(w, h, depth)(a, b) == pytest.approx(ms_ssim_twin(a, b, depth), abs=1e-6)
    assert MsSsimPlan(w, h, depth)(a, a) == pytest.approx(1.0, abs=1e-6)  # float rounding as libvmaf
    # non-contiguous views
    big = np.zeros((h + 3, 2 * w), ref.dtype)
    big[1:h + 1, ::2] = ref
    assert MsSsimPlan(w, h, depth)(big[1:h + 1, ::2], dis) == MsSsimPlan(w, h, depth)(ref, dis)


def test_extractor_and_small_frames():
    assert extractor_for_feature("ms_ssim") is MSSSIM
    ref, dis = natural_planes((180, 200), 3)
    ext = get_extractor("ms_ssim")()
    ext.setup(FrameFormat(200, 180, "400", 8))
    [(i, v)] = ext.extract(4, (ref,), (dis,))
    assert i == 4 and set(v) == {"ms_ssim"}
    assert v["ms_ssim"] == pytest.approx(ms_ssim_twin(ref, dis, 8), abs=1e-6)
    # below 176 pixels (coarsest scale < 11) libvmaf refuses: NaN
    ext = MSSSIM()
    ext.setup(FrameFormat(175, 200, "400", 8))
    p = np.zeros((200, 175), np.uint8)
    assert math.isnan(ext.extract(0, (p,), (p,))[0][1]["ms_ssim"])


# ---------------------------------------------------------------- libvmaf oracle

CASES = [("8bit", "320x240", "yuv420p"), ("10bit", "320x240", "yuv420p10le"),
         ("odd8", "641x385", "yuv420p")]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("ms_ssim")
    return d, {tag: encoded_pair(d, tag, size, pix) for tag, size, pix in CASES}


@pytest.mark.parametrize("tag", [c[0] for c in CASES])
def test_ms_ssim_matches_libvmaf(media, tag):
    d, pairs = media
    src, dis = pairs[tag]
    ref_frames, dis_frames, fmt = o.read_pair(src, dis)
    want = o.libvmaf_frames(o.libvmaf(src, dis, d, features=["name=float_ms_ssim"]))
    assert len(want) == len(ref_frames) == 3
    ours = o.extract_all(MSSSIM(), ref_frames, dis_frames, fmt)
    diffs = [abs(a["ms_ssim"] - b["float_ms_ssim"]) for a, b in zip(ours, want)]
    print(f"{tag} {fmt.width}x{fmt.height} {fmt.bitdepth}-bit: max |ms_ssim - float_ms_ssim| = {max(diffs):.2e}")
    assert max(diffs) < 1e-4
