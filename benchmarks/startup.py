#!/usr/bin/env python3
"""Start-up: time from command start to the first scored frame, warm and cold.

    python benchmarks/startup.py [--model vmaf_v0.6.1] [--cold]

Warm: the caches are filled first (Numba's, and vqa's native kernel library,
built in the background after a run; ``VQA_NATIVE=0`` in the environment
measures Numba's way), then ``vqa compare --log -`` is started and the time
until its first record line arrives is measured (best of 5).  ``--cold`` also
measures a run with empty caches (NUMBA_CACHE_DIR and VQA_NATIVE_DIR pointed
at a fresh folder), i.e. the first run after install, and prints how long the
compilation took.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import common as c  # noqa: E402


def first_record(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, text=True)
    line = p.stdout.readline()
    first = time.perf_counter() - t
    p.stdout.read()
    p.wait()
    total = time.perf_counter() - t
    if not line:
        sys.exit(f"no record from {' '.join(map(str, cmd))}: {p.stderr.read()[-2000:]}")
    return first, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vmaf_v0.6.1")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--cold", action="store_true")
    a = ap.parse_args()
    ref = c.source(a.size, 24)
    dis = c.distorted(ref)
    cmd = c.vqa_cmd() + ["compare", "--no-progress", "--model", a.model, "--log", "-", ref, dis]
    c.warm(cmd)  # fill the caches (Numba's, the native library)
    print(c.native_state())
    warm = [first_record(cmd) for _ in range(5)]
    print(f"warm cache: first frame after {min(w[0] for w in warm):.2f} s "
          f"(best of 5; whole 24-frame run {min(w[1] for w in warm):.2f} s)")
    if a.cold:
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, NUMBA_CACHE_DIR=d, VQA_NATIVE_DIR=os.path.join(d, "native"))
            f, tot = first_record(cmd, env)
            print(f"cold cache: first frame after {f:.2f} s (whole run {tot:.2f} s)")
            # the native library build the cold run started: let it end
            # before its folder goes (and before anything else is timed)
            c.run([sys.executable, "-c", "from vqa_core import _native; _native.wait_for_builds()"],
                  env=env)


if __name__ == "__main__":
    main()
