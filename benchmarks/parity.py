#!/usr/bin/env python3
"""How far vqa's numbers are from libvmaf's, feature by feature, model by model.

    python benchmarks/parity.py REFERENCE DISTORTED [--model M ...] [--bit-depth 10]
    python benchmarks/parity.py --make 1080p          # generate a natural 1080p pair first
    python benchmarks/parity.py --make 10bit

For each model (default: every built-in model) it runs ``vqa compare --model M
--features`` and ffmpeg's libvmaf filter with the same model on the same two
files, and prints, for the model's score and each elementary feature, the
largest and the mean absolute per-frame difference, and the difference of the
pooled means.  Both sides read the same frames: DISTORTED is scaled to
REFERENCE's size with bicubic on both sides.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import common as c  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from oracle import libvmaf_key  # noqa: E402  (the tests' name mapping)


def run_pair(ref, dis, model, bitdepth, tmp):
    log = Path(tmp) / f"vqa_{model}.jsonl"
    cmd = c.vqa_cmd() + ["compare", "-q", "--model", model, "--features", "--log", log]
    if bitdepth:
        cmd += ["--bit-depth", str(bitdepth)]
    c.run(cmd + [ref, dis])
    ours = [json.loads(x) for x in log.read_text().splitlines()]
    vlog = Path(tmp) / f"libvmaf_{model}.json"
    boot = None
    if "/" in model or model.endswith(".json"):
        mspec = "path=" + model
        doc = json.loads(Path(model).read_text())
        boot = doc if "0" in doc else None
    else:
        from vqa_core.models import BUILTIN_MODELS, DATA_DIR
        mspec = "version=" + model
        if model == "vmaf_b_v0.6.3":
            boot = json.loads((DATA_DIR / BUILTIN_MODELS[model][0]).read_text())
    if boot is not None:
        # ffmpeg's libvmaf filter loads no bootstrap collection: load the
        # main model and every member as separate models, clip off for members
        specs, i = [], 0
        while str(i) in boot:
            mp = Path(tmp) / f"member{i}.json"
            mp.write_text(json.dumps({"model_dict": boot[str(i)]["model_dict"]}))
            specs.append(f"path={mp}:name=m{i}" + (":disable_clip=true" if i else ""))
            i += 1
        mspec = "|".join(specs)
    fmt = ""
    if bitdepth:
        fmt = f",format=yuv420p{bitdepth}le" if bitdepth > 8 else ",format=yuv420p"
    graph = (f"[0:v][1:v]scale=rw:rh:flags=bicubic{fmt}[d];[1:v]null{fmt}[r];"
             f"[d][r]libvmaf=log_fmt=json:log_path={vlog}:n_threads={os.cpu_count()}:"
             f"model={c.esc(mspec)}")
    c.run([c.ffmpeg(), "-hide_banner", "-nostdin", "-i", dis, "-i", ref, "-filter_complex",
           graph, "-f", "null", "-"])
    theirs = [f["metrics"] for f in json.loads(vlog.read_text())["frames"]]
    if boot is not None:
        lo_c, hi_c = boot["1"]["model_dict"].get("score_clip", [0.0, 100.0])
        for m in theirs:
            raw = np.array([m[f"m{j}"] for j in range(1, i)])
            clip = lambda v: min(max(float(v), lo_c), hi_c)  # noqa: E731
            m["vmaf"] = m["m0"]
            m["vmaf_bagging"] = clip(raw.mean())
            m["vmaf_ci_p95_lo"] = clip(np.percentile(raw, 2.5))
            m["vmaf_ci_p95_hi"] = clip(np.percentile(raw, 97.5))
    return ours, theirs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", nargs="?")
    ap.add_argument("distorted", nargs="?")
    ap.add_argument("--model", action="append")
    ap.add_argument("--bit-depth", type=int)
    ap.add_argument("--make", choices=["1080p", "10bit", "4k10"], help="generate a pair and use it")
    ap.add_argument("--frames", type=int, default=48)
    a = ap.parse_args()
    if a.make:
        size, pix = {"1080p": ("1920x1080", "yuv420p"), "10bit": ("1920x1080", "yuv420p10le"),
                     "4k10": ("3840x2160", "yuv420p10le")}[a.make]
        ref = c.source(size, a.frames, pix)
        dis = c.distorted(ref, crf=32)
    elif a.reference and a.distorted:
        ref, dis = Path(a.reference), Path(a.distorted)
    else:
        ap.error("give REFERENCE DISTORTED or --make")
    from vqa_core.models import builtin_models
    models = a.model or [n for n, _ in builtin_models()]
    print(f"pair: {ref} / {dis}")
    print(f"{'model':<28} {'key':<18} {'max |diff|':>11} {'mean |diff|':>12} {'pooled diff':>12}  frames")
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            ours, theirs = run_pair(ref, dis, m, a.bit_depth, tmp)
            if len(ours) != len(theirs):
                print(f"{m:<28} frame counts differ: vqa {len(ours)}, libvmaf {len(theirs)}")
            n = min(len(ours), len(theirs))
            keys = [k for k in ours[0] if k not in ("frame", "pts")]
            for k in keys:
                lk = libvmaf_key(k, theirs[0].keys())
                if lk is None:
                    print(f"{m:<28} {k:<18} {'(libvmaf has no such output)':>38}")
                    continue
                d = [abs(ours[i][k] - theirs[i][lk]) for i in range(n)
                     if ours[i].get(k) is not None]
                pooled = (sum(ours[i][k] for i in range(n)) - sum(theirs[i][lk] for i in range(n))) / n
                print(f"{m:<28} {k:<18} {max(d):11.2e} {sum(d) / len(d):12.2e} {pooled:12.2e}  {n}")


if __name__ == "__main__":
    main()
