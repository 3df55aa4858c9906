"""Reports that people read: the worst-frames keeper, the CSV and libvmaf-JSON
logs, the terminal progress bar, and the HTML report (opened in a real
headless browser when one is installed)."""
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from vqa_core import FrameFormat
from vqa_core.pooling import pool
from vqa_filter.emit import StderrWriter, format_progress
from vqa_filter.errors import UsageError
from vqa_filter.logformats import CsvLog, LibvmafJsonLog, libvmaf_name, open_log
from vqa_filter.worst import WorstFrames, diff_heatmap, locate_worst, planes_to_rgb, primary_metric

from oracle import decode_y4m, encode, libvmaf, make_clip, read_pair


# ---------------------------------------------------------------- frames

def synthetic(fmt: FrameFormat, i: int, noisy_box=None, amp=0, seed=0):
    """(ref, dis) planes: a moving ramp; dis adds noise of ``amp`` 8-bit
    steps inside ``noisy_box`` (x, y, w, h)."""
    sh = fmt.plane_shapes()
    s = 1 << (fmt.bitdepth - 8)
    yy, xx = np.mgrid[0:sh[0][0], 0:sh[0][1]]
    Y = ((16 + (xx + 2 * yy + 3 * i) % 200) * s).astype(fmt.dtype)
    ref = [Y] + [np.full(p, 128 * s, fmt.dtype) for p in sh[1:]]
    dis = [p.copy() for p in ref]
    if noisy_box and amp:
        x, y, w, h = noisy_box
        rng = np.random.default_rng(seed + i)
        n = rng.integers(-amp, amp + 1, (h, w)) * s
        dis[0][y:y + h, x:x + w] = np.clip(dis[0][y:y + h, x:x + w].astype(np.int64) + n,
                                           0, fmt.peak).astype(fmt.dtype)
    return tuple(ref), tuple(dis)


class Exploding:
    """Planes that fail when touched: proof that a frame was not looked at."""

    def __getitem__(self, k):
        raise AssertionError("planes were read for a frame that does not enter")

    def __len__(self):
        raise AssertionError("planes were read for a frame that does not enter")


# ---------------------------------------------------------------- worst.py

def test_worst_keeps_the_n_lowest_sorted():
    fmt = FrameFormat(64, 48)
    k = WorstFrames(n=3, key="vmaf")
    scores = [80, 50, 90, 40, 70, 95, 45, 60]
    for i, s in enumerate(scores):
        ref, dis = synthetic(fmt, i)
        k.offer(i, s, ref, dis, fmt)
    fr = k.frames()
    assert [(w.index, w.score) for w in fr] == [(3, 40), (6, 45), (1, 50)]
    assert k.threshold == 50


def test_worst_costs_nothing_for_a_frame_that_does_not_enter():
    fmt = FrameFormat(64, 48)
    k = WorstFrames(n=2, key="vmaf")
    for i, s in enumerate([10, 20]):
        k.offer(i, s, *synthetic(fmt, i), fmt)
    # better than the threshold, None and NaN: the planes are never touched
    assert not k.offer(2, 30, Exploding(), Exploding(), fmt)
    assert not k.offer(3, None, Exploding(), Exploding(), fmt)
    assert not k.offer(4, math.nan, Exploding(), Exploding(), fmt)
    t0 = time.perf_counter()
    for i in range(20000):
        k.offer(i, 99.0, Exploding(), Exploding(), fmt)
    per_frame = (time.perf_counter() - t0) / 20000
    assert per_frame < 20e-6, f"{per_frame * 1e6:.1f} us per rejected frame"
    # lower is worse can be flipped
    k2 = WorstFrames(n=1, key="err", higher_is_better=False)
    k2.offer(0, 1.0, *synthetic(fmt, 0), fmt)
    assert not k2.offer(1, 0.5, Exploding(), Exploding(), fmt)


