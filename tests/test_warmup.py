"""Start-up: the warm-up loads the kernels a run needs and says when it has to
compile them (first run after install), and the cache is reused afterwards."""
import os
import subprocess
import sys

SCRIPT = """
import sys
from vqa_core.warmup import start_warm_up
said = []
t = start_warm_up("420", 8, ["psnr"], [], on_compile=lambda: said.append(1))
t.join()
assert t.error is None, t.error
print("compiled" if said else "cached")
"""


def run(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_cold_cache_is_announced_then_reused(tmp_path):
    assert run(tmp_path) == "compiled"
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))
    assert run(tmp_path) == "cached"


SPLIT = """
from vqa_core.features import psnr
from vqa_core.warmup import warm_up
warm_up("420", 8, ["ssim", "psnr"], [], parallel=True)
st = psnr.sse_plane.stats
print(sum(st.cache_hits.values()), sum(st.cache_misses.values()))
"""


def test_cold_compile_is_shared_with_a_helper_process(tmp_path):
    """On a cold cache the warm-up compiles SSIM itself while a helper process
    compiles PSNR into the shared cache; PSNR is then loaded, not compiled."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", SPLIT], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    hits, misses = map(int, r.stdout.split())
    assert hits >= 1 and misses == 0, r.stdout


def test_split_work_balances_compile_time():
    from vqa_core.warmup import split_work
    a, b = split_work([("motion", {}), ("vif", {}), ("adm", {"x": 1})])
    assert a == [("adm", {"x": 1})] and b == [("vif", {}), ("motion", {})]
    a, b = split_work([("psnr", {})])
    assert a == [("psnr", {})] and b == []


LAZY = r"""
import sys
import numpy as np
from vqa_core.warmup import preload
preload().join()
from vqa_core.features import psnr
from vqa_core.features.base import FrameFormat
e = psnr.PSNR()
e.setup(FrameFormat(64, 48, "420", 8))
rng = np.random.default_rng(3)
planes = [rng.integers(0, 256, s).astype(np.uint8) for s in ((48, 64), (24, 32), (24, 32))]
noisy = [np.clip(p.astype(int) + rng.integers(-5, 6, p.shape), 0, 255).astype(np.uint8)
         for p in planes]
print(repr(e.extract(0, planes, noisy)[0][1]))
st = psnr.sse_plane.stats
print(sum(st.cache_hits.values()), sum(st.cache_misses.values()))
print("registries:", "numba.np.arraymath" in sys.modules or "numba.np.npyimpl" in sys.modules)
"""


def test_warm_load_skips_numba_registries(tmp_path):
    """Loading cached kernels after the preload does not import Numba's
    typing and lowering registries (~0.35 s of a warm start-up), and what it
    loads computes what the compiled kernels computed."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def go():
        r = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    vals, counts, reg = go()  # cold: compiles, which loads the registries
    assert counts.split()[1] != "0" and reg == "registries: True"
    vals2, counts2, reg2 = go()  # warm
    assert counts2.split() == ["1", "0"] and reg2 == "registries: False"
    assert vals2 == vals


COVER = r"""
import sys
import numpy as np
from numba.core.registry import CPUDispatcher
from vqa_core import warmup
from vqa_core.engine import Scorer
from vqa_core.features.base import FrameFormat
from vqa_core.models import load_model
w, h, depth = map(int, sys.argv[1:4])
metrics = [m for m in sys.argv[4].split(",") if m]
models = [load_model(m) for m in sys.argv[5].split(",") if m]
warmup.preload().join()
warmup.warm_up("420", depth, metrics, models)


def signatures():
    seen = set()
    for name, mod in list(sys.modules.items()):
        if name.startswith("vqa_core.features."):
            for k, v in vars(mod).items():
                if isinstance(v, CPUDispatcher):
                    seen |= {(name, k, str(s)) for s in v.signatures}
    return seen


before = signatures()
fmt = FrameFormat(w, h, "420", depth)
rng = np.random.default_rng(0)
s = Scorer(fmt, metrics, models)
for i in range(3):
    pl = [rng.integers(0, 1 << depth, (2 * ph, pw)).astype(fmt.dtype) for ph, pw in fmt.plane_shapes()]
    s.push(i, None, tuple(p[ph:] for p, (ph, _) in zip(pl, fmt.plane_shapes())),
           tuple(p[:ph] for p, (ph, _) in zip(pl, fmt.plane_shapes())))
s.finish()
print(sorted(signatures() - before))
"""


