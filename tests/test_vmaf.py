"""VMAF end to end against libvmaf (issue 3): ``vqa compare --model M
--features`` and ffmpeg's libvmaf filter on the same frames, for every
built-in model, on natural 8-bit, 10-bit and scaled (encoded at a lower
resolution, scaled back with bicubic) pairs; inline == compare."""
import json
import subprocess
import sys

import pytest

from oracle import (decode_y4m, encode, libvmaf, libvmaf_frames, libvmaf_key, make_clip,
                    run_ffmpeg, run_vqa)

V0 = ("vmaf_v0.6.1", "vmaf_v0.6.1neg", "vmaf_4k_v0.6.1")
V1 = ("vmaf_v1.0.16_3d0h", "vmaf_v1.0.16_5d0h", "vmaf_v1.0.16_1d5h_2160",
      "vmaf_v1.0.16_3d0h_2160", "vmaf_v1.0.16_hfr_3d0h", "vmaf_v1.0.16_hfr_5d0h",
      "vmaf_v1.0.16_hfr_1d5h_2160", "vmaf_v1.0.16_hfr_3d0h_2160")
FEATURE_TOL = {"motion": 5e-3, "motion2": 5e-3, "motion3": 5e-3}


def vqa(*args, timeout=600):
    r = run_vqa(*args, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


def records(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """name -> (reference y4m, distorted file for vqa, distorted y4m at the
    reference's size for libvmaf).  480x360: the 2160 models' SpEED prescale
    needs chroma planes of at least 160x160."""
    t = tmp_path_factory.mktemp("vmaf")
    out = {}
    ref8 = make_clip(t / "ref8.y4m", size="480x360", duration=0.48)
    d8 = encode(ref8, t / "d8.mp4", ["-c:v", "libx264", "-crf", "36", "-preset", "fast"])
    out["natural8"] = (ref8, d8, decode_y4m(d8, t / "d8.y4m"))
    ref10 = make_clip(t / "ref10.y4m", size="480x360", duration=0.48, pix_fmt="yuv420p10le")
    d10 = encode(ref10, t / "d10.mkv", ["-c:v", "libx265", "-x265-params", "log-level=0:crf=34",
                                        "-pix_fmt", "yuv420p10le"])
    out["natural10"] = (ref10, d10, decode_y4m(d10, t / "d10.y4m", pix_fmt="yuv420p10le"))
    refs = make_clip(t / "refs.y4m", kind="testsrc", size="480x360", duration=0.48)
    ds = encode(refs, t / "ds.mp4", ["-vf", "scale=240:180", "-c:v", "libx264", "-crf", "30"])
    out["scaled"] = (refs, ds, decode_y4m(ds, t / "ds.y4m", size="480x360"))
    return t, out


def check(ours, theirs, per_frame, pooled, features=True):
    assert len(ours) == len(theirs) > 0
    keys = theirs[0].keys()
    assert "vmaf" in ours[0]
    worst = {}
    for k in ours[0]:
        if k in ("frame", "pts"):
            continue
        lk = libvmaf_key(k, keys)
        if lk is None:
            continue
        tol = per_frame if k == "vmaf" else FEATURE_TOL.get(k, 5e-4)
        if k in ("cambi", "speed_chroma_uv"):
            tol = 0.01
        d = max(abs(a[k] - b[lk]) for a, b in zip(ours, theirs))
        worst[k] = d
        assert d <= tol, (k, d, tol)
    mo = sum(a["vmaf"] for a in ours) / len(ours)
    mt = sum(b["vmaf"] for b in theirs) / len(theirs)
    assert abs(mo - mt) <= pooled, (mo, mt)
    if features:
        assert len(worst) >= 4, worst  # the elementary features were compared
    return worst


@pytest.mark.parametrize("case", ["natural8", "natural10", "scaled"])
@pytest.mark.parametrize("model", V0)
def test_v0_models_equal_libvmaf(pairs, case, model):
    t, ps = pairs
    ref, dis, dis_y4m = ps[case]
    log = t / f"{case}_{model}.jsonl"
    vqa("compare", "-q", "--model", model, "--features", "--log", log, ref, dis)
    theirs = libvmaf_frames(libvmaf(ref, dis_y4m, t, model=f"version={model}"))
    check(records(log), theirs, per_frame=0.05, pooled=0.02)


@pytest.mark.parametrize("case", ["natural8", "natural10", "scaled"])
def test_v1_models_equal_libvmaf(pairs, case):
    """All eight v1 models in one vqa pass (several --model), each checked
    against its own libvmaf run."""
    t, ps = pairs
    ref, dis, dis_y4m = ps[case]
    log = t / f"{case}_v1.jsonl"
    args = []
    for m in V1:
        args += ["--model", f"{m}:name={m}"]
    vqa("compare", "-q", *args, "--log", log, ref, dis)
    recs = records(log)
    for m in V1:
        ours = [{"vmaf": r[m]} for r in recs]
        theirs = libvmaf_frames(libvmaf(ref, dis_y4m, t, model=f"version={m}"))
        check(ours, theirs, per_frame=0.1, pooled=0.05, features=False)


def test_v1_features_equal_libvmaf(pairs):
    """cambi and speed_chroma_uv of the 3d0h model within 0.01 per frame,
    adm3/motion3 within the v0 feature tolerances."""
    t, ps = pairs
    ref, dis, dis_y4m = ps["natural10"]
    log = t / "v1feat.jsonl"
    vqa("compare", "-q", "--model", "vmaf_v1.0.16_3d0h", "--features", "--log", log, ref, dis)
    theirs = libvmaf_frames(libvmaf(ref, dis_y4m, t, model="version=vmaf_v1.0.16_3d0h"))
    worst = check(records(log), theirs, per_frame=0.1, pooled=0.05)
    assert {"cambi", "speed_chroma_uv", "adm3", "motion3"} <= set(worst)


def test_bootstrap_interval_equals_libvmaf_members(pairs, tmp_path):
    """vmaf_b_v0.6.3: ffmpeg's libvmaf filter cannot load bootstrap models, so
    each member is loaded as its own model (clip disabled) and the interval is
    computed from libvmaf's member scores as libvmaf does (2.5/97.5 percentile
    of the raw member predictions, then member 1's clip); bounds within 0.1."""
    import numpy as np
    from vqa_core.models import BUILTIN_MODELS, DATA_DIR
    t, ps = pairs
    ref, dis, dis_y4m = ps["natural8"]
    log = t / "boot.jsonl"
    vqa("compare", "-q", "--model", "vmaf_b_v0.6.3", "--log", log, ref, dis)
    ours = records(log)
    doc = json.loads((DATA_DIR / BUILTIN_MODELS["vmaf_b_v0.6.3"][0]).read_text())
    specs = []
    i = 1
    while str(i) in doc:
        p = tmp_path / f"m{i}.json"
        p.write_text(json.dumps({"model_dict": doc[str(i)]["model_dict"]}))
        specs.append(f"path={p}:name=m{i}:disable_clip=true")
        i += 1
    theirs = libvmaf_frames(libvmaf(ref, dis_y4m, t, model="|".join(specs)))
    lo_clip, hi_clip = doc["1"]["model_dict"].get("score_clip", [0.0, 100.0])
    for a, b in zip(ours, theirs):
        raw = np.array([b[f"m{j}"] for j in range(1, i)])
        lo = min(max(np.percentile(raw, 2.5), lo_clip), hi_clip)
        hi = min(max(np.percentile(raw, 97.5), lo_clip), hi_clip)
        assert abs(a["vmaf_ci_low"] - lo) <= 0.1 and abs(a["vmaf_ci_high"] - hi) <= 0.1
        assert a["vmaf_ci_low"] <= a["vmaf"] + 1e-9 or a["vmaf_ci_low"] <= a["vmaf_bagging"]


def test_inline_equals_compare(pairs):
    t, ps = pairs
    ref = ps["natural8"][0]
    out = t / "inline.mp4"
    l1, l2 = t / "inline.jsonl", t / "inline_cmp.jsonl"
    vqa("-q", "--log", l1, "ffmpeg", "-y", "-i", ref, "-c:v", "libx264", "-crf", "33", out)
    vqa("compare", "-q", "--log", l2, ref, out)
    a, b = records(l1), records(l2)
    assert len(a) == len(b) == 12
    for x, y in zip(a, b):
        assert x["vmaf"] == pytest.approx(y["vmaf"], abs=1e-9)


def test_bit_depth_option_matches_libvmaf_at_10_bits(pairs):
    """--bit-depth 10 on an 8-bit pair equals libvmaf fed the same pair
    converted to 10 bits by ffmpeg (as libvmaf's docs ask for the v1 models)."""
    t, ps = pairs
    ref, dis, dis_y4m = ps["natural8"]
    log = t / "bd10.jsonl"
    vqa("compare", "-q", "--bit-depth", "10", "--model", "vmaf_v1.0.16_3d0h", "--features",
        "--log", log, ref, dis)
    r10, d10 = t / "r10.y4m", t / "d10b.y4m"
    for s, d in ((ref, r10), (dis_y4m, d10)):
        run_ffmpeg(["-i", str(s), "-pix_fmt", "yuv420p10le", "-strict", "-1", str(d)])
    theirs = libvmaf_frames(libvmaf(r10, d10, t, model="version=vmaf_v1.0.16_3d0h"))
    check(records(log), theirs, per_frame=0.1, pooled=0.05)
    rep8 = t / "bd8.jsonl"
    vqa("compare", "-q", "--model", "vmaf_v1.0.16_3d0h", "--features", "--log", rep8, ref, dis)
    assert records(rep8)[0]["cambi"] != records(log)[0]["cambi"]  # the option did something