def test_worst_copies_only_a_crop_and_survives_the_ring_being_overwritten():
    fmt = FrameFormat(1920, 1080, "420", 10)
    box = (1400, 700, 200, 150)
    ref, dis = synthetic(fmt, 0, box, amp=40)
    ring_ref = [p.copy() for p in ref]
    ring_dis = [p.copy() for p in dis]
    k = WorstFrames(n=2, key="vmaf")
    assert k.offer(0, 30.0, tuple(ring_ref), tuple(ring_dis), fmt, {"frame": 0, "pts": 0.0, "vmaf": 30.0})
    kept = k.frames()[0]
    before = kept.dis.copy()
    for p in ring_ref + ring_dis:  # the ring slot is reused for another frame
        p[...] = 0
    after = k.frames()[0]
    assert np.array_equal(after.dis, before)
    # a crop, not the frame: 384 wide at the frame's aspect ratio
    assert after.ref.shape == (216, 384, 3) and after.dis.shape == after.ref.shape == after.diff.shape
    assert after.ref.dtype == np.uint8
    assert after.thumb.shape[1] <= 192
    # the crop covers the region with the error
    x, y, w, h = after.box
    bx, by, bw, bh = box
    assert x <= bx + bw // 2 <= x + w and y <= by + bh // 2 <= y + h
    assert x % 2 == 0 and y % 2 == 0  # on the 4:2:0 chroma grid
    assert after.record["vmaf"] == 30.0 and after.pts == 0.0


def test_locate_worst_finds_the_window_with_the_largest_error():
    a = np.zeros((1080, 1920), np.uint8)
    b = a.copy()
    b[600:650, 1700:1760] = 50
    x, y = locate_worst(a, b, 384, 216)
    assert x <= 1700 and x + 384 >= 1760 and y <= 600 and y + 216 >= 650
    assert x + 384 <= 1920 and y + 216 <= 1080


@pytest.mark.parametrize("chroma,depth,size", [("420", 8, (33, 17)), ("422", 10, (64, 40)),
                                               ("444", 12, (50, 30)), ("400", 16, (40, 24)),
                                               ("420", 8, (1000, 600))])
def test_worst_formats(chroma, depth, size):
    fmt = FrameFormat(*size, chroma, depth)
    k = WorstFrames(n=1, key="psnr_y")
    ref, dis = synthetic(fmt, 0, (1, 1, 8, 8), amp=20)
    k.offer(0, 20.0, ref, dis, fmt)
    w = k.frames()[0]
    cw, ch = w.box[2], w.box[3]
    assert w.ref.shape == (ch, cw, 3) and w.dis.shape == w.ref.shape and w.diff.shape == w.ref.shape
    assert cw <= size[0] and ch <= size[1]
    assert w.thumb.ndim == 3 and w.thumb.shape[2] == 3


def test_worst_feed_with_delayed_records_matches_immediate_scores():
    """Temporal features complete a record frames later, when its planes are
    gone: feed() keeps small crops until the record arrives."""
    fmt = FrameFormat(160, 90)
    scores = [90, 91, 35, 92, 93, 30, 94, 95, 96, 97]
    immediate = WorstFrames(n=2, key="vmaf")
    delayed = WorstFrames(n=2, key="vmaf")
    pending = []
    for i, s in enumerate(scores):
        ref, dis = synthetic(fmt, i, (20, 20, 30, 30), amp=10 if s < 50 else 1, seed=i)
        immediate.offer(i, s, ref, dis, fmt)
        pending.append({"frame": i, "vmaf": s})
        out = [pending.pop(0)] if len(pending) > 2 else []  # records come 2 frames late
        delayed.feed(i, ref, dis, fmt, out)
    delayed.finish(pending)
    a, b = immediate.frames(), delayed.frames()
    assert [(w.index, w.score) for w in a] == [(w.index, w.score) for w in b] == [(5, 30), (2, 35)]
    for x, y in zip(a, b):
        assert np.array_equal(x.dis, y.dis) and x.box == y.box
    assert delayed.missed == 0
    # a record later than ``lag`` frames is missed, and counted
    late = WorstFrames(n=2, key="vmaf", lag=1)
    late.feed(0, *synthetic(fmt, 0), fmt, [])
    late.feed(1, *synthetic(fmt, 1), fmt, [])
    late.feed(2, *synthetic(fmt, 2), fmt, [{"frame": 0, "vmaf": 10.0}])
    assert len(late) == 0 and late.missed == 1


