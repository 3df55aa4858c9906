#!/usr/bin/env python3
"""Peak memory and throughput on a 4K 10-bit pair, next to libvmaf's.

    python benchmarks/memory_4k.py [--model vmaf_v1.0.16_1d5h_2160] [--frames 48]

Runs ``vqa compare`` on a 3840x2160 10-bit y4m pair and reports the peak
resident memory of vqa's process and of the ffmpeg it runs, and their sum
(what the machine must hold; the figure to keep under 1.5 GiB), then
libvmaf's (one ffmpeg process) on the same pair, each the largest of
``--mem-runs`` runs watched from /proc (ffmpeg's peak varies from run to run
with how full its queues get); then times both, alternating, without the
watcher (best of ``--repeat``), for the frames per second and the ratio.  Run it with two lengths
(e.g. --frames 24 and --frames 96) to see that memory does not grow with the
clip.
"""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import common as c  # noqa: E402


def peak_rss(cmd):
    """(seconds, peak RSS MiB of the process itself, peak RSS MiB of its children)."""
    t = time.perf_counter()
    p = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0, 0]

    def watch():
        while p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for ln in f:
                        if ln.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(ln.split()[1]))
                kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                      text=True).stdout.split()
                for k in kids:
                    with open(f"/proc/{k}/status") as f:
                        for ln in f:
                            if ln.startswith("VmHWM:"):
                                peak[1] = max(peak[1], int(ln.split()[1]))
            except OSError:
                pass
            time.sleep(0.2)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    _, err = p.communicate()
    th.join()
    if p.returncode:
        sys.exit(err.decode()[-2000:])
    return time.perf_counter() - t, peak[0] / 1024, peak[1] / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vmaf_v1.0.16_1d5h_2160")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each, alternating")
    ap.add_argument("--mem-runs", type=int, default=2, help="watched runs of each for the peaks")
    a = ap.parse_args()
    ref = c.source("3840x2160", a.frames, "yuv420p10le")
    dis = c.distorted(ref, crf=30)
    n = c.frames_of(ref)
    threads = os.cpu_count() or 1
    vqa = c.vqa_cmd() + ["compare", "-q", "--model", a.model, ref, dis]
    c.warm(c.vqa_cmd() + ["compare", "-q", "--model", a.model, c.source("3840x2160", 2, "yuv420p10le"),
                          c.source("3840x2160", 2, "yuv420p10le")])  # the JIT cache, the native library
    print(c.native_state())
    lv = [c.ffmpeg(), "-hide_banner", "-nostdin", "-i", dis, "-i", ref, "-lavfi",
          f"[0:v][1:v]libvmaf=model={c.esc('version=' + a.model)}:n_threads={threads}", "-f", "null", "-"]
    print(f"pair: {ref.name}, {n} frames")
    # memory: one run each, watched from /proc; times: without the watcher
    # (it spawns pgrep every 0.2 s), alternating, best of --repeat
    runs = [peak_rss(vqa) for _ in range(max(1, a.mem_runs))]
    rss = max(r[1] for r in runs)
    ff_rss = max(r[2] for r in runs)
    both = max(r[1] + r[2] for r in runs)
    lrss = max(peak_rss(lv)[1] for _ in range(max(1, a.mem_runs)))
    times = c.alternate({"vqa": lambda: c.timed(vqa), "libvmaf": lambda: c.timed(lv)}, a.repeat)
    tv, tl = c.best(times["vqa"]), c.best(times["libvmaf"])
    print(f"vqa      {tv:7.2f} s {n / tv:6.2f} fps  peak RSS {both:7.0f} MiB with its ffmpeg "
          f"(vqa {rss:.0f} MiB, ffmpeg {ff_rss:.0f} MiB; figure: at most 1536 MiB)")
    print(f"libvmaf  {tl:7.2f} s {n / tl:6.2f} fps  peak RSS {lrss:7.0f} MiB (ffmpeg + libvmaf)")
    print(f"throughput ratio (libvmaf time / vqa time): {tl / tv:.2f}x")


if __name__ == "__main__":
    main()
