"""End-to-end runs of the vqa command on media generated with ffmpeg."""
import json
import subprocess
import sys

import pytest

from oracle import encode, ffmpeg_psnr, make_clip, run_ffmpeg, run_vqa


vqa = run_vqa


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    t = tmp_path_factory.mktemp("pair")
    ref = make_clip(t / "ref.y4m", size="320x240", duration=0.6)
    dis = encode(ref, t / "dis.mp4", ["-c:v", "libx264", "-crf", "35"])
    return t, ref, dis


def test_compare_psnr_equals_ffmpeg(pair):
    t, ref, dis = pair
    log, rep = t / "log.jsonl", t / "rep.json"
    r = vqa("compare", "--metrics", "psnr,ssim", "--log", log, "--report", rep, ref, dis)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    run_ffmpeg(["-i", str(dis), "-strict", "-1", str(t / "dis.y4m")])
    oracle = ffmpeg_psnr(ref, t / "dis.y4m", t)
    assert len(recs) == len(oracle) == 15
    for a, b in zip(recs, oracle):
        for k in ("psnr_y", "psnr_u", "psnr_v", "psnr_avg"):
            assert abs(a[k] - b[k]) < 0.01
        assert 0 < a["ssim_y"] <= 1
    report = json.loads(rep.read_text())
    assert report["frames"] == 15 and report["complete"]
    assert set(report["summary"]["psnr_y"]) >= {"mean", "harmonic_mean", "min", "max", "p1", "p5", "p50"}
    assert recs[1]["pts"] == pytest.approx(0.04)


def test_missing_file(pair, tmp_path):
    t, ref, _ = pair
    r = vqa("compare", ref, tmp_path / "nope.mp4")
    assert r.returncode == 1
    assert "not found" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_not_video(pair, tmp_path):
    t, ref, _ = pair
    bad = tmp_path / "bad.mp4"
    bad.write_text("hello")
    r = vqa("compare", ref, bad)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "not a media file" in r.stderr


def test_no_video_stream(pair, tmp_path):
    t, ref, _ = pair
    wav = tmp_path / "a.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=0.5", str(wav)])
    r = vqa("compare", ref, wav)
    assert r.returncode == 1 and "no video stream" in r.stderr and "Traceback" not in r.stderr


def test_frame_count_warning(pair, tmp_path):
    t, ref, dis = pair
    short = encode(ref, tmp_path / "short.mp4", ["-frames:v", "10", "-c:v", "libx264", "-crf", "30"])
    r = vqa("compare", "--metrics", "psnr", ref, short)
    assert r.returncode == 0, r.stderr
    assert "5 frames at the end of the reference" in r.stderr