def test_primary_metric():
    assert primary_metric(["frame", "psnr_y", "vmaf"]) == "vmaf"
    assert primary_metric(["frame", "psnr_y", "ssim"]) == "ssim"
    assert primary_metric(["frame"]) is None
    k = WorstFrames(n=1)
    k.feed(0, *synthetic(FrameFormat(16, 16), 0), FrameFormat(16, 16), [{"frame": 0, "psnr_y": 30.0}])
    assert k.key == "psnr_y" and len(k) == 1


def test_planes_to_rgb_bt709_limited():
    def px(y, u, v, depth):
        dt = np.uint8 if depth == 8 else np.uint16
        return planes_to_rgb([np.full((2, 2), y, dt), np.full((1, 1), u, dt), np.full((1, 1), v, dt)],
                             depth)[0, 0].tolist()
    assert px(16, 128, 128, 8) == [0, 0, 0]
    assert px(235, 128, 128, 8) == [255, 255, 255]
    assert px(64, 512, 512, 10) == [0, 0, 0]
    assert px(940, 512, 512, 10) == [255, 255, 255]
    # BT.709 primaries, limited range (8-bit codes from the standard's matrix)
    r = px(63, 102, 240, 8)
    g = px(173, 42, 26, 8)
    b = px(32, 240, 118, 8)
    assert all(abs(a - e) <= 2 for a, e in zip(r, [255, 0, 0])), r
    assert all(abs(a - e) <= 2 for a, e in zip(g, [0, 255, 0])), g
    assert all(abs(a - e) <= 2 for a, e in zip(b, [0, 0, 255])), b
    grey = planes_to_rgb([np.full((3, 3), 126 << 4, np.uint16)], 12)
    assert grey.shape == (3, 3, 3) and (grey == 128).all()
    hm = diff_heatmap(np.zeros((2, 2), np.uint8), np.array([[0, 10], [40, 200]], np.uint8), 8)
    assert hm[0, 0].tolist() == [0, 0, 0] and hm[1, 1].tolist() == [255, 255, 255]


# ---------------------------------------------------------------- CSV

RECS = [{"frame": 0, "pts": 0.0, "psnr_y": 40.123456789, "ssim": 0.99},
        {"frame": 1, "pts": 0.04, "psnr_y": math.inf, "ssim": None},
        {"type": "window", "start": 0.0, "end": 1.0},
        {"frame": 2, "pts": 0.08, "psnr_y": 38.5, "ssim": 0.98}]


def test_csv_header_rows_and_flush_per_record(tmp_path):
    p = tmp_path / "log.csv"
    log = open_log(str(p), "csv")
    log.write(RECS[0])
    assert p.read_text().splitlines() == ["frame,pts,psnr_y,ssim", "0,0.0,40.123457,0.99"]
    for r in RECS[1:]:
        log.write(r)
    log.close()
    rows = list(csv.DictReader(p.open()))
    assert [r["frame"] for r in rows] == ["0", "1", "2"]  # the window record is skipped
    assert rows[1]["psnr_y"] == "" and rows[1]["ssim"] == ""
    assert log.skipped == 1


def test_csv_new_keys_become_columns(tmp_path):
    p = tmp_path / "log.csv"
    log = CsvLog(str(p))
    log.write({"frame": 0, "psnr_y": 40.0})
    log.write({"frame": 1, "psnr_y": 41.0, "vmaf": 90.0})
    # while running: the old header, the new value at the end of its row
    assert p.read_text().splitlines()[2] == "1,41.0,90.0"
    log.write({"frame": 2, "vmaf": 91.0})
    log.close()
    assert p.read_text().splitlines() == ["frame,psnr_y,vmaf", "0,40.0,", "1,41.0,90.0", "2,,91.0"]
    assert not (tmp_path / "log.csv.tmp").exists()


def test_csv_on_stdout_drops_late_keys(capsys):
    log = CsvLog("-")
    log.write({"frame": 0, "a": 1})
    log.write({"frame": 1, "a": 2, "b": 3})
    log.close()
    assert capsys.readouterr().out.splitlines() == ["frame,a", "0,1", "1,2"]
    assert log.dropped_keys == ["b"]


