"""--fail-below / --pool (exit status 3, one-line reason, ffmpeg's failure
wins) and the embedding API's error behaviour (VqaError subclasses, no
ffmpeg left behind), and the dailies example."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oracle import encode, make_clip, run_vqa

import vqa_filter
from vqa_filter.errors import (EXIT_QUALITY_GATE, FfmpegFailed, Interrupted, ProbeError,
                               QualityGateFailed, UsageError, VqaError)

ROOT = Path(__file__).resolve().parents[1]


vqa = run_vqa


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    t = tmp_path_factory.mktemp("gate")
    ref = make_clip(t / "ref.y4m", size="320x240", duration=0.8)
    dis = encode(ref, t / "dis.mp4", ["-c:v", "libx264", "-crf", "30"])
    rep = t / "rep.json"
    r = vqa("compare", "-q", "--metrics", "vmaf,psnr", "--report", rep, ref, dis)
    assert r.returncode == 0, r.stderr
    return t, ref, dis, json.loads(rep.read_text())["summary"]


def children_ffmpeg():
    """ffmpeg processes that are children of this test process."""
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == me and "ffmpeg" in name:
            out.append(int(d))
    return out


def test_gate_default_metric_is_vmaf(pair):
    t, ref, dis, summary = pair
    vmaf = summary["vmaf"]["mean"]
    ok = vqa("compare", "-q", "--metrics", "vmaf,psnr", "--fail-below", f"{vmaf - 0.01:.3f}", ref, dis)
    assert ok.returncode == 0, ok.stderr
    rep = t / "gate.json"
    bad = vqa("compare", "-q", "--metrics", "vmaf,psnr", "--fail-below", f"{vmaf + 0.01:.3f}",
              "--report", rep, ref, dis)
    assert bad.returncode == EXIT_QUALITY_GATE == 3
    line, = bad.stderr.strip().splitlines()
    assert line.startswith("vqa: quality gate failed: vmaf mean ") and "is below" in line
    report = json.loads(rep.read_text())
    assert report["gate"]["passed"] is False and report["gate"]["metric"] == "vmaf"
    assert report["gate"]["streams"][0]["value"] == pytest.approx(vmaf, abs=1e-6)
    assert report["complete"] is True and report["exit_code"] == 3


@pytest.mark.parametrize("pool", ["mean", "harmonic_mean", "p5", "min"])
def test_gate_named_metric_and_pool(pair, pool):
    t, ref, dis, summary = pair
    v = summary["psnr_y"][pool]
    above = vqa("compare", "-q", "--metrics", "psnr", "--fail-below", f"psnr_y={v + 0.01:.4f}",
                "--pool", pool, ref, dis)
    assert above.returncode == 3, above.stderr
    assert f"psnr_y {pool} {v:.3f} is below" in above.stderr
    below = vqa("compare", "-q", "--metrics", "psnr", "--fail-below", f"psnr_y={v - 0.01:.4f}",
                "--pool", pool, ref, dis)
    assert below.returncode == 0, below.stderr


def test_gate_default_without_vmaf_is_first_metric(pair):
    t, ref, dis, summary = pair
    r = vqa("compare", "-q", "--metrics", "ssim,psnr", "--fail-below", "0.9999", ref, dis)
    assert r.returncode == 3 and "quality gate failed: ssim mean" in r.stderr


def test_gate_usage_errors(pair):
    t, ref, dis, _ = pair
    for args, words in ((["--fail-below", "psnr_y=35"], "'psnr_y' is not scored"),
                        (["--fail-below", "x"], "not a number"),
                        (["--fail-below", "30", "--pool", "max"], "--pool must be one of")):
        r = vqa("compare", "--metrics", "ssim", *args, ref, dis)
        assert r.returncode == 2, r.stderr
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_ffmpeg_failure_wins_over_gate(pair, tmp_path):
    t, ref, _, _ = pair
    r = vqa("--metrics", "psnr", "--fail-below", "1000", "ffmpeg", "-hide_banner", "-y", "-i", ref,
            "-c:v", "libx264", "-profile:v", "no-such-profile", tmp_path / "o.mp4")
    assert r.returncode not in (0, 3), r.stderr
    assert "quality gate" not in r.stderr and "Traceback" not in r.stderr


def test_inline_gate_and_live_pass(pair, tmp_path):
    t, ref, _, _ = pair
    r = vqa("--live", "--metrics", "psnr", "--fail-below", "psnr_y=20", "--pool", "min", "-q",
            "ffmpeg", "-y", "-i", ref, "-c:v", "libx264", "-crf", "20", tmp_path / "o.mp4")
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ embedding API

def test_api_gate_raises_with_result(pair, tmp_path):
    t, ref, _, _ = pair
    s = vqa_filter.transcode(["-y", "-loglevel", "error", "-i", str(ref), "-c:v", "libx264",
                              "-crf", "40", str(tmp_path / "o.mp4")],
                             metrics=["psnr"], fail_below=99)
    recs = []
    with pytest.raises(QualityGateFailed) as ei:
        s.run(recs.append)
    e = ei.value
    assert isinstance(e, VqaError) and e.exit_code == 3
    assert e.result.gate["passed"] is False and len(recs) == 20 == e.result.report["frames"]
    assert (tmp_path / "o.mp4").stat().st_size > 0


def test_api_errors_are_vqa_errors(pair, tmp_path):
    t, ref, _, _ = pair
    with pytest.raises(ProbeError):
        vqa_filter.compare(str(ref), str(tmp_path / "missing.mp4")).run()
    with pytest.raises(UsageError):
        vqa_filter.compare(str(ref), str(ref), fail_below="nosuch=1", metrics=["psnr"])
    with pytest.raises(FfmpegFailed) as ei:
        list(vqa_filter.transcode(["-y", "-i", str(ref), "-c:v", "libx264", "-profile:v", "nope",
                                   str(tmp_path / "o.mp4")], metrics=["psnr"]))
    assert ei.value.exit_code not in (0, 1, 3) and ei.value.result.exit_code == ei.value.exit_code
    with pytest.raises(TypeError):
        vqa_filter.compare(str(ref), str(ref), no_such_option=1)
    assert children_ffmpeg() == []


def test_api_callback_error_and_break_leave_no_ffmpeg(tmp_path):
    src = make_clip(tmp_path / "src.y4m", size="320x240", duration=4.0)
    args = ["-y", "-loglevel", "error", "-re", "-i", str(src), "-c:v", "libx264",
            "-preset", "ultrafast"]

    def boom(rec):
        if rec["frame"] == 3:
            raise RuntimeError("callback failed")

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="callback failed"):
        vqa_filter.transcode(args + [str(tmp_path / "a.mp4")], metrics=["psnr"]).run(boom)
    assert children_ffmpeg() == []
    # breaking out of the iterator stops ffmpeg too (closing the generator)
    s = vqa_filter.transcode(args + [str(tmp_path / "b.mp4")], metrics=["psnr"])
    it = iter(s)
    for rec in it:
        if rec["frame"] == 3:
            break
    it.close()
    assert children_ffmpeg() == []
    assert time.monotonic() - t0 < 20  # stopped, not run to the end of the -re input twice


def test_dailies_example_runs(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "dailies_batch.py")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {ln.split("  ")[0]: ln for ln in r.stdout.splitlines() if ln.startswith("x26")}
    assert len(rows) == 5
    assert "ok" in rows["x264 crf 18"] and "BELOW GATE" in rows["x264 crf 45"]
    assert "FAILED" in rows["x264 broken"]
    assert "5 jobs, 3 passed the gate" in r.stdout
