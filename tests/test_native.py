"""The native kernel library (vqa_core/_native.py) and the lazy decorators
(vqa_core/features/_jit.py): Numba's machine code called without Numba gives
Numba's results; anything the library cannot take goes to Numba."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from oracle import encode, make_clip
from vqa_core import _native
from vqa_core.features import _jit, motion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOTION = "vqa_core.features.motion.motion_sad"
MOTION_SPEC = ["a:uint8:2", "a:uint8:2", "i", "a:int64:1", "a:int32:1", "a:int16:2", "i"]

pytestmark = pytest.mark.skipif(not (sys.platform.startswith("linux")
                                     and os.uname().machine in ("x86_64", "aarch64")),
                                reason="the native library is built on Linux x86-64/aarch64 only")


@pytest.fixture
def native_dir(tmp_path, monkeypatch):
    """This process (and its children) with the library on, in a folder of
    the test's own."""
    monkeypatch.setenv("VQA_NATIVE", "1")
    monkeypatch.setenv("VQA_NATIVE_DIR", str(tmp_path / "native"))
    return tmp_path / "native"


def _env(native_dir, **kw):
    env = dict(os.environ, VQA_NATIVE="1", VQA_NATIVE_DIR=str(native_dir))
    env.update(kw)
    return env


def test_feature_modules_import_without_numba():
    code = ("import sys\n"
            "import vqa_core.features.adm, vqa_core.features.vif, vqa_core.features.motion\n"
            "import vqa_core.features.cambi, vqa_core.features.speed, vqa_core.features.ssim\n"
            "import vqa_core.features.ms_ssim, vqa_core.features.psnr, vqa_core.warmup\n"
            "import vqa_filter.session\n"
            "print(sorted(m for m in ('numba', 'llvmlite') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, VQA_NATIVE="0"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_num_threads_without_numba():
    code = ("import sys\nfrom vqa_core.features._jit import num_threads\n"
            "print(num_threads(), 'numba' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, NUMBA_NUM_THREADS="3"))
    assert r.stdout.split() == ["3", "False"], r.stderr
    from numba import config
    assert _jit.num_threads() == config.NUMBA_NUM_THREADS


def test_spec_of_numba_signatures():
    from numba import types
    arr = types.Array(types.uint8, 2, "C")
    sig = types.int64(arr, types.float64, types.float32, types.boolean, types.int64)
    assert _native.spec_of(sig) == (["a:uint8:2", "f", "s", "b", "i"], "i")
    assert _native.spec_of(types.none(types.Array(types.int32, 3, "C"))) == (["a:int32:3"], "v")
    # what the library cannot take: Numba's
    assert _native.spec_of(types.none(types.Array(types.uint8, 2, "A"))) is None
    assert _native.spec_of(types.none(types.Array(types.uint8, 2, "C", readonly=True))) is None
    assert _native.spec_of(types.none(types.int32)) is None
    # tuples of scalars come back through int64 and float64 slots
    assert _native.spec_of(types.UniTuple(types.float32, 4)(arr)) == (["a:uint8:2"], "T:ssss")
    mixed = types.Tuple((types.int64, types.float64, types.boolean))
    assert _native.spec_of(mixed(types.int64)) == (["i"], "T:ifb")
    assert _native.spec_of(types.Tuple((types.int64, arr))(types.int64)) is None


def _frames(h=72, w=90, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (h, w), dtype=np.uint8),
            rng.integers(0, 256, (h, w), dtype=np.uint8))


def test_native_kernel_equals_numba_and_refuses_other_types(native_dir):
    built, failed = _native.build([{"kernel": MOTION, "args": MOTION_SPEC, "ret": "i"}], block=True)
    assert (built, failed) == (1, 0)
    m = _native.read_manifest()
    assert [e["kernel"] for e in m["entries"]] == [MOTION]
    (call,) = _native._load()[MOTION]
    a, b = _frames()
    for nb in (1, 3):
        yrow = np.zeros(a.shape[1] + 4, np.int64)
        y32 = np.zeros(a.shape[1] + 4, np.int32)
        dr = np.zeros((8, a.shape[1]), np.int16)
        want = motion.motion_sad(a, b, 8, yrow, y32, dr, nb)  # Numba's dispatcher (the suite activated it)
        got = call(a, b, 8, np.zeros_like(yrow), np.zeros_like(y32), np.zeros_like(dr), nb)
        assert type(got) is int and got == want
    yrow = np.zeros(a.shape[1] + 4, np.int64)
    y32 = np.zeros(a.shape[1] + 4, np.int32)
    dr = np.zeros((8, a.shape[1]), np.int16)
    with pytest.raises(_jit._Miss):  # another dtype
        call(a.astype(np.uint16), b.astype(np.uint16), 8, yrow, y32, dr, 1)
    with pytest.raises(_jit._Miss):  # a float for an int64
        call(a, b, 8.0, yrow, y32, dr, 1)
    with pytest.raises(_jit._Miss):  # a bool is not an int64 to Numba
        call(a, b, True, yrow, y32, dr, 1)
    with pytest.raises(_jit._Miss):  # int64 scratch where int32 is due
        call(a, b, 8, yrow, yrow, dr, 1)
    with pytest.raises(ValueError):  # a 1-d array where a 2-d one is due (Kernel: Numba)
        call(a, b, 8, yrow, y32, dr[0], 1)
    with pytest.raises((ValueError, BufferError, TypeError)):  # not C-contiguous
        call(a[:, ::2], b[:, ::2], 8, yrow, y32, dr, 1)
    # np.int64 scalars are int64 to Numba too
    assert (call(a, b, np.int64(8), yrow, y32, dr, np.int64(2))
            == motion.motion_sad(a, b, 8, yrow, y32, dr, 2))


def test_kernel_proxy_falls_back_to_numba(native_dir, tmp_path, monkeypatch):
    """A kernel that raises in native code, and arguments the library lacks,
    go to Numba: the same exception, the same results."""
    mod = tmp_path / "vqa_native_probe.py"
    mod.write_text(textwrap.dedent("""
        from vqa_core.features._jit import njit

        import numpy as np

        @njit(cache=False)
        def div(a, b):
            return a // b

        @njit(cache=False)
        def stats(x, scale):
            s = np.float32(0)
            for i in range(x.shape[0]):
                for j in range(x.shape[1]):
                    s += np.float32(x[i, j])
            return x.shape[0] * x.shape[1], s * np.float32(scale), s > 100, scale * 0.5
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import vqa_native_probe as probe
    name = "vqa_native_probe.div"
    assert _native.build([{"kernel": name, "args": ["i", "i"], "ret": "i"}], block=True) == (1, 0)
    (call,) = _native._load()[name]
    assert call(7, 2) == 3 and call(-7, 2) == -4
    with pytest.raises(_jit._Miss):  # the kernel raised: Numba will say what
        call(7, 0)
    # a tuple of an int, a float32, a bool and a float64
    stats = "vqa_native_probe.stats"
    spec = ["a:uint16:2", "f"]
    assert _native.build([{"kernel": stats, "args": spec, "ret": "T:isbf"}], block=True) == (1, 0)
    (tcall,) = _native._load()[stats]
    x = np.arange(12, dtype=np.uint16).reshape(3, 4)
    for scale in (0.3, 25.0):
        got, want = tcall(x, scale), probe.stats(x, scale)
        assert got == want and [type(v) for v in got] == [int, float, bool, float]
    k = _jit.Kernel(probe.div.py_func, {"cache": False})
    k.natives, k._looked = (call,), True
    assert k(9, 4) == 2
    with pytest.raises(ZeroDivisionError):
        k(1, 0)
    assert k(9.0, 2.0) == 4.0  # float64 arguments: Numba's own version
    assert k.name in _jit.used  # what the next build adds


def test_damaged_library_is_skipped(native_dir):
    assert _native.build([{"kernel": MOTION, "args": MOTION_SPEC, "ret": "i"}], block=True) == (1, 0)
    m = _native.read_manifest()
    with open(os.path.join(_native.folder(), m["entries"][0]["lib"]), "wb") as f:
        f.write(b"not a library")
    assert _native._load() == {}


def test_unbuildable_entry_is_recorded_once(native_dir):
    entry = {"kernel": "vqa_core.features.motion.no_such_kernel", "args": ["i"], "ret": "i"}
    assert _native.build([entry], block=True) == (0, 1)
    assert _native.build([entry], block=True) == (0, 0)  # not tried again
    assert _native.read_manifest()["failed"] == [_native._key(entry)]


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    t = tmp_path_factory.mktemp("native")
    # 320x320: the v1 models' SpEED needs chroma of 80x80 after its prescale
    ref = make_clip(t / "ref.y4m", size="320x320", duration=0.24)
    dis = encode(ref, t / "dis.y4m", ["-vf", "gblur=sigma=1", "-strict", "-1"])
    return t, ref, dis


MODELS = ["--model", "vmaf_v0.6.1", "--model", "vmaf_v1.0.16_3d0h", "--features"]
_RUN = ("import sys, json\n"
        "from vqa_filter import cli\n"
        "rc = cli.main(json.loads(sys.argv[1]))\n"
        "print(json.dumps([rc, 'numba' in sys.modules]))\n")


def test_vmaf_run_native_equals_numba_and_imports_no_numba(small_pair, tmp_path):
    """The command builds the library after a run (in the background); the
    next run loads it, never imports Numba and writes the same records (both
    models' scores and every feature: all the VMAF kernels)."""
    t, ref, dis = small_pair
    lib = tmp_path / "native"
    logs = [tmp_path / f"log{i}.jsonl" for i in range(2)]
    # the command itself (python -m vqa_filter.cli): its end starts the build
    # of every kernel it called through Numba (on a cold cache as on a warm one)
    wait = ("import sys\nfrom vqa_core import _native\n"
            "sys.exit(0 if _native.wait_for_builds(300) else 1)\n")
    r = subprocess.run([sys.executable, "-m", "vqa_filter.cli", "compare", "-q", *MODELS,
                        "--log", str(logs[0]), str(ref), str(dis)], capture_output=True,
                       text=True, cwd=ROOT, env=_env(lib))
    assert r.returncode == 0, r.stderr
    assert subprocess.run([sys.executable, "-c", wait], cwd=ROOT, env=_env(lib)).returncode == 0
    (folder,) = [p for p in lib.iterdir() if p.is_dir()]
    m = json.loads((folder / "manifest.json").read_text())
    kernels = {e["kernel"].rsplit(".", 1)[1] for e in m["entries"]}
    assert {"vif_scale_sums", "dwt2", "measure_level", "motion_sad", "c_values",
            "find_runs", "plane_gsm"} <= kernels, m
    assert not m["failed"], m.get("errors")
    args = ["compare", "-q", *MODELS, "--log", str(logs[1]), str(ref), str(dis)]
    r = subprocess.run([sys.executable, "-c", _RUN, json.dumps(args)], capture_output=True,
                       text=True, cwd=ROOT, env=_env(lib))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [0, False]  # no Numba
    a, b = (p.read_text().splitlines() for p in logs)
    assert len(a) == 6 and a == b
    # without the library: Numba, and again the same records
    log3 = tmp_path / "log3.jsonl"
    args = ["compare", "-q", *MODELS, "--log", str(log3), str(ref), str(dis)]
    r = subprocess.run([sys.executable, "-c", _RUN, json.dumps(args)], capture_output=True,
                       text=True, cwd=ROOT, env=_env(lib, VQA_NATIVE="0"))
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [0, True]
    assert log3.read_text().splitlines() == a


def test_status_and_wait_commands(native_dir):
    assert _native.build([{"kernel": MOTION, "args": MOTION_SPEC, "ret": "i"}], block=True) == (1, 0)
    env = _env(native_dir)
    r = subprocess.run([sys.executable, "-m", "vqa_core._native", "status"], capture_output=True,
                       text=True, cwd=ROOT, env=env)
    assert r.returncode == 0 and "1 kernel entries, 0 failed" in r.stdout, r.stdout + r.stderr
    assert f"{MOTION}(a:uint8:2, a:uint8:2, i, a:int64:1, a:int32:1, a:int16:2, i) -> i" in r.stdout
    r = subprocess.run([sys.executable, "-m", "vqa_core._native", "wait"], cwd=ROOT, env=env)
    assert r.returncode == 0
    r = subprocess.run([sys.executable, "-m", "vqa_core._native", "status"], capture_output=True,
                       text=True, cwd=ROOT, env=dict(env, VQA_NATIVE="0"))
    assert r.stdout.startswith("native kernel library: off")
    r = subprocess.run([sys.executable, "-m", "vqa_core._native"], capture_output=True,
                       text=True, cwd=ROOT, env=env)
    assert r.returncode == 2 and r.stderr.startswith("usage:")
    # "status | head": a reader that has gone costs no traceback
    rd, wr = os.pipe()
    os.close(rd)
    p = subprocess.Popen([sys.executable, "-m", "vqa_core._native", "status"], stdout=wr,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    os.close(wr)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 0 and "Traceback" not in err and "Broken pipe" not in err, err


def test_kernel_needing_numba_helpers_stays_on_numba(native_dir, tmp_path, monkeypatch):
    """Code that calls into Numba's C helpers (here ravel's reshape) cannot
    load without Numba: the build says so and the kernel stays Numba's."""
    (tmp_path / "vqa_native_probe3.py").write_text(textwrap.dedent("""
        from vqa_core.features._jit import njit

        @njit(cache=False)
        def total(x):
            s = 0
            for v in x.ravel():
                s += v
            return s
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import vqa_native_probe3  # noqa: F401
    entry = {"kernel": "vqa_native_probe3.total", "args": ["a:int64:2"], "ret": "i"}
    assert _native.build([entry], block=True) == (0, 1)
    err = _native.read_manifest()["errors"][_native._key(entry)]
    assert err.startswith("needs numba_"), err
    assert "vqa_native_probe3.total" not in _native._load()


def test_python_calls_are_noted_not_callees(tmp_path, monkeypatch):
    """What a build adds: the kernels Python calls (noted by the dispatcher
    when it loads or compiles for new argument types), not the kernels
    compiled as their callees, on a cold cache too."""
    (tmp_path / "vqa_native_probe4.py").write_text(textwrap.dedent("""
        from vqa_core.features._jit import njit

        @njit(cache=False)
        def inner(x):
            return x + 1

        @njit(cache=False)
        def outer(x):
            return inner(x) * 2
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import vqa_native_probe4 as probe
    assert probe.outer(3) == 8
    assert "vqa_native_probe4.outer" in _jit.used
    assert "vqa_native_probe4.inner" not in _jit.used
    want = [e for e in _native.wanted() if e["kernel"].startswith("vqa_native_probe4.")]
    assert want == [{"kernel": "vqa_native_probe4.outer", "args": ["i"], "ret": "i"}]


def test_stale_build_markers_are_not_waited_for(native_dir):
    """A marker left by a build that died (its number now another process's,
    or no process's) does not make wait_for_builds wait."""
    os.makedirs(_native.folder(), exist_ok=True)
    for pid in (os.getpid(), 4194303):  # this test process: alive, not a build
        open(os.path.join(_native.folder(), f".pending-{pid}"), "w").close()
    assert _native.wait_for_builds(timeout=5)
    assert not [n for n in os.listdir(_native.folder()) if n.startswith(".pending-")]


def test_prepare_builds_without_a_video(small_pair, tmp_path):
    """`prepare` runs the kernels on synthetic frames and builds them: the
    first real run of those metrics is already native."""
    t, ref, dis = small_pair
    lib = tmp_path / "native"
    r = subprocess.run([sys.executable, "-m", "vqa_core._native", "prepare", "--metrics", "psnr"],
                       capture_output=True, text=True, cwd=ROOT, env=_env(lib))
    assert r.returncode == 0 and "entries built, 0 failed" in r.stdout, r.stdout + r.stderr
    args = ["compare", "-q", "--metrics", "psnr", "--log", str(tmp_path / "p.jsonl"), str(ref), str(dis)]
    r = subprocess.run([sys.executable, "-c", _RUN, json.dumps(args)], capture_output=True,
                       text=True, cwd=ROOT, env=_env(lib))
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [0, False], r.stderr
    r = subprocess.run([sys.executable, "-m", "vqa_core._native", "prepare", "--model", "no_such_model"],
                       capture_output=True, text=True, cwd=ROOT, env=_env(lib))
    assert r.returncode == 2 and r.stderr.startswith("prepare:"), r.stderr


def test_prepare_warms_the_layouts_a_model_reads(monkeypatch):
    """`prepare --model vmaf_v1.0.16_3d0h` (SpEED reads chroma) warms 4:2:0
    only: a luma-only pair would make its extractors refuse the format
    ("speed_chroma needs chroma planes"); luma-only models warm both."""
    from vqa_core import warmup
    from vqa_core.features import _jit
    calls = []
    monkeypatch.setattr(_jit, "activate", lambda: None)
    monkeypatch.setattr(warmup, "warm_up", lambda chroma, depth, m, models: calls.append((chroma, depth)))
    monkeypatch.setattr(_native, "build", lambda wanted, block=False: (0, 0))
    monkeypatch.setattr(_native, "wanted", lambda: [])
    _native.prepare(["vmaf_v1.0.16_3d0h"], depths=[8, 10])
    assert calls == [("420", 8), ("420", 10)]
    calls.clear()
    _native.prepare(["vmaf_v0.6.1"])
    assert calls == [("400", 8), ("420", 8)]