def test_open_log_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown log format"):
        open_log(str(tmp_path / "x"), "xml")
    with pytest.raises(UsageError, match="cannot write log"):
        open_log(str(tmp_path / "missing" / "x.csv"), "csv")
    assert type(open_log(str(tmp_path / "x.jsonl"), "jsonl")).__name__ == "JsonLinesLog"


# ---------------------------------------------------------------- libvmaf JSON

def test_libvmaf_names():
    assert [libvmaf_name(k) for k in (
        "vmaf", "vmaf_ci_low", "vmaf_ci_high", "vif_scale0", "adm2", "adm_scale3", "aim", "adm3",
        "motion", "motion2", "motion3", "psnr_y", "psnr_u", "psnr_v", "ssim_y", "ms_ssim", "cambi",
        "speed_chroma_uv", "psnr_avg", "ssim", "vmaf_4k_v0.6.1_ci_low")] == [
        "vmaf", "vmaf_ci_p95_lo", "vmaf_ci_p95_hi", "integer_vif_scale0", "integer_adm2",
        "integer_adm_scale3", "integer_aim", "integer_adm3", "VMAF_integer_feature_motion_sad_score",
        "integer_motion2", "integer_motion3", "psnr_y", "psnr_cb", "psnr_cr", "float_ssim",
        "float_ms_ssim", "cambi", "speed_chroma_uv", "psnr_avg", "ssim", "vmaf_4k_v0.6.1_ci_p95_lo"]


@pytest.fixture(scope="module")
def libvmaf_run(tmp_path_factory):
    """A real libvmaf JSON log of a short encode, and the y4m pair it scored."""
    t = tmp_path_factory.mktemp("libvmaf")
    ref = make_clip(t / "ref.y4m", size="160x96", duration=0.4)
    dis = decode_y4m(encode(ref, t / "dis.mp4", ["-c:v", "libx264", "-crf", "38"]), t / "dis.y4m")
    log = libvmaf(ref, dis, t, features=["name=psnr", "name=float_ssim"])
    return t, ref, dis, log


def test_libvmaf_json_has_the_layout_of_a_real_libvmaf_log(libvmaf_run, tmp_path):
    _, _, _, real = libvmaf_run
    # feed libvmaf's own per-frame values back, as vqa records with vqa's names
    ours_of = {"psnr_y": "psnr_y", "psnr_cb": "psnr_u", "psnr_cr": "psnr_v", "float_ssim": "ssim_y",
               "integer_adm2": "adm2", "integer_aim": "aim", "integer_adm3": "adm3",
               "VMAF_integer_feature_motion_sad_score": "motion", "integer_motion2": "motion2",
               "integer_motion3": "motion3", "vmaf": "vmaf"}
    ours_of.update({f"integer_vif_scale{i}": f"vif_scale{i}" for i in range(4)})
    ours_of.update({f"integer_adm_scale{i}": f"adm_scale{i}" for i in range(4)})
    p = tmp_path / "ours.json"
    log = LibvmafJsonLog(str(p))
    for f in real["frames"]:
        rec = {"frame": f["frameNum"], "pts": f["frameNum"] / 25}
        rec.update({ours_of[k]: v for k, v in f["metrics"].items()})
        log.write(rec)
    assert not p.read_text()  # one JSON document: written at close()
    log.close()
    mine = json.loads(p.read_text())
    assert list(mine) == list(real) == ["version", "fps", "frames", "pooled_metrics", "aggregate_metrics"]
    assert isinstance(mine["version"], str) and isinstance(mine["fps"], float)
    assert isinstance(mine["aggregate_metrics"], dict)
    assert len(mine["frames"]) == len(real["frames"])
    for a, b in zip(mine["frames"], real["frames"]):
        assert list(a) == list(b) == ["frameNum", "metrics"]
        assert a["frameNum"] == b["frameNum"]
        assert set(a["metrics"]) == set(b["metrics"])  # every name spelt as libvmaf spells it
        for k, v in b["metrics"].items():
            assert a["metrics"][k] == pytest.approx(v, abs=1e-6)
    assert set(mine["pooled_metrics"]) == set(real["pooled_metrics"])
    for k, pr in real["pooled_metrics"].items():
        assert list(mine["pooled_metrics"][k]) == list(pr) == ["min", "max", "mean", "harmonic_mean"]
        for s, v in pr.items():  # the same pooling, harmonic mean included
            assert mine["pooled_metrics"][k][s] == pytest.approx(v, abs=2e-6), (k, s)


