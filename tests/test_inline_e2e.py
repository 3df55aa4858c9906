"""End-to-end cases of issue 2 beyond the basics in test_cli.py: ABR ladders,
stream copies, ffmpeg dying mid-stream, truncated inputs, 10-bit and odd-size
comparisons, and the audio layout that ffmpeg cannot run with a loopback
decoder."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from oracle import decode_y4m, encode, ffmpeg_psnr, make_clip, run_ffmpeg, run_vqa


vqa = run_vqa


def records(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    t = tmp_path_factory.mktemp("src")
    return t, make_clip(t / "src.y4m", size="320x240", duration=0.8)


def test_abr_ladder_scores_every_rendition(src, tmp_path):
    """split + scale into two encodes in two outputs, plus a stream copy: the
    two encodes are scored (at the source's size), the copy gets a note."""
    _, s = src
    log, rep = tmp_path / "l.jsonl", tmp_path / "r.json"
    hi, lo, cp = tmp_path / "hi.mp4", tmp_path / "lo.mp4", tmp_path / "copy.mkv"
    mid = tmp_path / "mid.mp4"
    encode(s, mid, ["-c:v", "libx264", "-crf", "20"])
    r = vqa("--metrics", "psnr", "--log", log, "--report", rep, "ffmpeg", "-y",
            "-i", s, "-i", mid,
            "-filter_complex", "[0:v]split=2[a][b];[b]scale=160:120[bs]",
            "-map", "[a]", "-c:v", "libx264", "-crf", "23", hi,
            "-map", "[bs]", "-c:v", "libx264", "-crf", "23", lo,
            "-map", "1:v", "-c:v", "copy", cp)
    assert r.returncode == 0, r.stderr
    assert "not scoring output #2" in r.stderr and "stream copy" in r.stderr
    recs = records(log)
    outs = {x["output"] for x in recs}
    assert outs == {str(hi), str(lo)}
    per = {o: [x for x in recs if x["output"] == o] for o in outs}
    assert len(per[str(hi)]) == len(per[str(lo)]) == 20
    # the 160x120 rendition, scaled back up, is worse than the full-size one
    mean = {o: sum(x["psnr_y"] for x in v) / len(v) for o, v in per.items()}
    assert mean[str(lo)] < mean[str(hi)] - 3
    rp = json.loads(rep.read_text())
    assert len(rp["streams"]) == 2 and rp["complete"]
    assert any("stream copy" in n for n in rp["notes"])
    # the scored renditions equal compare on the written files
    for o in (hi, lo):
        log2 = tmp_path / (o.stem + ".jsonl")
        r2 = vqa("compare", "--metrics", "psnr", "--log", log2, s, o)
        assert r2.returncode == 0, r2.stderr
        for a, b in zip(per[str(o)], records(log2)):
            assert a["psnr_y"] == pytest.approx(b["psnr_y"], abs=1e-9)


def test_audio_from_another_input_is_refused_not_hung(src, tmp_path):
    _, s = src
    aud = tmp_path / "a.m4a"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(aud)])
    out = tmp_path / "o.mp4"
    r = vqa("--metrics", "psnr", "ffmpeg", "-y", "-i", s, "-i", aud, "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-c:a", "aac", out, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "deadlocks" in r.stderr and "input #1" in r.stderr
    assert not out.exists()
    # the same with the audio copied runs
    r = vqa("--metrics", "psnr", "-q", "ffmpeg", "-y", "-i", s, "-i", aud, "-map", "0:v", "-map",
            "1:a", "-c:v", "libx264", "-c:a", "copy", out, timeout=120)
    assert r.returncode == 0, r.stderr


def _wait_lines(path, n, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def test_ffmpeg_killed_mid_stream(tmp_path):
    """ffmpeg dies (SIGKILL) while scoring: one-line error naming it, non-zero
    exit, every frame scored so far in the log and the report."""
    s = make_clip(tmp_path / "long.y4m", size="320x240", duration=8.0)
    out = tmp_path / "killed.mp4"
    log, rep = tmp_path / "l.jsonl", tmp_path / "r.json"
    p = subprocess.Popen([sys.executable, "-m", "vqa_filter.cli", "--metrics", "psnr", "--log",
                          str(log), "--report", str(rep), "ffmpeg", "-y", "-re", "-i", str(s),
                          "-c:v", "libx264", "-preset", "ultrafast", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_lines(log, 3, p)
    pids = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    ff = [int(x) for x in pids if int(x) != p.pid]
    assert ff
    for pid in ff:
        os.kill(pid, signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0
    assert "Traceback" not in err
    last = [ln for ln in err.splitlines() if ln.startswith("vqa: error")]
    assert last and "ffmpeg" in last[-1] and ("signal" in last[-1] or "killed" in last[-1]), err
    n = len(log.read_text().splitlines())
    assert n >= 3
    report = json.loads(rep.read_text())
    assert report["complete"] is False and report["frames"] == n


def test_truncated_input(tmp_path):
    """A reference y4m cut in the middle of a frame (ffmpeg drops that frame
    silently) and an mp4 cut in half (ffmpeg complains and goes on): the whole
    frames before the cut are scored and kept, then one line names the file
    and the cause, exit 1, no hang."""
    s = make_clip(tmp_path / "s.y4m", size="320x240", duration=0.4)
    data = s.read_bytes()
    frame = 320 * 240 * 3 // 2
    cut = tmp_path / "cut.y4m"
    cut.write_bytes(data[: len(data) - frame // 2])
    dis = encode(s, tmp_path / "d.mp4", ["-c:v", "libx264", "-crf", "30"])
    log, rep = tmp_path / "l.jsonl", tmp_path / "r.json"
    r = vqa("compare", "--metrics", "psnr", "--log", log, "--report", rep, cut, dis, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("vqa: error")]
    assert len(err) == 1 and f"reference {cut} is truncated" in err[0], r.stderr
    assert len(records(log)) == 9
    assert json.loads(rep.read_text())["complete"] is False

    s2 = make_clip(tmp_path / "s2.y4m", size="320x240", duration=2.0)
    fs = encode(s2, tmp_path / "fs.mp4", ["-c:v", "libx264", "-crf", "30", "-movflags", "+faststart"])
    half = tmp_path / "half.mp4"
    half.write_bytes(fs.read_bytes()[: fs.stat().st_size * 2 // 3])
    r = vqa("compare", "--metrics", "psnr", "--log", log, s2, half, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("vqa: error")]
    assert len(err) == 1 and f"distorted {half} is truncated or damaged" in err[0], r.stderr
    assert 0 < len(records(log)) < 50


@pytest.mark.parametrize("size,pix", [("320x240", "yuv420p10le"), ("321x241", "yuv420p"),
                                      ("200x150", "yuv444p12le")])
def test_compare_depths_and_odd_sizes_equal_ffmpeg(tmp_path, size, pix):
    s = make_clip(tmp_path / "s.y4m", size=size, duration=0.24, pix_fmt=pix)
    # x265 refuses odd sizes: blur + lossless FFV1 is a deterministic distortion at any size
    enc = encode(s, tmp_path / "d.mkv", ["-vf", "gblur=sigma=0.7,noise=alls=6:allf=t", "-c:v",
                                         "ffv1", "-pix_fmt", pix])
    dis = decode_y4m(enc, tmp_path / "d.y4m", pix_fmt=pix)
    log = tmp_path / "l.jsonl"
    r = vqa("compare", "--metrics", "psnr,ssim", "--log", log, s, enc)
    assert r.returncode == 0, r.stderr
    recs = records(log)
    ora = ffmpeg_psnr(s, dis, tmp_path)
    assert len(recs) == len(ora) == 6
    for a, b in zip(recs, ora):
        for k in ("psnr_y", "psnr_u", "psnr_v", "psnr_avg"):
            assert abs(a[k] - b[k]) < 0.01, (k, a[k], b[k])


def test_html_and_log_formats_from_the_cli(src, tmp_path):
    """--html writes the self-contained page (plots, worst-frame crops) and
    --log-format csv / libvmaf-json write their layouts, from a real run."""
    pytest.importorskip("matplotlib")
    _, s = src
    out, page = tmp_path / "o.mp4", tmp_path / "r.html"
    lj = tmp_path / "l.json"
    r = vqa("-q", "--metrics", "psnr", "--model", "vmaf_v0.6.1", "--html", page, "--log", lj,
            "--log-format", "libvmaf-json", "ffmpeg", "-y", "-i", s, "-c:v", "libx264", "-crf", "35",
            out)
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "<svg" in html and "data:image/png;base64," in html and "http://" not in html.split("<svg")[0]
    doc = json.loads(lj.read_text())
    assert len(doc["frames"]) == 20 and doc["frames"][0]["frameNum"] == 0
    assert {"vmaf", "psnr_y", "psnr_cb"} <= set(doc["frames"][0]["metrics"])
    assert {"min", "max", "mean", "harmonic_mean"} <= set(doc["pooled_metrics"]["vmaf"])
    lc = tmp_path / "l.csv"
    r = vqa("compare", "-q", "--metrics", "psnr", "--log", lc, "--log-format", "csv", s, out)
    assert r.returncode == 0, r.stderr
    rows = lc.read_text().splitlines()
    assert rows[0].startswith("frame,pts,psnr_y") and len(rows) == 21