def test_inline_byte_identical_and_equal_to_compare(pair, tmp_path):
    t, ref, _ = pair
    args = ["-hide_banner", "-loglevel", "error", "-y", "-i", str(ref), "-c:v", "libx264",
            "-preset", "fast", "-crf", "30", "-threads", "1"]
    plain = tmp_path / "plain.mp4"
    run_ffmpeg([*args[4:], str(plain)])
    out = tmp_path / "out.mp4"
    log = tmp_path / "inline.jsonl"
    r = vqa("--metrics", "psnr,ssim", "--log", log, "ffmpeg", *args, out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == plain.read_bytes()
    inline = [json.loads(x) for x in log.read_text().splitlines()]
    log2 = tmp_path / "cmp.jsonl"
    r = vqa("compare", "--metrics", "psnr,ssim", "--log", log2, ref, out)
    assert r.returncode == 0, r.stderr
    cmp_ = [json.loads(x) for x in log2.read_text().splitlines()]
    assert len(inline) == len(cmp_) == 15
    for a, b in zip(inline, cmp_):
        assert a["psnr_y"] == pytest.approx(b["psnr_y"], abs=1e-6)
        assert a["ssim_y"] == pytest.approx(b["ssim_y"], abs=1e-6)


def test_inline_ffmpeg_option_error_keeps_status(pair, tmp_path):
    t, ref, _ = pair
    r = vqa("ffmpeg", "-hide_banner", "-y", "-i", ref, "-c:v", "libx264", "-bogus_option", "1",
            tmp_path / "o.mp4")
    assert r.returncode != 0
    assert "bogus_option" in r.stderr and "Traceback" not in r.stderr


def test_inline_refuses_old_ffmpeg(pair, tmp_path):
    t, ref, _ = pair
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'ffmpeg version 6.1.1 Copyright (c) 2000-2023'\nexit 0\n")
    fake.chmod(0o755)
    r = vqa("--ffmpeg", fake, "ffmpeg", "-i", ref, tmp_path / "o.mp4")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "too old" in r.stderr and "7.0" in r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_ctrl_c_keeps_scores_and_leaves_no_ffmpeg(tmp_path):
    import signal
    import time
    src = make_clip(tmp_path / "long.y4m", size="640x360", duration=8.0)
    log, rep = tmp_path / "log.jsonl", tmp_path / "rep.json"
    p = subprocess.Popen([sys.executable, "-m", "vqa_filter.cli", "--log", str(log), "--report", str(rep),
                          "--metrics", "psnr,ssim,ms_ssim", "ffmpeg", "-y", "-re", "-i", str(src),
                          "-c:v", "libx264", "-preset", "ultrafast", str(tmp_path / "o.mp4")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    n = len(log.read_text().splitlines())
    assert n >= 3
    report = json.loads(rep.read_text())
    assert report["complete"] is False and report["frames"] == n
    ps = subprocess.run(["pgrep", "-f", str(tmp_path / "o.mp4")], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


@pytest.mark.parametrize("signame,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_between_records_loses_no_score(tmp_path, signame, code):
    """Ctrl-C landing anywhere in the main thread (here: in the caller's code
    between two records) ends the run cleanly: Interrupted, and the log and the
    report hold the same frames, every record handed out among them.  Before
    the signal handler only recorded the signal, its exception could land
    between taking a record off the queue and logging it (one frame lost; CI saw
    a report of 12 frames beside a log of 11) or, as here, in the caller."""
    import os
    import signal
    from vqa_filter import Interrupted, compare
    src = make_clip(tmp_path / "a.y4m", size="320x240", duration=8.0)
    dis = encode(src, tmp_path / "b.mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "35"])
    log, rep = tmp_path / "log.jsonl", tmp_path / "rep.json"
    seen = []

    def callback(rec):
        seen.append(rec["frame"])
        if len(seen) == 3:
            os.kill(os.getpid(), getattr(signal, signame))

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    s = compare(str(src), str(dis), metrics=["psnr"], log=str(log), report=str(rep))
    with pytest.raises(Interrupted) as e:
        s.run(callback)
    assert e.value.exit_code == code and signame.replace("SIGINT", "Ctrl-C") in str(e.value)
    logged = [json.loads(x)["frame"] for x in log.read_text().splitlines()]
    report = json.loads(rep.read_text())
    assert len(seen) == 3 and logged[:3] == seen
    assert report["complete"] is False and report["frames"] == len(logged) < 200
    assert logged == list(range(len(logged)))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert s.proc.poll() is not None


def test_no_warning_about_vqas_own_10_bit_pipe(tmp_path):
    """Above 8 bits the y4m stream vqa reads is the "non standard" kind
    (-strict -1) and ffmpeg warns about it ("Mjpegtools will not work"): that
    is about vqa's pipe, not the user's command, so it is not relayed, in
    compare or inline."""
    src = make_clip(tmp_path / "a.y4m", size="320x240", duration=0.4, pix_fmt="yuv420p10le")
    r = vqa("compare", "-q", "--metrics", "psnr", src, src)
    assert r.returncode == 0, r.stderr
    assert "Mjpegtools" not in r.stderr and "non standard" not in r.stderr, r.stderr
    r = vqa("-q", "--metrics", "psnr", "ffmpeg", "-v", "warning", "-y", "-i", src,
            "-c:v", "libx264", "-pix_fmt", "yuv420p10le", tmp_path / "o.mp4")
    assert r.returncode == 0, r.stderr
    assert "Mjpegtools" not in r.stderr and "non standard" not in r.stderr, r.stderr


def test_compare_a_file_with_itself(pair):
    """The same file on both sides (a sanity check users do): capped PSNR, SSIM 1."""
    t, ref, _ = pair
    log = t / "self.jsonl"
    r = vqa("compare", "--metrics", "psnr,ssim", "--log", log, ref, ref)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(recs) == 15
    assert all(x["psnr_y"] == 60.0 and x["ssim"] == 1.0 for x in recs)


def test_threads_option_reaches_the_scoring_thread(pair):
    """--threads N: N frames are computed at once, each on one thread
    (capped at Numba's thread count); the report says so."""
    t, ref, dis = pair
    for n in (1, 2):
        rep = t / f"threads{n}.json"
        r = vqa("compare", "--metrics", "psnr", "--threads", n, "--report", rep, ref, dis)
        assert r.returncode == 0, r.stderr
        import numba
        got = json.loads(rep.read_text())
        assert got["threads"] == got["lanes"] == min(n, numba.config.NUMBA_NUM_THREADS)


def _nice_recorder(tmp_path):
    """An ffmpeg wrapper that appends its niceness to a file (for the runs
    that score: those with a filtergraph) and runs the real ffmpeg."""
    from oracle import ffmpeg_exe
    seen = tmp_path / "nice.txt"
    w = tmp_path / "ffmpeg-nice.sh"
    w.write_text("#!/bin/sh\n"
                 'case "$*" in *-filter_complex*) '
                 f"cut -d' ' -f19 /proc/$$/stat >> '{seen}';; esac\n"
                 f"exec '{ffmpeg_exe()}' \"$@\"\n")
    w.chmod(0o755)
    return w, seen


def test_ffmpeg_nice(pair, tmp_path):
    """compare runs ffmpeg at a lower CPU priority than the scoring
    (niceness + 10 when the pairs travel as luma alone, + 7 with chroma);
    --ffmpeg-nice N sets it (0: as vqa's); the inline form leaves the user's
    encode alone; the report says what was used; bad values and --live with
    a positive value are usage errors."""
    import os
    t, ref, dis = pair
    w, seen = _nice_recorder(tmp_path)
    base = os.nice(0)
    for extra, want in ((["--metrics", "psnr"], 7), (["--model", "vmaf_v0.6.1"], 10),
                        (["--metrics", "psnr", "--ffmpeg-nice", "0"], 0),
                        (["--metrics", "psnr", "--ffmpeg-nice", "3"], 3),
                        (["--model", "vmaf_v0.6.1", "--ffmpeg-nice", "10"], 10)):
        rep = tmp_path / "rep.json"
        r = vqa("compare", "--ffmpeg", w, "--report", rep, *extra, ref, dis)
        assert r.returncode == 0, r.stderr
        assert int(seen.read_text().split()[-1]) == min(base + want, 19)
        assert json.loads(rep.read_text())["ffmpeg"]["nice"] == want
    out = tmp_path / "out.mp4"
    r = vqa("--ffmpeg", w, "--metrics", "psnr", "ffmpeg", "-i", ref, "-c:v", "libx264",
            "-preset", "ultrafast", out)
    assert r.returncode == 0, r.stderr
    assert int(seen.read_text().split()[-1]) == base
    for bad in ("20", "-1"):
        r = vqa("compare", "--ffmpeg-nice", bad, ref, dis)
        assert r.returncode == 2 and "--ffmpeg-nice must be 0 to 19" in r.stderr
    r = vqa("--live", "--ffmpeg-nice", "5", "ffmpeg", "-i", ref, "-f", "null", "-")
    assert r.returncode == 2 and "cannot be used with --live" in r.stderr


@pytest.mark.parametrize("ext", ["y4m", "mp4"])
def test_frame_count_mismatch_is_reported(pair, tmp_path, ext):
    """Files of different lengths: the overlap is scored and a warning says
    what was left out (y4m counted from the file size, others by demuxing)."""
    t, ref, _ = pair
    short = tmp_path / f"short.{ext}"
    codec = ["-c:v", "libx264", "-crf", "30"] if ext == "mp4" else ["-strict", "-1"]
    run_ffmpeg(["-i", str(ref), "-frames:v", "10", *codec, str(short)])
    rep = tmp_path / "rep.json"
    r = vqa("compare", "--metrics", "psnr", "--report", rep, ref, short)
    assert r.returncode == 0, r.stderr
    assert "frame counts differ (reference 15, distorted 10)" in r.stderr
    assert "5 frames at the end of the reference" in r.stderr
    assert json.loads(rep.read_text())["frames"] == 10


def _failing_push(monkeypatch, after=3):
    """Make scoring fail (a multi-line message, as Numba's errors are) after
    ``after`` frames (``Scorer.work`` computes a frame, on any lane)."""
    import threading
    from vqa_filter import session as S
    orig = S.Scorer.work
    seen = []
    lock = threading.Lock()

    def work(self, *a, **k):
        if threading.current_thread().name.startswith("vqa-warm"):
            return orig(self, *a, **k)
        with lock:
            seen.append(1)
            fail = len(seen) > after
        if fail:
            raise RuntimeError("boom\nsecond line of a long message")
        return orig(self, *a, **k)
    monkeypatch.setattr(S.Scorer, "work", work)


def test_scoring_failure_in_compare_is_the_reported_cause(pair, monkeypatch):
    """When scoring fails, ffmpeg then dies of the broken pipe: the error
    names the scoring failure (one line), not the pipe; earlier frames kept."""
    import vqa_filter
    t, ref, dis = pair
    _failing_push(monkeypatch)
    with pytest.raises(vqa_filter.ScoringFailed) as ei:
        vqa_filter.compare(str(ref), str(dis), metrics=("psnr",)).run()
    msg = str(ei.value)
    assert msg.startswith("scoring failed: RuntimeError: boom") and "\n" not in msg, msg
    assert "pipe" not in msg.lower()
    assert ei.value.result.report["frames"] == 3


def test_scoring_failure_does_not_break_the_encode(pair, tmp_path, monkeypatch):
    """Inline, a scoring failure must not kill the encode: vqa keeps reading
    (and dropping) frames, ffmpeg writes its whole output, the error says what
    failed."""
    import vqa_filter
    t, ref, _ = pair
    out = tmp_path / "out.mp4"
    _failing_push(monkeypatch)
    with pytest.raises(vqa_filter.ScoringFailed) as ei:
        vqa_filter.transcode(["-i", str(ref), "-c:v", "libx264", "-crf", "30", str(out)],
                             metrics=("psnr",)).run()
    assert str(ei.value).startswith("scoring failed: RuntimeError: boom")
    r = subprocess.run([sys.executable, "-c", "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())"],
                       capture_output=True, text=True)
    probe = subprocess.run([r.stdout.strip(), "-i", str(out), "-map", "0:v", "-c", "copy", "-f", "null", "-"],
                           capture_output=True, text=True)
    assert "frame=   15" in probe.stderr.replace("frame=15", "frame=   15"), probe.stderr[-500:]


def test_cold_cache_runs_succeed(pair, tmp_path):
    """First runs on an empty Numba cache (the preload of Numba's registries
    raced the warm-up's compilation once: 'No implementation of np.full')."""
    t, ref, dis = pair
    import os
    for k in range(3):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / f"cache{k}"))
        r = subprocess.run([sys.executable, "-m", "vqa_filter.cli", "compare", "--metrics", "psnr",
                            "--log", str(tmp_path / f"l{k}.jsonl"), str(ref), str(dis)],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "compiling" in r.stderr
        assert len((tmp_path / f"l{k}.jsonl").read_text().splitlines()) == 15


RUN_EXIT = """
import atexit, sys, threading, time
from vqa_filter import cli
out = sys.argv[1]
def late():
    time.sleep(0.3)
    open(out + ".thread", "w").write("done")
def main():
    threading.Thread(target=late).start()  # not a daemon: waited for
    atexit.register(lambda: open(out + ".atexit", "w").write("done"))
    sys.stdout.write("buffered, no newline")
    return 3
cli.main = main
cli.run()
"""


def test_run_ends_the_process_as_python_would(tmp_path):
    """The command ends the process itself (no interpreter teardown): other
    threads still run to their end, atexit handlers run, output is flushed,
    the exit status is main()'s."""
    out = tmp_path / "mark"
    r = subprocess.run([sys.executable, "-c", RUN_EXIT, str(out)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "buffered, no newline"
    assert (tmp_path / "mark.thread").read_text() == "done"
    assert (tmp_path / "mark.atexit").read_text() == "done"


def test_compare_ring_gets_file_slots(pair, monkeypatch):
    """A compare's ring has file_slots(lanes, pair bytes) slots: 8 for small
    pairs on two lanes; two a lane and two more when FILE_RING_BUDGET holds
    no more (4K 10-bit)."""
    from vqa_filter import session as S
    seen = []
    real = S.PairStream

    def spy(fd, size, nslots, *a, **k):
        seen.append(nslots)
        return real(fd, size, nslots, *a, **k)

    monkeypatch.setattr(S, "PairStream", spy)
    _, ref, dis = pair
    from vqa_core.features._jit import num_threads
    lanes = S._lanes_for_memory(min(2, num_threads()), 320 * 240)  # 2 on CI's 2 cores
    for budget, want in ((S.FILE_RING_BUDGET, 8), (1, 2 * lanes + 2)):
        monkeypatch.setattr(S, "FILE_RING_BUDGET", budget)
        s = S.Session(S.Options(metrics=["psnr"], quiet=True, threads=2), "compare",
                      reference=str(ref), distorted=str(dis))
        assert s.run().exit_code == 0
        assert seen[-1] == want


def test_compare_ffmpeg_gets_malloc_tunables(pair, tmp_path, monkeypatch):
    """A compare's own ffmpeg runs with glibc's mmap threshold at 16 MiB (its
    packets up to 1080p 16-bit 4:4:4 then come from the heap instead of fresh
    zero-filled mappings; 4K 10-bit ones are mapped, so that its arenas do
    not keep every packet its queues once held);
    keys the user set win; the inline form's ffmpeg (the user's) keeps vqa's
    environment."""
    from vqa_filter import session as S
    from vqa_filter.process import FfmpegProcess
    env = S.compare_env({"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert env["GLIBC_TUNABLES"] == ":".join(S.COMPARE_MALLOC_TUNABLES)
    mine = "glibc.malloc.mmap_threshold=4096:glibc.foo=1"
    env = S.compare_env({"GLIBC_TUNABLES": mine})
    assert env["GLIBC_TUNABLES"] == mine + ":glibc.malloc.trim_threshold=67108864"
    seen = []
    real = FfmpegProcess.__init__

    def spy(self, *a, **k):
        seen.append(k.get("env"))
        return real(self, *a, **k)

    monkeypatch.setattr(FfmpegProcess, "__init__", spy)
    _, ref, dis = pair
    s = S.Session(S.Options(metrics=["psnr"], quiet=True), "compare", reference=str(ref),
                  distorted=str(dis))
    s.run()
    assert seen and "glibc.malloc.mmap_threshold=16777216" in seen[-1]["GLIBC_TUNABLES"]
    s = S.Session(S.Options(metrics=["psnr"], quiet=True), "transcode",
                  argv=["-i", str(ref), "-c:v", "libx264", "-y", str(tmp_path / "o.mp4")])
    s.run()
    assert seen[-1] is None  # the user's encode: vqa's own environment


def test_command_starts_no_openblas_threads():
    """vqa makes no BLAS call: the command asks NumPy's OpenBLAS for no
    worker threads (they would spin ~0.1 s at import), unless the user set
    their own number."""
    code = ("import os, sys; from vqa_filter import cli; sys.argv = ['vqa', 'models'];\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print('OPENBLAS', os.environ.get('OPENBLAS_NUM_THREADS'))")
    import os
    for user, want in ((None, "1"), ("3", "3")):
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        if user:
            env["OPENBLAS_NUM_THREADS"] = user
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           timeout=60)
        assert f"OPENBLAS {want}" in r.stdout, r.stdout + r.stderr
