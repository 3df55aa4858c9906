"""The ffmpeg command of a compare (filter/graph.py)."""
import json
import subprocess
import sys

import pytest

from vqa_filter.ffmpeg import find_ffmpeg
from vqa_filter.graph import build_compare, drops_chroma
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


def test_a_y4m_in_another_format_is_converted_by_the_scale(clips, tmp_path):
    """(with --scale-algo's filter, not the one ffmpeg would insert)"""
    t, ref, _, dis_y4m, _ = clips
    d422 = encode(dis_y4m, tmp_path / "d422.y4m", ["-pix_fmt", "yuv422p", "-strict", "-1"])
    assert "scale=160:96" in _filters(t, ref, d422)


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


def test_stack_fills_only_a_gap_row(clips, tmp_path):
    """xstack's fill paints the whole stacked frame before the inputs land
    in it: asked for only at an odd height, where a gap row separates the
    two frames; the scores of an odd-height pair are still libvmaf's (see
    the VMAF tests' odd sizes) and its gap row is never read."""
    t, ref, _, dis_y4m, _ = clips
    assert "xstack" in _filters(t, ref, dis_y4m) and "fill" not in _filters(t, ref, dis_y4m)
    odd = make_clip(tmp_path / "odd.y4m", size="160x95", duration=0.2)
    assert "fill=black" in _filters(t, odd, odd)
    r = run_vqa("compare", "--metrics", "psnr", "--log", tmp_path / "o.jsonl", odd, odd)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert recs and all(rec["psnr_y"] == recs[0]["psnr_y"] for rec in recs)


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


def test_luma_only_table_agrees_with_the_extractors():
    from vqa_core.features import registry
    names = registry.extractor_names()
    assert registry.LUMA_ONLY <= set(names)
    for n in names:
        assert registry.get_extractor(n).reads_chroma == registry.reads_chroma(n), n


