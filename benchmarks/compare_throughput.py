#!/usr/bin/env python3
"""vqa compare vs ffmpeg's own filters on the same 1080p y4m pair, alternating.

    python benchmarks/compare_throughput.py                  # VMAF vmaf_v0.6.1 vs libvmaf
    python benchmarks/compare_throughput.py --model vmaf_v1.0.16_3d0h
    python benchmarks/compare_throughput.py --metrics psnr,ssim   # vs ffmpeg psnr + ssim

Prints each side's best wall time, frames per second and the ratio
(anchor time / vqa time: above 1 means vqa is faster).  Inputs are y4m so
that decoding costs next to nothing on both sides.  Both sides use all cores
(libvmaf: n_threads = cores).
"""
import argparse
import os
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
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("reference", nargs="?")
    ap.add_argument("distorted", nargs="?")
    a = ap.parse_args()
    if a.reference and a.distorted:
        ref, dis = c.Path(a.reference), c.Path(a.distorted)
    else:
        ref = c.source(a.size, a.frames, a.pix_fmt)
        dis = c.distorted(ref)
    n = c.frames_of(ref)
    threads = os.cpu_count() or 1
    ff = c.ffmpeg()
    null = ["-f", "null", "-"]
    vqa = c.vqa_cmd() + ["compare", "-q", "--threads", str(threads)]
    if a.metrics == "vmaf":
        vqa += ["--model", a.model]
        anchor_name = f"libvmaf {a.model}"
        anchor = [ff, "-hide_banner", "-nostdin", "-i", dis, "-i", ref, "-lavfi",
                  f"[0:v][1:v]libvmaf=model={c.esc('version=' + a.model)}:n_threads={threads}", *null]
    else:
        vqa += ["--metrics", a.metrics]
        anchor_name = f"ffmpeg {a.metrics}"
        ms = a.metrics.split(",")
        k = len(ms)
        graph = (f"[0:v]split={k}" + "".join(f"[d{i}]" for i in range(k)) + ";"
                 f"[1:v]split={k}" + "".join(f"[r{i}]" for i in range(k)) + ";"
                 + ";".join(f"[d{i}][r{i}]{m}" for i, m in enumerate(ms)))
        anchor = [ff, "-hide_banner", "-nostdin", "-i", dis, "-i", ref, "-lavfi", graph, *null]
    vqa += [ref, dis]
    print(f"pair: {ref.name} / {dis.name}, {n} frames, {threads} threads")
    c.run(vqa)  # warm the JIT cache
    times = c.alternate({f"vqa {a.metrics if a.metrics != 'vmaf' else a.model}": lambda: c.timed(vqa),
                         anchor_name: lambda: c.timed(anchor)}, a.repeat)
    (kv, tv), (ka, ta) = [(k, c.best(v)) for k, v in times.items()]
    print(f"{kv:<34} {tv:7.2f} s  {n / tv:7.1f} fps")
    print(f"{ka:<34} {ta:7.2f} s  {n / ta:7.1f} fps")
    print(f"ratio (anchor time / vqa time): {ta / tv:.2f}x")


if __name__ == "__main__":
    main()
