#!/usr/bin/env python3
"""vqa compare vs ffmpeg's own filters on the same 1080p y4m pair, alternating.

    python benchmarks/compare_throughput.py                  # VMAF vmaf_v0.6.1 vs libvmaf
    python benchmarks/compare_throughput.py --model vmaf_v1.0.16_3d0h
    python benchmarks/compare_throughput.py --metrics psnr,ssim   # vs ffmpeg psnr + ssim

Prints each side's best wall time, frames per second and the ratio
(anchor time / vqa time: above 1 means vqa is faster).  With ``--marginal N``
also an N-frame pair, alternating with the first, and the time each frame
adds on either side ((t_N - t_n) / (N - n)): the throughput with the fixed
costs (start-up) taken out.  Inputs are y4m so
that decoding costs next to nothing on both sides.  Both sides use all cores
(libvmaf: n_threads = cores).  vqa's kernels run from its native kernel
library (``vqa_core/_native.py``, built and waited for before the timed
runs) unless ``VQA_NATIVE=0`` is set; ``--numba`` times a third side, vqa
with ``VQA_NATIVE=0`` (Numba's way), in the same rounds.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
import common as c  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--pix-fmt", default="yuv420p")
    ap.add_argument("--model", default="vmaf_v0.6.1")
    ap.add_argument("--metrics", default="vmaf", help="vmaf (the model) or psnr,ssim")
    ap.add_argument("--numba", action="store_true",
                    help="also time vqa with VQA_NATIVE=0 (its kernels through Numba)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--marginal", type=int, metavar="N", default=0,
                    help="also time an N-frame pair (generated like the first) and print the "
                         "time each frame adds on either side, fixed start-up costs taken out")
    c.add_pair_args(ap)
    a = ap.parse_intermixed_args()
    ref, dis = c.pair(a, a.size, a.frames, a.pix_fmt)
    n = c.frames_of(ref)
    threads = os.cpu_count() or 1
    ff = c.ffmpeg()
    null = ["-f", "null", "-"]

    def commands(ref, dis):
        vqa = c.vqa_cmd() + ["compare", "-q", "--threads", str(threads)]
        if a.metrics == "vmaf":
            vqa += ["--model", a.model]
            anchor = [ff, "-hide_banner", "-nostdin", "-i", dis, "-i", ref, "-lavfi",
                      f"[0:v][1:v]libvmaf=model={c.esc('version=' + a.model)}:n_threads={threads}",
                      *null]
        else:
            vqa += ["--metrics", a.metrics]
            ms = a.metrics.split(",")
            k = len(ms)
            graph = (f"[0:v]split={k}" + "".join(f"[d{i}]" for i in range(k)) + ";"
                     f"[1:v]split={k}" + "".join(f"[r{i}]" for i in range(k)) + ";"
                     + ";".join(f"[d{i}][r{i}]{m}" for i, m in enumerate(ms)))
            anchor = [ff, "-hide_banner", "-nostdin", "-i", dis, "-i", ref, "-lavfi", graph, *null]
        return vqa + [ref, dis], anchor

    vqa, anchor = commands(ref, dis)
    kv = f"vqa {a.metrics if a.metrics != 'vmaf' else a.model}"
    ka = f"libvmaf {a.model}" if a.metrics == "vmaf" else f"ffmpeg {a.metrics}"
    print(f"pair: {ref.name} / {dis.name}, {n} frames, {threads} threads")
    runs = {kv: lambda: c.timed(vqa), ka: lambda: c.timed(anchor)}
    if a.numba:
        no_native = dict(os.environ, VQA_NATIVE="0")
        runs[f"{kv} (Numba)"] = lambda: c.timed(vqa, env=no_native)
    if a.marginal:
        if a.marginal <= n:
            ap.error(f"--marginal must be more than the pair's {n} frames")
        ref_m = c.source(a.size, a.marginal, a.pix_fmt)
        dis_m = c.distorted(ref_m)
        m = c.frames_of(ref_m)
        vqa_m, anchor_m = commands(ref_m, dis_m)
        print(f"and {ref_m.name} / {dis_m.name}, {m} frames")
        runs.update({f"{kv}, {m} fr": lambda: c.timed(vqa_m),
                     f"{ka}, {m} fr": lambda: c.timed(anchor_m)})
    c.warm(vqa)  # the JIT cache and the native library
    print(c.native_state())
    times = c.alternate(runs, a.repeat)
    b = {k: c.best(v) for k, v in times.items()}
    if a.marginal:
        pairs = [(kv, ka, n), (f"{kv}, {m} fr", f"{ka}, {m} fr", m)]
    else:
        pairs = [(kv, ka, n)]
    for v, an, frames in pairs:
        print(f"{v:<34} {b[v]:7.2f} s  {frames / b[v]:7.1f} fps")
        print(f"{an:<34} {b[an]:7.2f} s  {frames / b[an]:7.1f} fps")
        print(f"ratio at {frames} frames (anchor time / vqa time): {b[an] / b[v]:.2f}x")
        if a.repeat > 1:
            # each round's two runs met the same machine state: their ratios'
            # spread says how reliable the best-of ratio above is
            rs = sorted(x / y for x, y in zip(times[an], times[v]))
            print(f"  per round: median {statistics.median(rs):.2f}x, "
                  f"range {rs[0]:.2f}-{rs[-1]:.2f}x over {len(rs)} rounds")
    if a.numba:
        k = f"{kv} (Numba)"
        print(f"{k:<34} {b[k]:7.2f} s  {n / b[k]:7.1f} fps; ratio {b[ka] / b[k]:.2f}x; "
              f"native library / Numba: {b[kv] / b[k]:.3f}")
    if a.marginal:
        # the time each frame adds, start-up and other fixed costs taken out
        (v0, a0, _), (v1, a1, _) = pairs
        fv = (b[v1] - b[v0]) / (m - n)
        fa = (b[a1] - b[a0]) / (m - n)
        print(f"per frame beyond the first {n} (marginal): vqa {fv * 1e3:.1f} ms, "
              f"anchor {fa * 1e3:.1f} ms, ratio {fa / fv:.2f}x; fixed cost (time - frames x "
              f"marginal): vqa {b[v0] - n * fv:.2f} s, anchor {b[a0] - n * fa:.2f} s")


if __name__ == "__main__":
    main()
