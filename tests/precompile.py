"""Compile the kernels of the common frame formats in a background process
while the test session runs (see conftest.py).

A fresh clone has no Numba cache, and most of the suite's time is Numba
compiling kernels the first time a test calls them, on one core.  This
process compiles the same kernels (the extractors of every built-in metric
and of two VMAF models, for 4:2:0 8-bit and 10-bit frames) into the shared
cache on the other core, in about the reverse of the order in which the
test files need them, so that the two meet half way; a test that reaches a
kernel already compiled here loads it instead.  It changes no result: a
kernel compiled here is the same code the test would have compiled."""
import os
import subprocess
import sys

#: the running background process, if any (see start and stop)
_proc = []

#: roughly the reverse of the test files' (alphabetical) order
ORDER = ("vif", "ssim", "speed", "psnr", "ms_ssim", "motion", "cambi", "adm")


def main() -> None:
    try:
        os.nice(10)  # the tests in the foreground come first
    except OSError:
        pass
    from vqa_core.engine import EXTRACTOR_METRICS, Scorer
    from vqa_core.models import load_model
    from vqa_core.warmup import _warm_format, warm_extractors
    models = [load_model("vmaf_v0.6.1"), load_model("vmaf_v1.0.16_3d0h")]
    for depth in (8, 10):
        fmt = _warm_format("420", depth)
        specs = [(n, dict(o)) for n, o in Scorer(fmt, list(EXTRACTOR_METRICS), models).extractors]
        specs.sort(key=lambda s: ORDER.index(s[0]) if s[0] in ORDER else len(ORDER))
        for spec in specs:
            warm_extractors("420", depth, [spec])
            print(f"precompiled {spec[0]} {depth}-bit", file=sys.stderr, flush=True)


def start() -> None:
    """Start the background compilation (conftest.py does, for a whole-suite run)."""
    _proc.append(subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))


def stop() -> None:
    """End it (at the session's end, or before a test that measures speed or
    memory and wants the CPU to itself)."""
    while _proc:
        p = _proc.pop()
        if p.poll() is None:
            p.kill()
        p.wait()


if __name__ == "__main__":
    main()
