#!/usr/bin/env python3
"""Where an extractor's time goes: ``perf`` samples with Numba's JIT code named.

    python benchmarks/profile_kernels.py vif [--seconds 10] [--model M] [REF.y4m DIS.y4m]

Runs one extractor in-process on the benchmark pair (as ``kernels.py``),
compiling its kernels in a fresh Numba cache so that their machine code is
known to this process, writes ``/tmp/perf-<pid>.map`` (the address range of
every compiled function, the format ``perf report`` reads for JIT code), then
runs ``perf record`` on itself while the extractor loops, and prints the
per-function share of the samples.  Needs ``perf`` (software cpu-clock
events are enough; no hardware counters on these VMs).

Functions that LLVM inlined into their callers are counted in the caller
(Numba's ``@intrinsic`` kernels always are).  This is a diagnosis tool: it has
no anchor and prints no ratio.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import common as c  # noqa: E402


def _symbols():
    """{address: name} of every function compiled in this process."""
    from numba.core.registry import CPUDispatcher
    syms = {}
    for modname, mod in list(sys.modules.items()):
        if not modname.startswith("vqa_core"):
            continue
        for f in list(vars(mod).values()):
            if not isinstance(f, CPUDispatcher):
                continue
            for cres in f.overloads.values():
                todo, seen = [cres.library], set()
                while todo:
                    lib = todo.pop()
                    if id(lib) in seen:
                        continue
                    seen.add(id(lib))
                    todo.extend(getattr(lib, "_linking_libraries", ()))
                    fm = getattr(lib, "_final_module", None)
                    if fm is None:  # loaded from a cache: no symbols
                        continue
                    for fn in fm.functions:
                        if fn.is_declaration:
                            continue
                        try:
                            a = lib.get_pointer_to_function(fn.name)
                        except Exception:
                            continue
                        if a:
                            syms[a] = fn.name
    return syms


def _short(name):
    """module.function from Numba's Itanium-mangled name."""
    if not name.startswith("_ZN"):
        return name
    parts, s = [], name[3:]
    while s and s[0].isdigit():
        n = re.match(r"\d+", s).group()
        parts.append(s[len(n):len(n) + int(n)])
        s = s[len(n) + int(n):]
    return ".".join(parts[-2:]) if parts else name


def write_perf_map():
    syms = _symbols()
    addrs = sorted(syms)
    path = f"/tmp/perf-{os.getpid()}.map"
    with open(path, "w") as fh:
        for i, a in enumerate(addrs):
            size = min(addrs[i + 1] - a if i + 1 < len(addrs) else 4096, 1 << 20)
            fh.write(f"{a:x} {size:x} {_short(syms[a])}\n")
    return path, len(addrs)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("extractor")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--model", help="profile the extractor with the options this VMAF model "
                    "gives it (e.g. vmaf_v1.0.16_3d0h: ADM with AIM, CAMBI at 1080p) "
                    "instead of its defaults")
    c.add_pair_args(ap)
    a = ap.parse_intermixed_args()
    if not os.environ.get("VQA_PROFILE_CHILD"):
        # compile in a fresh cache: only code compiled here has symbols
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, NUMBA_CACHE_DIR=d, VQA_PROFILE_CHILD="1",
                       VQA_NATIVE="0")  # Numba's JIT code, named by the perf map
            sys.exit(subprocess.call([sys.executable] + sys.argv, env=env))
    import kernels
    from vqa_core.features.registry import get_extractor
    n = 24
    ref, dis = c.pair(a, a.size, n)
    refs, fmt = kernels.read_frames(ref, n)
    dists, _ = kernels.read_frames(dis, n)
    opts = {}
    if a.model:
        from vqa_core.models.vmaf import load_model_spec
        mine = [o for nm, o in load_model_spec(a.model).extractors() if nm == a.extractor]
        if not mine:
            ap.error(f"{a.model} does not use {a.extractor}")
        opts = mine[-1]
    ext = get_extractor(a.extractor)(**opts)
    ext.setup(fmt)

    def run():
        for i in range(n):
            ext.extract(i, refs[i], dists[i])
        ext.flush()

    run()  # compile
    path, count = write_perf_map()
    out = tempfile.mktemp(suffix=".perf")
    rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-p",
                            str(os.getpid()), "-o", out],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    t0, frames = time.perf_counter(), 0
    while time.perf_counter() - t0 < a.seconds:
        run()
        frames += n
    per = (time.perf_counter() - t0) / frames * 1000
    rec.send_signal(2)
    rec.wait()
    rep = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", "symbol",
                          "--stdio"], capture_output=True, text=True).stdout
    os.unlink(out)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(opts.items())) or "defaults"
    print(f"{a.extractor} ({shown}): {per:.2f} ms per {a.size} frame (one thread) "
          f"while sampled; {count} JIT functions mapped ({path})")
    lines = [l for l in rep.splitlines() if "%" in l and not l.startswith("#")]
    for l in lines[:a.top]:
        print(re.sub(r"\s+", " ", l).strip().replace(" [.] ", "  ").rstrip(" -"))


if __name__ == "__main__":
    main()