def test_libvmaf_json_from_a_vqa_compare_reads_like_libvmafs(libvmaf_run, tmp_path):
    """A real vqa run through the writer: every key a reader of libvmaf's log
    looks up for PSNR and SSIM is there, with libvmaf's values."""
    import vqa_filter
    _, ref, dis, real = libvmaf_run
    p = tmp_path / "vqa.json"
    log = LibvmafJsonLog(str(p))
    for rec in vqa_filter.compare(str(ref), str(dis), metrics=["psnr", "ssim"]):
        log.write(rec)
    log.close()
    mine = json.loads(p.read_text())
    assert len(mine["frames"]) == len(real["frames"])
    for a, b in zip(mine["frames"], real["frames"]):
        for k in ("psnr_y", "psnr_cb", "psnr_cr", "float_ssim"):
            assert a["metrics"][k] == pytest.approx(b["metrics"][k], abs=5e-3), k
    for k in ("psnr_y", "float_ssim"):
        assert mine["pooled_metrics"][k]["mean"] == pytest.approx(
            real["pooled_metrics"][k]["mean"], abs=5e-3)


def test_libvmaf_json_several_streams_nan_and_stdout(tmp_path, capsys):
    p = tmp_path / "log.json"
    log = LibvmafJsonLog(str(p))
    log.set_stream_order([("a.mp4", 0), ("b.mp4", 0)])
    for i in range(3):
        for out in ("b.mp4", "a.mp4"):
            log.write({"frame": i, "pts": i / 25, "output": out, "stream": 0,
                       "vmaf": 80.0 + i + (out == "b.mp4"), "vmaf_ci_low": None if i == 1 else 70.0})
    log.write({"type": "alert", "frame_hint": 1})
    log.close()
    assert not p.exists()
    assert log.paths == [str(tmp_path / "log.0.json"), str(tmp_path / "log.1.json")]
    a = json.loads((tmp_path / "log.0.json").read_text())
    b = json.loads((tmp_path / "log.1.json").read_text())
    assert [f["metrics"]["vmaf"] for f in a["frames"]] == [80, 81, 82]
    assert [f["metrics"]["vmaf"] for f in b["frames"]] == [81, 82, 83]
    assert "vmaf_ci_p95_lo" not in a["frames"][1]["metrics"]  # no value: no key (as libvmaf)
    assert a["pooled_metrics"]["vmaf_ci_p95_lo"]["mean"] == 70.0
    assert log.skipped == 1
    log = LibvmafJsonLog("-")
    log.write({"frame": 0, "psnr_y": 30.0})
    log.close()
    doc = json.loads(capsys.readouterr().out)
    assert doc["frames"] == [{"frameNum": 0, "metrics": {"psnr_y": 30.0}}]


# ---------------------------------------------------------------- progress

class FakeTty(io.StringIO):
    encoding = "utf-8"

    def isatty(self):
        return True


def test_format_progress():
    line = format_progress(250, 1000, fps=50.0, scores=[("vmaf", 93.456)], width=100)
    assert line.startswith("vqa:  25% [")
    assert "250/1000 frames" in line and "50.0 fps" in line and "ETA 0:15" in line
    assert "vmaf 93.46" in line and len(line) <= 99
    plain = format_progress(250, None, fps=50.0, scores=[("ssim", 0.98765)], speed=1.5)
    assert plain == "vqa: 250 frames | 50.0 fps | speed 1.50x | ssim 0.9877"
    assert "ETA 1:00:00" in format_progress(0, 180000, fps=50.0)
    assert "[" not in format_progress(5, 10, fps=1.0, width=30)  # too narrow for a bar
    assert "3 skipped" in format_progress(5, None, skipped=3)