def test_warm_up_covers_the_kernels_of_real_frame_sizes():
    """After the warm-up (on its small synthetic pair), scoring real frame
    sizes calls no kernel signature the warm-up did not load: nothing is
    compiled at a real frame on a cold cache (SSIM's box decimation, used
    from 384 rows, once was).  Also for runs warmed on smaller pairs: the
    v0.6.1 model and PSNR (64x64), the v1 models (320x320)."""
    from vqa_core.warmup import WARM_SIZE, warm_size
    assert warm_size(["vif", "adm", "motion", "psnr"]) == (64, 64)
    assert warm_size(["vif", "ssim"]) == WARM_SIZE
    every = ("psnr,ssim,ms_ssim,cambi", "vmaf_v0.6.1,vmaf_v1.0.16_3d0h")
    small = ("psnr", "vmaf_v0.6.1")
    v1 = ("", "vmaf_v1.0.16_3d0h,vmaf_v1.0.16_3d0h_2160")
    assert warm_size(["adm", "motion", "cambi", "speed"]) == (320, 320)
    for w, h, depth, (metrics, models) in ((1920, 1080, 8, every), (320, 240, 8, every),
                                           (1280, 720, 10, every), (1920, 1080, 8, small),
                                           (1280, 720, 10, small), (3840, 2160, 10, small),
                                           (1920, 1080, 8, v1), (3840, 2160, 10, v1)):
        r = subprocess.run([sys.executable, "-c", COVER, str(w), str(h), str(depth), metrics,
                            models], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.strip() == "[]", (w, h, depth, metrics, models, r.stdout)


RARE = r"""
import sys
from numba.core.registry import CPUDispatcher
from vqa_core import warmup
from vqa_core.features import cambi
warmup.preload().join()
warmup.warm_up("420", 8, ["cambi"], [])
print([k for k in ("c_values", "bin_cvals", "topk_binned")
       if not isinstance(getattr(cambi, k), CPUDispatcher) or not getattr(cambi, k).signatures])
"""


def test_warm_up_covers_cambis_binned_pooling():
    """The pooling's binned branch (banded pictures only) is warmed too."""
    r = subprocess.run([sys.executable, "-c", RARE], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, VQA_NATIVE="0"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "[]", r.stdout


WARM_ALL = r"""
import sys
from vqa_core import warmup
from vqa_core.models import load_model
warmup.preload().join()
warmup.warm_up("420", int(sys.argv[1]), ["psnr", "ssim", "ms_ssim", "cambi"],
               [load_model("vmaf_v0.6.1"), load_model("vmaf_v1.0.16_3d0h")])
print(sorted(m for m in ("numba.np.arraymath", "numba.np.npyimpl", "numba.np.arrayobj",
                         "numpy.ma") if m in sys.modules))
"""


def _second_run(script, *args) -> str:
    """stdout of the second of two runs of ``script`` (the first may compile
    the kernels, which imports what a warm load must not)."""
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_warm_load_of_every_kernel_skips_numba_registries():
    """Once every kernel is in the cache, loading them all imports none of
    Numba's heavy modules (numba.np.arraymath alone is 0.3 s: a kernel that
    called ndarray.sum() made every warm start-up load it; numba.np.arrayobj
    ~18 ms: any kernel making or viewing an array, np.empty, np.full,
    a.view; numpy.ma, 15 ms: Numba's typeof of an array asks for np.ma)."""
    for depth in ("8", "10"):
        out = _second_run(WARM_ALL, depth)
        assert out.strip() == "[]", (depth, out)


SYMBOLS = r"""
import sys
import numpy as np
from llvmlite import binding as ll
from numba.core import codegen
from vqa_core import warmup
from vqa_core.models import load_model
warmup.preload().join()
seen = []
lazy = codegen.CPUCodeLibrary._unserialize.__func__


def spy(cls, cg, state):
    seen.append(state)
    return lazy(cls, cg, state)


codegen.CPUCodeLibrary._unserialize = classmethod(spy)
warmup.warm_up("420", int(sys.argv[1]), ["psnr", "ssim", "ms_ssim", "cambi"],
               [load_model("vmaf_v0.6.1"), load_model("vmaf_v1.0.16_3d0h")])
bad = []
for name, kind, (obj, bitcode) in seen:
    mod = ll.parse_bitcode(bitcode)
    ir = {g.name for gs in (mod.functions, mod.global_variables) for g in gs
          if not g.is_declaration}
    if warmup.elf_defined_symbols(obj) != ir:
        bad.append(name)
print(len(seen), bad)
# code compiled now links against a loaded kernel: its bitcode is parsed then
from numba import njit
from vqa_core.features import psnr
libs = [ov.library for ov in psnr.sse_plane.overloads.values()]
print(all(hasattr(lib, "_vqa_bitcode") for lib in libs))


@njit
def twice(a, b):
    return 2 * psnr.sse_plane(a, b)


rng = np.random.default_rng(5)
a = rng.integers(0, 256, (40, 56)).astype(np.uint8)
b = rng.integers(0, 256, (40, 56)).astype(np.uint8)
want = 2 * int(((a.astype(np.int64) - b) ** 2).sum())
print(twice(a, b) == want, psnr.sse_plane(a, b) * 2 == want)
"""


def test_warm_load_takes_symbols_from_the_object_code():
    """The warm load reads the names a kernel defines from its object code's
    ELF symbol table instead of parsing its LLVM bitcode: for every kernel
    of every metric the two sets are the same, nothing parses the bitcode
    until code compiled later links against the kernel, and that code then
    works."""
    for depth in ("8", "10"):
        out = _second_run(SYMBOLS, depth)
        loads, lazy, linked = out.splitlines()
        assert int(loads.split()[0]) >= 25 and loads.split(None, 1)[1] == "[]", loads
        assert lazy == "True" and linked == "True True", out


def test_elf_symbols_of_a_non_elf_object_fall_back():
    from vqa_core.warmup import elf_defined_symbols
    assert elf_defined_symbols(b"\xcf\xfa\xed\xfe" + bytes(60)) is None  # Mach-O
    assert elf_defined_symbols(b"") is None


MASKED = r"""
import sys
import numpy as np
import numba
from numba.core.typing.typeof import typeof_impl
numbas = typeof_impl.dispatch(np.ndarray)
from vqa_core.warmup import preload
preload().join()
assert typeof_impl.dispatch(np.ndarray) is not numbas  # the preload's is in place
a = np.arange(24, dtype=np.uint16).reshape(4, 6)
ro = a.copy()
ro.flags.writeable = False
xs = (a, a[:, ::2], a.T, ro, a.astype(np.float32), np.zeros(3, np.complex128),
      np.zeros((2, 2, 2), np.int8), a[1])
ours = [numba.typeof(x) for x in xs]
print("numpy.ma" in sys.modules)  # Numba's own (next) imports it
assert ours == [numbas(x, None) for x in xs], ours
try:
    numba.typeof(np.ma.masked_array(a))
except numba.core.errors.NumbaTypeError as e:
    print("rejected:", e)
"""


def test_plain_array_typeof_is_numbas():
    """The preload's typeof for plain arrays (no numpy.ma import) types them
    as Numba's own does (layouts, dtypes, read-only), without importing
    numpy.ma, and leaves subclasses to Numba: a masked array is refused."""
    r = subprocess.run([sys.executable, "-c", MASKED], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ma, rejected = r.stdout.splitlines()
    assert ma == "False"
    assert rejected.startswith("rejected:") and "MaskedArray" in rejected, rejected


def test_vif_adm_cambi_kernels_are_compiled_without_reference_counting():
    """VIF's, ADM's and CAMBI's kernels make no arrays and are compiled
    without Numba's reference counting (5-6% of their time), where Numba
    has the option."""
    from numba.core.cpu import CPUTargetOptions
    from numba.core.registry import CPUDispatcher
    from vqa_core.features import adm, cambi, vif
    from vqa_core.features._par import KERNEL
    if not hasattr(CPUTargetOptions, "_nrt"):
        assert "_nrt" not in KERNEL
        return
    for mod in (vif, adm, cambi):
        kernels = [v for v in vars(mod).values() if isinstance(v, CPUDispatcher)]
        assert len(kernels) >= 10, mod
        for k in kernels:
            assert k.targetoptions.get("_nrt") is False, (mod.__name__, k.py_func.__name__)


OPTIONAL = """
import os, sys
import vqa_core.warmup as w
w.SKIP_OPTIONAL_IMPORTS = sys.argv[1] == "skip"
w.preload().join()
import numba  # the preload imported it
print(sorted(m for m in ("scipy", "yaml") if m in sys.modules))
import scipy, yaml  # importable afterwards all the same
print(scipy.__version__)
"""


def test_command_imports_numba_without_scipy_and_yaml(tmp_path):
    """The command's preload imports Numba as if SciPy and PyYAML were not
    installed (Numba only checks SciPy's version and reads an optional YAML
    file: ~20 ms of imports); they stay importable.  Stand-in packages that
    record their import make the test independent of what is installed."""
    mark = tmp_path / "imported.txt"
    for name, body in (("scipy", "__version__ = '1.11.0'\n"), ("yaml", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"import os\nopen(os.environ['VQA_TEST_MARK'], 'a').write('{name}\\n')\n" + body)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        VQA_TEST_MARK=str(mark))
    out = {}
    for mode in ("skip", "plain"):
        mark.write_text("")
        r = subprocess.run([sys.executable, "-c", OPTIONAL, mode], capture_output=True,
                           text=True, env=env, timeout=300, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        out[mode] = (r.stdout.split("\n")[:2], sorted(mark.read_text().split()))
    # plain: Numba imports both during its import; skip: neither until asked for
    assert out["plain"] == (["['scipy', 'yaml']", "1.11.0"], ["scipy", "yaml"])
    assert out["skip"] == (["[]", "1.11.0"], ["scipy", "yaml"])
    # the command sets it; the library (vqa_core used from a program) does not
    r = subprocess.run([sys.executable, "-c",
                        "import sys; sys.argv = ['vqa', '--version']\n"
                        "import vqa_core.warmup as w; a = w.SKIP_OPTIONAL_IMPORTS\n"
                        "from vqa_filter import cli; cli.main()\n"
                        "print(a, w.SKIP_OPTIONAL_IMPORTS)"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split("\n")[-2] == "False True", r.stdout + r.stderr


GC_SCRIPT = """
import gc, sys
from vqa_core import warmup
from vqa_core.warmup import pause_gc, preload, start_warm_up
pause_gc()
seen = []
def compiling():
    seen.append(gc.isenabled())
t = start_warm_up(sys.argv[1], 8, ["psnr"], [], on_compile=compiling, after=preload())
t.join()
print(gc.isenabled(), gc.get_freeze_count() > 0, seen, type(t.error).__name__)
"""


def test_command_pauses_the_garbage_collector_until_the_kernels_are_loaded(tmp_path):
    """The command turns the collector off at its start (its passes over
    Numba's objects cost 30-40 ms of start-up) and the warm-up turns it back
    on when the kernels are loaded (frozen), at once when it has to compile
    (the compiler makes garbage), and after a failed warm-up too."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def run(chroma):
        r = subprocess.run([sys.executable, "-c", GC_SCRIPT, chroma], capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout.split()

    # cold cache: on again from the first compilation; warm: on again, frozen
    assert run("420") == ["True", "True", "[True]", "NoneType"]
    assert run("420") == ["True", "True", "[]", "NoneType"]
    # a warm-up that fails (an unknown chroma layout) turns it back on too
    assert run("411")[:2] == ["True", "False"]


def test_pause_gc_leaves_a_collector_it_did_not_stop_alone():
    import gc
    from vqa_core.warmup import pause_gc, resume_gc
    assert gc.isenabled()
    try:
        pause_gc()
        assert not gc.isenabled()
        resume_gc()
        assert gc.isenabled()
        gc.disable()  # someone else's choice: not undone
        pause_gc()
        resume_gc()
        assert not gc.isenabled()
    finally:
        gc.enable()
    # the command pauses it; the library (vqa_core used from a program) does not
    r = subprocess.run([sys.executable, "-c",
                        "import gc, sys; sys.argv = ['vqa', '--version']\n"
                        "from vqa_filter import cli\n"
                        "orig = cli._main\n"
                        "cli._main = lambda a: (print('paused', not gc.isenabled()), orig(a))[1]\n"
                        "cli.main()\n"
                        "print('after', gc.isenabled())\n"
                        "cli.main(['--version'])\n"
                        "gc.disable()  # someone else's choice: the command leaves it\n"
                        "cli._gc_paused = False\n"
                        "cli.main()\n"
                        "print('left', gc.isenabled())\n"],
                       capture_output=True, text=True, timeout=120)
    lines = [x for x in r.stdout.splitlines() if not x.startswith("vqa ")]
    assert r.returncode == 0 and lines == ["paused True", "after True", "paused False",
                                           "paused True", "left False"], r.stdout + r.stderr
