"""The ffmpeg command of a compare (filter/graph.py)."""
import json

import pytest

from vqa_filter.ffmpeg import find_ffmpeg
from vqa_filter.graph import build_compare
from vqa_filter.session import Options

from oracle import encode, make_clip, run_vqa


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    t = tmp_path_factory.mktemp("graph")
    ref = make_clip(t / "ref.y4m", size="160x96", duration=0.4)
    dis_mp4 = encode(ref, t / "dis.mp4", ["-c:v", "libx264", "-crf", "30"])
    dis_y4m = encode(dis_mp4, t / "dis.y4m", ["-strict", "-1"])
    small = encode(ref, t / "small.y4m", ["-vf", "scale=80:48", "-strict", "-1"])
    return t, ref, dis_mp4, dis_y4m, small


def _filters(t, ref, dis):
    b = build_compare(find_ffmpeg(), str(ref), str(dis), Options(), str(t))
    cmd = b.command(5, [(7, 9)])
    return cmd[cmd.index("-filter_complex") + 1]


def test_distorted_is_scaled_unless_it_is_a_y4m_of_the_reference_size(clips):
    """An identity scale costs ffmpeg ~0.4 ms of CPU a 1080p frame: a y4m
    distorted of the reference's size (its frames cannot change size) goes
    without; one of another size, and any other file (whose frames may change
    size mid-stream), is scaled to the reference's size."""
    t, ref, dis_mp4, dis_y4m, small = clips
    assert "scale=" not in _filters(t, ref, dis_y4m)
    assert "scale=160:96" in _filters(t, ref, small)
    assert "scale=160:96" in _filters(t, ref, dis_mp4)


def test_scores_are_the_same_with_and_without_the_scale(clips):
    t, ref, dis_mp4, dis_y4m, _ = clips
    out = {}
    for name, dis in (("mp4", dis_mp4), ("y4m", dis_y4m)):
        log = t / f"{name}.jsonl"
        r = run_vqa("compare", "--metrics", "psnr,ssim", "--log", log, ref, dis)
        assert r.returncode == 0, r.stderr
        out[name] = [{k: v for k, v in json.loads(x).items() if k.startswith(("psnr", "ssim"))}
                     for x in log.read_text().splitlines()]
    assert out["mp4"] == out["y4m"] and len(out["y4m"]) == 10
