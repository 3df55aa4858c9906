#!/usr/bin/env python3
"""Inline scoring vs the ways people score a transcode today, same source,
alternating:

  plain          ffmpeg -i SRC -c:v libx264 -preset fast OUT          (no scoring)
  vqa inline     vqa --model M ffmpeg -i SRC -c:v libx264 -preset fast OUT
  libvmaf inline the same transcode with ffmpeg's libvmaf filter attached
                 through a loopback decoder in the same command
  two-pass       plain, then a separate libvmaf pass on the written file

    python benchmarks/inline_transcode.py [--model vmaf_v0.6.1] [--metrics psnr,ssim] [--floor]

Prints best wall times, each variant's median CPU seconds (ffmpeg, vqa and
every other child process; "cores" = CPU seconds / wall seconds), and the
ratios vqa / libvmaf-inline and vqa / plain.  With ``--floor`` it also runs
vqa inline with ``--metrics psnr`` (decode of the encoded stream, pairing,
transport and vqa itself, with a ~0.3 ms/frame metric): what the transcode
costs with vqa attached before any VMAF kernel runs.
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
    ap.add_argument("--model", default="vmaf_v0.6.1")
    ap.add_argument("--metrics", default="vmaf", help="vmaf (the model) or e.g. psnr,ssim")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--floor", action="store_true",
                    help="also time vqa inline with --metrics psnr (no VMAF kernels)")
    a = ap.parse_args()
    src = c.source(a.size, a.frames)
    out = c.CACHE / "inline_out.mp4"
    threads = os.cpu_count() or 1
    ff = c.ffmpeg()
    enc = ["-c:v", "libx264", "-preset", a.preset]
    plain = [ff, "-hide_banner", "-nostdin", "-y", "-i", src, *enc, out]

    def vqa_inline(scoring):
        return (c.vqa_cmd() + ["-q", "--threads", str(threads), *scoring,
                               "ffmpeg", "-hide_banner", "-nostdin", "-y", "-i", src, *enc, out])
    vqa = vqa_inline(["--model", a.model] if a.metrics == "vmaf" else ["--metrics", a.metrics])
    model = c.esc("version=" + a.model)
    lv_inline = [ff, "-hide_banner", "-nostdin", "-y", "-i", src, *enc, out, "-dec", "0:0",
                 "-filter_complex", f"[dec:0][0:v]libvmaf=model={model}:n_threads={threads}[vm]",
                 "-map", "[vm]", "-f", "null", "-"]
    lv_pass = [ff, "-hide_banner", "-nostdin", "-i", out, "-i", src, "-lavfi",
               f"[0:v][1:v]libvmaf=model={model}:n_threads={threads}", "-f", "null", "-"]
    print(f"source: {src.name}, {c.frames_of(src)} frames, libx264 -preset {a.preset}, {threads} threads")
    c.warm(vqa)  # the JIT cache and the native library
    print(c.native_state())
    variants = {
        "plain transcode": [plain],
        "vqa inline": [vqa],
        "libvmaf inline (-dec)": [lv_inline],
        "two-pass (plain + libvmaf)": [plain, lv_pass],
    }
    if a.floor:
        variants["vqa inline, psnr only"] = [vqa_inline(["--metrics", "psnr"])]
    cpu = {k: [] for k in variants}

    def timing(k):
        def f():
            walls, cpus = zip(*(c.cpu_timed(cmd) for cmd in variants[k]))
            cpu[k].append(sum(cpus))
            return sum(walls)
        return f
    times = c.alternate({k: timing(k) for k in variants}, a.repeat)
    b = {k: c.best(v) for k, v in times.items()}
    print(f"{'':<28} {'best':>9} {'CPU s (median)':>15} {'cores':>6}")
    for k, v in b.items():
        med = statistics.median(cpu[k])
        print(f"{k:<28} {v:7.2f} s {med:15.2f} {med / statistics.median(times[k]):6.2f}")
    print(f"vqa inline / libvmaf inline: {b['vqa inline'] / b['libvmaf inline (-dec)']:.2f}x")
    print(f"vqa inline / plain transcode: {b['vqa inline'] / b['plain transcode']:.2f}x")
    print(f"vqa inline / two-pass: {b['vqa inline'] / b['two-pass (plain + libvmaf)']:.2f}x")
    if a.floor:
        print(f"vqa inline, psnr only / libvmaf inline: "
              f"{b['vqa inline, psnr only'] / b['libvmaf inline (-dec)']:.2f}x")


if __name__ == "__main__":
    main()