def _report(t, name, *args):
    rep = t / f"{name}.json"
    log = t / f"{name}.jsonl"
    opts = ["--report", rep, "--log", log]
    # vqa's options go before the ffmpeg command (inline), after "compare"
    args = [*args[:1], *opts, *args[1:]] if args[0] == "compare" else [*opts, *args]
    r = run_vqa(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(rep.read_text()), [json.loads(x) for x in log.read_text().splitlines()]


def test_luma_only_when_no_metric_reads_chroma(clips):
    """VMAF (and CAMBI, MS-SSIM) read no chroma: ffmpeg sends the pairs' luma
    alone; the scores are those of the full pairs, and the report says so.
    A metric that reads chroma (PSNR) or the HTML report (frame images in
    colour) keeps the full pairs."""
    t, ref, dis_mp4, _, _ = clips
    from vqa_core.engine import needs_chroma
    from vqa_core.models import load_model
    v061 = load_model("vmaf_v0.6.1")
    assert not needs_chroma(["cambi", "ms_ssim"], [v061])
    assert needs_chroma(["psnr"], [v061]) and needs_chroma(["ssim"])
    assert needs_chroma([], [load_model("vmaf_v1.0.16_3d0h")])  # speed_chroma

    b = build_compare(find_ffmpeg(), str(ref), str(dis_mp4), Options(), str(t))
    b.streams[0].luma_of = b.pair_fmt
    g = b.command(5, [(7, 9)])
    assert g[g.index("-filter_complex") + 1].count("extractplanes=y") == 2
    # pairs already gray, or of a depth y4m has no gray for, go as they are
    assert drops_chroma("yuv420p") and drops_chroma("yuv422p10le")
    assert not drops_chroma("gray") and not drops_chroma("yuv420p14le")

    luma, recs = _report(t, "luma", "compare", "--metrics", "vmaf,ms_ssim", ref, dis_mp4)
    full, recs_full = _report(t, "full", "compare", "--metrics", "vmaf,ms_ssim,psnr", ref, dis_mp4)
    assert luma["format"] == "160x96 420 8-bit (luma only)"
    assert full["format"] == "160x96 420 8-bit"
    for a, b_ in zip(recs, recs_full):
        assert (a["vmaf"], a["ms_ssim"]) == (b_["vmaf"], b_["ms_ssim"])
    html, _ = _report(t, "html", "compare", "--metrics", "vmaf", "--html", t / "r.html",
                      ref, dis_mp4)
    assert html["format"] == "160x96 420 8-bit"


def test_inline_luma_only_scores_equal_compare(clips, tmp_path):
    t, ref, _, _, _ = clips
    out = tmp_path / "o.mp4"
    inline, recs = _report(tmp_path, "inline", "--metrics", "vmaf", "ffmpeg", "-i", ref,
                           "-c:v", "libx264", "-crf", "30", out)
    assert inline["format"] == "160x96 420 8-bit (luma only)"
    comp, recs_c = _report(tmp_path, "comp", "compare", "--metrics", "vmaf", ref, out)
    assert [r["vmaf"] for r in recs] == [r["vmaf"] for r in recs_c] and len(recs) == 10


def test_inputs_are_probed_side_by_side_in_order(clips, tmp_path):
    """probe_all: results in the order asked; the first failure in that
    order is the one raised, whichever process ends first."""
    from vqa_filter.errors import ProbeError
    from vqa_filter.ffmpeg import probe_all
    t, ref, dis_mp4, _, small = clips
    ff = find_ffmpeg()
    infos = probe_all(ff, [(str(ref), (), "reference"), (str(dis_mp4), (), "distorted"),
                           (str(small), (), "third")])
    assert [i.url for i in infos] == [str(ref), str(dis_mp4), str(small)]
    assert infos[1].video[0].codec == "h264" and infos[2].video[0].width == 80
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(ProbeError, match="reference .*junk.mp4"):
        probe_all(ff, [(str(junk), (), "reference"), (str(tmp_path / "none.y4m"), (), "distorted")])
    with pytest.raises(ProbeError, match="distorted not found"):
        probe_all(ff, [(str(ref), (), "reference"), (str(tmp_path / "none.y4m"), (), "distorted")])


def test_bundled_ffmpeg_is_found_without_its_own_version_run(monkeypatch):
    """find_ffmpeg takes imageio-ffmpeg's binary without get_ffmpeg_exe()'s
    own -version run (ours identifies it)."""
    import imageio_ffmpeg
    from vqa_filter import ffmpeg as F
    monkeypatch.setenv("PATH", "")  # no ffmpeg on PATH: the bundled one
    monkeypatch.delenv("VQA_FFMPEG", raising=False)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe",
                        lambda: pytest.fail("get_ffmpeg_exe() called"))
    F._identify.cache_clear()
    ff = F.find_ffmpeg()
    assert ff.version_tuple is None or ff.version_tuple >= (7, 0)
    assert F._imageio_binary() == ff.path
    # found without importing imageio_ffmpeg (~15 ms of every start)
    code = ("import os, sys; os.environ['PATH'] = ''; os.environ.pop('VQA_FFMPEG', None)\n"
            "from vqa_filter.ffmpeg import find_ffmpeg\n"
            "print(find_ffmpeg().path, 'imageio_ffmpeg' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == [ff.path, "False"], r.stdout + r.stderr


def test_prefetched_probes_are_used_once_and_failures_left_for_later(clips, tmp_path, monkeypatch):
    """The command probes while it imports (cli._prefetch): the session's
    probe_all then takes those results, once, without running ffmpeg."""
    from vqa_filter import ffmpeg as F
    from vqa_filter.errors import ProbeError
    t, ref, dis_mp4, _, _ = clips
    ff = find_ffmpeg()
    jobs = [(str(ref), (), "reference"), (str(dis_mp4), (), "distorted")]
    F.prefetch(ff, jobs)
    calls = []
    real_run = F.subprocess.run
    monkeypatch.setattr(F.subprocess, "run", lambda *a, **k: (calls.append(a), real_run(*a, **k))[1])
    first = F.probe_all(ff, jobs)
    assert calls == [] and first[1].video[0].codec == "h264"
    again = F.probe_all(ff, jobs)  # used once: probed again
    assert len(calls) == 2 and again[0].video[0].width == first[0].video[0].width
    F.prefetch(ff, [(str(tmp_path / "none.y4m"), (), "reference")])  # no exception here
    with pytest.raises(ProbeError, match="reference not found"):
        F.probe_all(ff, [(str(tmp_path / "none.y4m"), (), "reference")])


def test_inline_command_probes_while_importing(clips, tmp_path, monkeypatch):
    """The inline command prefetches the probes its graph asks for (cli.
    _inline_probe_jobs, while NumPy imports): build_inline then runs no
    ffmpeg to probe.  Pipes and unparsable commands are not probed."""
    from vqa_filter import cli, ffmpeg as F
    from vqa_filter.argv import parse_command
    from vqa_filter.graph import build_inline
    t, ref, dis_mp4, _, _ = clips
    argv = ["-y", "-i", str(ref), "-f", "lavfi", "-i", "testsrc2=s=64x48:d=1", "-i", "pipe:0",
            "-map", "0:v", "-c:v", "libx264", str(tmp_path / "o.mp4")]
    jobs = cli._inline_probe_jobs(argv)
    assert [j[0] for j in jobs] == [str(ref), "testsrc2=s=64x48:d=1"]
    assert jobs[1][1] == ["-f", "lavfi"] and jobs[1][2] == "input #1"
    assert cli._inline_probe_jobs(["-i"]) == []  # the session reports the usage error
    monkeypatch.setattr(cli, "_heavy", object())  # as the command does
    ff = find_ffmpeg()
    cli._prefetch(None, jobs)
    calls = []
    real_run = F.subprocess.run
    monkeypatch.setattr(F.subprocess, "run", lambda *a, **k: (calls.append(a), real_run(*a, **k))[1])
    b = build_inline(ff, parse_command(argv), Options())
    assert calls == [] and b.plans


def test_big_frames_get_short_ffmpeg_queues(clips, monkeypatch):
    """At COMPARE_QUEUE_ABOVE bytes a frame (4K 10-bit: 25 MB) the pair's
    inputs and its output get -thread_queue_size COMPARE_QUEUE (ffmpeg's
    eight-deep queues held up to 1 GB at 4K 10-bit); smaller frames keep
    ffmpeg's default.  The pair's frames are the same either way."""
    import vqa_filter.graph as G
    t, ref, _, dis_y4m, _ = clips

    def queue_args():
        cmd = build_compare(find_ffmpeg(), str(ref), str(dis_y4m), Options(), str(t)).command(5, [(7, 9)])
        return [cmd[i + 1] for i, a in enumerate(cmd) if a == "-thread_queue_size"]
    from vqa_filter.session import Session

    def scores():
        recs = []
        res = Session(Options(metrics=["psnr"], quiet=True), "compare", reference=str(ref),
                      distorted=str(dis_y4m)).run(recs.append)
        assert res.exit_code == 0
        return [r["psnr_y"] for r in recs]
    assert queue_args() == []
    before = scores()
    monkeypatch.setattr(G, "COMPARE_QUEUE_ABOVE", 160 * 96 * 3 // 2)  # this clip's 4:2:0 frame
    assert queue_args() == [str(G.COMPARE_QUEUE)] * 3
    assert scores() == before and len(before) == 10
