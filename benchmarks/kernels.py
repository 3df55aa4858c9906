#!/usr/bin/env python3
"""Milliseconds per frame of each feature extractor and of each model's whole
frame (``Scorer.push``), in-process: no ffmpeg, no pipe, no start-up.

    python benchmarks/kernels.py [--size 1920x1080] [--pix-fmt yuv420p]
                                 [--frames 24] [--repeat 5] [--lanes N]
    python benchmarks/kernels.py --split cambi   # ms of each of its kernels
    python benchmarks/kernels.py REF.y4m DIS.y4m # on a pair of your own

The frames of the benchmark pair (the natural clip and its x264 encode, as
the other scripts use; or the y4m pair given) are loaded into memory first; each extractor then
runs over all of them ``--repeat`` times and the best pass is reported.
Temporal extractors (motion) see the frames in order, as in a real run.
A kernel call runs on one thread, so the extractors' figures are one
thread's; each model's whole frame is timed on one thread and with
``--lanes`` frames at once (default: all cores), one thread each, as
``vqa compare`` computes them (``Scorer.begin/work/collect``, two frames in
flight per lane): that figure is wall time per frame.
The extractors listed are those of vmaf_v0.6.1 and vmaf_v1.0.16_3d0h with
the models' options, plus psnr, ssim and ms_ssim.  This is the breakdown
the compare and inline benchmarks' totals are made of; it has no anchor
(libvmaf does not time its features one by one).

``--split NAME`` times each kernel of one extractor instead (the public
``@njit`` functions of its module, each call wrapped in a timer: a few
microseconds a call), with the options the models give it, best pass of
``--repeat``; this found a kernel that LLVM had left scalar.
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
    ap.add_argument("--lanes", type=int, help="frames at once for the whole-frame figures "
                    "(default: all cores)")
    ap.add_argument("--split", metavar="NAME",
                    help="time each kernel of this extractor instead")
    c.add_pair_args(ap)
    a = ap.parse_intermixed_args()
    from vqa_core import Scorer
    from vqa_core.features.registry import get_extractor
    from vqa_core.models.vmaf import load_model_spec
    lanes = a.lanes or len(os.sched_getaffinity(0))
    ref_path, dis_path = c.pair(a, a.size, a.frames, a.pix_fmt)
    refs, fmt = read_frames(ref_path, a.frames)
    dists, _ = read_frames(dis_path, a.frames)
    n = len(refs)
    print(f"pair: {ref_path.name} / {dis_path.name}, {n} frames in memory, "
          f"one thread per frame, best of {a.repeat}")
    print(c.native_state())  # what a kernel call runs: the native library or Numba

    models = [load_model_spec(m) for m in MODELS]
    specs = [(m, {}) for m in METRICS]
    for model in models:
        for name, opts in model.extractors():
            if (name, opts) not in specs:
                specs.append((name, opts))
    if a.split:
        opts = [o for nm, o in specs if nm == a.split]
        if not opts:
            try:
                get_extractor(a.split)
            except KeyError as e:
                ap.error(e.args[0])
            opts = [{}]
        split(get_extractor(a.split)(**opts[-1]), fmt, refs, dists, a.repeat)
        return
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
        if lanes > 1:
            label = f"{spec} ({lanes} lanes, wall per frame)"
            ms = best_ms(in_lanes(fmt, model, refs, dists, lanes), n, a.repeat)
            print(f"{label:<71} {ms:9.2f}")


def split(ext, fmt, refs, dists, repeat):
    """Print ms per frame of each public kernel of ``ext``'s module."""
    import importlib
    from collections import Counter
    mod = importlib.import_module(type(ext).__module__)
    spent = Counter()

    def timed(name, f):
        def call(*args):
            t = time.perf_counter()
            try:
                return f(*args)
            finally:
                spent[name] += time.perf_counter() - t
        return call
    originals = {k: v for k, v in vars(mod).items()
                 if hasattr(v, "py_func") and not k.startswith("_")}
    for k, v in originals.items():
        setattr(mod, k, timed(k, v))
    try:
        ext.setup(fmt)

        def run():
            for i in range(len(refs)):
                ext.extract(i, refs[i], dists[i])
            ext.flush()
        run()
        best = None
        for _ in range(repeat):
            spent.clear()
            t = _timed(run)
            if best is None or t < best[0]:
                best = (t, dict(spent))
    finally:
        for k, v in originals.items():
            setattr(mod, k, v)
    n = len(refs)
    total, parts = best
    print(f"{type(ext).__name__} ({mod.__name__}), one thread: {1000 * total / n:.2f} ms/frame")
    print(f"{'kernel':<30} {'ms/frame':>9}")
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"{k:<30} {1000 * v / n:9.3f}")
    print(f"{'(rest: Python, allocation)':<30} {1000 * (total - sum(parts.values())) / n:9.3f}")


def in_lanes(fmt, model, refs, dists, lanes):
    """A run() that scores the frames ``lanes`` at a time, as the session
    does: begin() in frame order here, work() on a pool thread per lane."""
    import itertools
    import threading
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    from vqa_core import Scorer
    local = threading.local()
    ids = itertools.count()
    pool = ThreadPoolExecutor(lanes, initializer=lambda: setattr(local, "id", next(ids)))

    def work(s, ticket, i):
        s.work(ticket, local.id, refs[i], dists[i])

    def run():
        s = Scorer(fmt, [], [model], lanes=lanes)
        futs = deque()
        for i in range(len(refs)):
            futs.append(pool.submit(work, s, s.begin(i, None), i))
            if len(futs) >= 2 * lanes:
                futs.popleft().result()
        for f in futs:
            f.result()
        s.finish()
    return run


if __name__ == "__main__":
    main()