def test_progress_bar_on_a_terminal():
    tty = FakeTty()
    w = StderrWriter(tty, min_interval=0)
    w.set_total(100)
    w.progress(10, scores=[("vmaf", 90.0)], fps=20.0)
    out = tty.getvalue()
    assert out.startswith("\r\033[K") and "10%" in out and "\u2588" in out and "ETA 0:04" in out
    w.write("a note\n")  # the bar is cleared, the note written, the bar drawn again
    assert tty.getvalue().endswith("a note\n" + w._status)
    w.end_status()
    assert tty.getvalue().endswith("\r\033[K")
    # own rate when ffmpeg's is not given
    w2 = StderrWriter(FakeTty(), min_interval=0)
    assert w2.rate(0, now=0.0) is None
    assert w2.rate(50, now=1.0) == pytest.approx(50.0)


def test_progress_plain_lines_when_not_a_terminal():
    s = io.StringIO()
    w = StderrWriter(s, min_interval=0, plain_every=3600)
    w.set_total(10)
    w.progress(1, scores=[("psnr_y", 40.0)], fps=5.0)
    w.progress(2, scores=[("psnr_y", 40.0)], fps=5.0)  # within plain_every: not written
    assert s.getvalue() == "vqa:  10% 1/10 frames | 5.0 fps | ETA 0:02 | psnr_y 40.00\n"
    w.status("vqa: custom", plain_every=0)
    assert s.getvalue().endswith("vqa: custom\n")
    off = io.StringIO()
    StderrWriter(off, progress=False).progress(1, force=True)
    assert off.getvalue() == ""


# ---------------------------------------------------------------- HTML

def test_html_needs_matplotlib_says_so_in_one_line(monkeypatch, tmp_path):
    from vqa_filter import report_html
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError) as e:
        report_html.write_html(str(tmp_path / "r.html"), [{"frame": 0, "vmaf": 1.0}])
    assert "\n" not in str(e.value) and "vqa[report]" in str(e.value)
    assert not (tmp_path / "r.html").exists()


def run_records(n=120, streams=1, fmt=FrameFormat(320, 180, "420", 10)):
    """Frame records and worst-frame keepers of a made-up run with two dips."""
    rng = np.random.default_rng(3)
    recs, keepers = [], []
    for s in range(streams):
        k = WorstFrames(n=3, key="vmaf", label=f"out{s}.mp4 #0")
        keepers.append(k)
        for i in range(n):
            bad = i in (30, 77)
            ref, dis = synthetic(fmt, i, (200, 100, 60, 50), amp=40 if bad else 2, seed=s)
            v = 92 - 0.03 * i - (35 if bad else 0) + rng.normal(0, 0.4) - 3 * s
            rec = {"frame": i, "pts": i / 25, "vmaf": v, "vmaf_ci_low": v - 4, "vmaf_ci_high": v + 3,
                   "psnr_y": 42 + rng.normal() - (8 if bad else 0), "ssim": 0.99 - (0.05 if bad else 0)}
            if streams > 1:
                rec = {"frame": i, "pts": i / 25, "output": f"out{s}.mp4", "stream": 0,
                       **{k_: v_ for k_, v_ in rec.items() if k_ not in ("frame", "pts")}}
            recs.append(rec)
            k.feed(i, ref, dis, fmt, [rec])
    return recs, keepers


REPORT = {"vqa_version": "0.1.0", "mode": "compare", "complete": True, "exit_code": 0,
          "ffmpeg": {"path": "/opt/ffmpeg", "version": "9.0"},
          "inputs": {"reference": {"path": "ref.y4m"}, "distorted": {"path": "dis.mp4"}},
          "metrics": ["psnr", "ssim"], "format": "320x180 420 10-bit", "frames": 120}


