"""Shared helpers of the benchmark scripts: media generation, timing, the
bundled ffmpeg.  Benchmarks time vqa and its anchor (libvmaf, plain ffmpeg)
on the same input in the same run, alternating, and print ratios."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

CACHE = Path(os.environ.get("VQA_BENCH_DIR", "/tmp/vqa-bench"))


def ffmpeg() -> str:
    exe = os.environ.get("VQA_FFMPEG")
    if exe:
        return exe
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-3000:]}")
    return r


def natural(size: str, frames: int, rate: int = 25) -> str:
    """The lavfi source of the tests: fractal texture with grain and motion."""
    return (f"mandelbrot=size={size}:rate={rate}:start_scale=0.5,noise=alls=12:allf=t,"
            f"gblur=sigma=0.8,hue=H=t/2:s=0.8,trim=end_frame={frames}")


def source(size: str = "1920x1080", frames: int = 120, pix_fmt: str = "yuv420p") -> Path:
    """A y4m source clip, made once and cached under $VQA_BENCH_DIR."""
    CACHE.mkdir(parents=True, exist_ok=True)
    p = CACHE / f"src_{size}_{frames}_{pix_fmt}.y4m"
    if not p.exists():
        tmp = p.with_suffix(".tmp.y4m")
        run([ffmpeg(), "-hide_banner", "-y", "-f", "lavfi", "-i", natural(size, frames),
             "-pix_fmt", pix_fmt, "-strict", "-1", tmp])
        tmp.rename(p)
    return p


def distorted(src: Path, crf: int = 30, scale: str | None = None) -> Path:
    """An x264 (x265 beyond 8 bits) encode of src decoded back to y4m at
    src's size; ``scale`` (e.g. "960:540") encodes at a lower resolution and
    scales back with bicubic."""
    tag = f"crf{crf}" + (f"_s{scale.replace(':', 'x')}" if scale else "")
    out = src.with_name(src.stem + f"_{tag}.y4m")
    if out.exists():
        return out
    enc = src.with_name(src.stem + f"_{tag}.mkv")
    ten = "10" in src.stem or "12" in src.stem
    vf = ["-vf", f"scale={scale}:flags=bicubic"] if scale else []
    codec = (["-c:v", "libx265", "-x265-params", f"log-level=0:crf={crf}"] if ten
             else ["-c:v", "libx264", "-preset", "fast", "-crf", str(crf)])
    run([ffmpeg(), "-hide_banner", "-y", "-i", src, *vf, *codec, enc])
    w, h = _size_of(src)
    tmp = out.with_suffix(".tmp.y4m")
    pix = _pix_of(src)
    run([ffmpeg(), "-hide_banner", "-y", "-i", enc, "-vf", f"scale={w}:{h}:flags=bicubic",
         "-pix_fmt", pix, "-strict", "-1", tmp])
    tmp.rename(out)
    return out


def _header(p: Path) -> List[str]:
    with open(p, "rb") as f:
        return f.readline().decode().split()


def _size_of(p: Path):
    h = _header(p)
    return (int(next(t[1:] for t in h if t[0] == "W")), int(next(t[1:] for t in h if t[0] == "H")))


def _pix_of(p: Path) -> str:
    c = next((t[1:] for t in _header(p) if t[0] == "C"), "420jpeg")
    import re
    m = re.match(r"(420|422|444)(?:p(\d+))?", c)
    base = f"yuv{m.group(1)}p"
    return base + (f"{m.group(2)}le" if m.group(2) else "")


def add_pair_args(ap) -> None:
    """The optional positionals REFERENCE DISTORTED: a y4m pair of one's own
    (parse with ``parse_intermixed_args`` so that they may follow options)."""
    ap.add_argument("reference", nargs="?", help="a y4m pair of your own (default: the "
                    "benchmark clip and its x264 encode)")
    ap.add_argument("distorted", nargs="?")


def pair(a, size: str, frames: int, pix_fmt: str = "yuv420p") -> Tuple[Path, Path]:
    """(reference, distorted): the pair given (:func:`add_pair_args`), else
    the benchmark clip of that size, length and format and its x264 encode."""
    if a.reference and a.distorted:
        return Path(a.reference), Path(a.distorted)
    ref = source(size, frames, pix_fmt)
    return ref, distorted(ref)


def frames_of(p: Path) -> int:
    """Frame count of a y4m file from its size."""
    w, h = _size_of(p)
    pix = _pix_of(p)
    bps = 2 if pix.endswith("le") else 1
    sub = {"420": 1.5, "422": 2.0, "444": 3.0}[pix[3:6]]
    fb = int(w * h * sub) * bps + 6
    hdr = len(" ".join(_header(p))) + 1
    return (p.stat().st_size - hdr) // fb


def timed(cmd: Sequence[str], env=None) -> float:
    t = time.perf_counter()
    run(cmd, env=env)
    return time.perf_counter() - t


def cpu_timed(cmd: Sequence[str], env=None) -> Tuple[float, float]:
    """(timed(), the CPU seconds (user + system) of the command and all its
    children)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    dt = timed(cmd, env=env)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dt, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime


def alternate(runs: Dict[str, Callable[[], float]], repeat: int) -> Dict[str, List[float]]:
    """Call each timing function in turn, ``repeat`` rounds; all times per name."""
    out: Dict[str, List[float]] = {k: [] for k in runs}
    for i in range(repeat):
        for k, f in runs.items():
            dt = f()
            out[k].append(dt)
            print(f"  round {i + 1}: {k:<28} {dt:7.2f} s", flush=True)
    return out


def warm(cmd: Sequence[str], env=None) -> None:
    """Run ``cmd`` (a vqa command) until its kernels are all cached: Numba's
    cache, then vqa's native library, which the command builds in the
    background after a run that needed Numba (``vqa_core/_native.py``): its
    build is waited for; twice, so that the timed runs find nothing left
    to build (the second run's build has nothing to add when the first's
    covered everything, as it should)."""
    from vqa_core import _native
    for _ in range(2):
        run(cmd, env=env)
        _native.wait_for_builds()


def native_state() -> str:
    """How vqa's kernels are called in these runs (printed with the figures)."""
    from vqa_core import _native
    if not _native.enabled():
        return "kernels: Numba (VQA_NATIVE=0)"
    n = len(_native.read_manifest()["entries"])
    return f"kernels: native library, {n} entries ({_native.folder()})"


def best(times: List[float]) -> float:
    return min(times)


def vqa_cmd() -> List[str]:
    """vqa as users start it: the ``vqa`` console script installed next to
    this Python (``python -m vqa_filter.cli`` if there is none), with its
    modules' byte code written (:func:`byte_compile`)."""
    byte_compile()
    script = Path(sys.executable).with_name("vqa")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "vqa_filter.cli"]


_compiled = False


def byte_compile() -> None:
    """Write the byte code of vqa's modules, once per benchmark run.

    A regular ``pip install`` writes it at install time, but an editable
    checkout only gets it from the interpreter, and never where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on the benchmark machine): then
    every vqa start compiles its sources again, 60-70 ms that an installed
    vqa does not spend.  ``-m`` would compile the CLI module at every start
    too (``__main__`` is never cached), hence the console script."""
    global _compiled
    if _compiled:
        return
    import compileall
    import importlib.util
    for pkg in ("vqa_filter", "vqa_core"):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            for d in spec.submodule_search_locations:
                compileall.compile_dir(d, quiet=1)
    _compiled = True


def child_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def esc(s: str) -> str:
    return "'" + s.replace(":", "\\:") + "'"
