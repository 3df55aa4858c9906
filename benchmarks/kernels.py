#!/usr/bin/env python3
"""Milliseconds per frame of each feature extractor and of each model's whole
frame (``Scorer.push``), in-process: no ffmpeg, no pipe, no start-up.

    python benchmarks/kernels.py [--size 1920x1080] [--pix-fmt yuv420p]
                                 [--frames 24] [--repeat 5] [--threads N]

The frames of the benchmark pair (the natural clip and its x264 encode, as
the other scripts use) are loaded into memory first; each extractor then
runs over all of them ``--repeat`` times and the best pass is reported.
Temporal extractors (motion) see the frames in order, as in a real run.
The extractors listed are those of vmaf_v0.6.1 and vmaf_v1.0.16_3d0h with
the models' options, plus psnr, ssim and ms_ssim.  This is the breakdown
the compare and inline benchmarks' totals are made of; it has no anchor
(libvmaf does not time its features one by one).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import common as c  # noqa: E402

MODELS = ("vmaf_v0.6.1", "vmaf_v1.0.16_3d0h")
METRICS = ("psnr", "ssim", "ms_ssim")


def read_frames(path, limit):
    """(frames as tuples of planes, FrameFormat) of a y4m file written by ffmpeg."""
    from vqa_core import FrameFormat
    from vqa_filter.pixfmt import parse_y4m_header
    data = path.read_bytes()
    nl = data.index(b"\n")
    w, h, chroma, depth, _ = parse_y4m_header(data[:nl + 1])
    fmt = FrameFormat(w, h, chroma, depth)
    dt = np.dtype("<u2") if depth > 8 else np.dtype(np.uint8)
    frames, pos = [], nl + 1
    while pos < len(data) and len(frames) < limit:
        pos = data.index(b"\n", pos) + 1  # FRAME
        planes = []
        for ph, pw in fmt.plane_shapes():
            n = ph * pw
            planes.append(np.frombuffer(data, dt, n, pos).reshape(ph, pw).astype(fmt.dtype))
            pos += n * dt.itemsize
        frames.append(tuple(planes))
    return frames, fmt


def best_ms(run, n_frames, repeat):
    run()  # load / compile the kernels
    best = min(_timed(run) for _ in range(repeat))
    return 1000.0 * best / n_frames


def _timed(run):
    t = time.perf_counter()
    run()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--pix-fmt", default="yuv420p")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, help="kernel threads (default: all cores)")
    a = ap.parse_args()
    import numba
    from vqa_core import Scorer
    from vqa_core.features.registry import get_extractor
    from vqa_core.models.vmaf import load_model_spec
    if a.threads:
        numba.set_num_threads(a.threads)
    ref_path = c.source(a.size, a.frames, a.pix_fmt)
    dis_path = c.distorted(ref_path)
    refs, fmt = read_frames(ref_path, a.frames)
    dists, _ = read_frames(dis_path, a.frames)
    n = len(refs)
    print(f"pair: {ref_path.name} / {dis_path.name}, {n} frames in memory, "
          f"{numba.get_num_threads()} threads, best of {a.repeat}")

    models = [load_model_spec(m) for m in MODELS]
    specs = [(m, {}) for m in METRICS]
    for model in models:
        for name, opts in model.extractors():
            if (name, opts) not in specs:
                specs.append((name, opts))
    print(f"{'extractor':<10} {'options':<60} {'ms/frame':>9}")
    for name, opts in sorted(specs, key=lambda s: s[0]):
        ext = get_extractor(name)(**opts)
        ext.setup(fmt)

        def run(ext=ext):
            for i in range(n):
                ext.extract(i, refs[i], dists[i])
            ext.flush()
        shown = ", ".join(f"{k}={v}" for k, v in sorted(opts.items())) or "defaults"
        print(f"{name:<10} {shown[:60]:<60} {best_ms(run, n, a.repeat):9.2f}")
    print(f"{'model':<71} {'ms/frame':>9}")
    for spec, model in zip(MODELS, models):
        def run(model=model):
            s = Scorer(fmt, [], [model])
            for i in range(n):
                s.push(i, None, refs[i], dists[i])
            s.finish()
        print(f"{spec + ' (Scorer.push, whole frame)':<71} {best_ms(run, n, a.repeat):9.2f}")


if __name__ == "__main__":
    main()