def test_html_is_self_contained(tmp_path):
    from vqa_filter.report_html import HtmlReport
    recs, keepers = run_records()
    rep = HtmlReport()
    for r in recs:
        rep.add(r)
    rep.add({"type": "alert", "state": "below", "metric": "vmaf", "value": 55.0})
    p = tmp_path / "r.html"
    rep.write(str(p), report=REPORT, worst=keepers, settings={"--metrics": "vmaf,psnr,ssim"})
    text = p.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in text
    # nothing fetched: every src/href is a data: URI or a fragment, no URL anywhere in attributes
    for attr in re.findall(r"""(?:src|href)\s*=\s*['"]?([^'" >]+)""", text):
        assert attr.startswith(("data:", "#")), attr
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", text)
    assert "<script" not in text
    # a plot per metric (the CI band is drawn on vmaf's), the worst frames, the tables
    assert text.count("<svg") == 3
    assert all(f"id='plot-{k}'" in text for k in ("vmaf", "psnr_y", "ssim"))
    assert text.count("data:image/png;base64,") == 3 * 4  # thumbnail + 3 crops, 3 frames
    assert "frame 30" in text and "frame 77" in text
    assert "Events" in text and "below" in text
    assert "/opt/ffmpeg" in text and "--metrics" in text and "hmean" in text
    # matplotlib's ids are unique across the inline SVGs
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))


def test_html_several_streams_and_no_frames(tmp_path):
    from vqa_filter.report_html import write_html
    recs, keepers = run_records(n=40, streams=2)
    report = {"streams": [{"label": f"out{s}.mp4 #0", "output": f"out{s}.mp4", "stream": 0,
                           "frames": 40, "frames_skipped": 0, "summary": {"vmaf": pool(
                               [r["vmaf"] for r in recs if r["output"] == f"out{s}.mp4"])}}
                          for s in range(2)]}
    p = tmp_path / "multi.html"
    write_html(str(p), recs, report=report, worst=keepers)
    text = p.read_text()
    assert "out0.mp4 #0" in text and "out1.mp4 #0" in text and text.count("<svg") == 3
    empty = tmp_path / "empty.html"
    write_html(str(empty), [], report={"complete": False, "error": "ffmpeg failed"})
    t = empty.read_text()
    assert "No frames scored" in t and "ffmpeg failed" in t


def test_html_many_frames_stays_small(tmp_path):
    from vqa_filter.report_html import write_html
    rng = np.random.default_rng(0)
    recs = ({"frame": i, "vmaf": 90 + rng.normal()} for i in range(200000))
    p = tmp_path / "long.html"
    write_html(str(p), recs, max_points=1500)
    assert p.stat().st_size < 1_500_000


# ---------------------------------------------------------------- in a browser

def find_browser():
    for name in (os.environ.get("VQA_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
CONSOLE = re.compile(r":(?:INFO|WARNING|ERROR|VERBOSE\d*):CONSOLE[:(]|:CONSOLE\(\d+\)")


def chromium(browser, tmp_path, name, *args):
    prof = tmp_path / f"profile-{name}"
    r = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    console = [ln for ln in r.stderr.splitlines() if CONSOLE.search(ln)]
    return r, console


def test_html_report_in_a_headless_browser(tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no headless browser: install Debian's chromium (apt-get install -y chromium) "
                    "or set VQA_CHROMIUM")
    from vqa_filter.report_html import write_html
    recs, keepers = run_records()
    page = tmp_path / "report.html"
    write_html(str(page), recs, report=REPORT, worst=keepers, settings={"--html": str(page)})

    # the check can see console errors and blocked fetches: a page with both is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
                   "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
                   "<img src='http://192.0.2.1/x.png'><script>console.error('vqa-probe')</script>"
                   "</body></html>")
    r, console = chromium(browser, tmp_path, "bad", "--dump-dom", bad.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert any("vqa-probe" in ln for ln in console), r.stderr[-3000:]
    assert any("192.0.2.1" in ln for ln in console), r.stderr[-3000:]

    r, console = chromium(browser, tmp_path, "dom", "--dump-dom", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert console == [], "console messages:\n" + "\n".join(console)
    dom = r.stdout
    assert "<title>vqa report</title>" in dom and dom.count("<svg") == 3
    assert dom.count("<img") == 12 and "frame 30" in dom

    shot = tmp_path / "report.png"
    r, console = chromium(browser, tmp_path, "shot", "--window-size=1280,2400",
                          f"--screenshot={shot}", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert console == [], "console messages:\n" + "\n".join(console)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
    out = os.environ.get("VQA_TEST_ARTIFACTS")
    if out:
        os.makedirs(out, exist_ok=True)
        shutil.copy(shot, os.path.join(out, "report.png"))
        shutil.copy(page, os.path.join(out, "report.html"))
    print(f"HTML report screenshot: {shot}")
