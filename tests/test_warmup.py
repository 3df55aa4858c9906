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
    assert a == [("vif", {}), ("motion", {})] and b == [("adm", {"x": 1})]
    a, b = split_work([("psnr", {})])
    assert a == [("psnr", {})] and b == []


PRELOAD = r"""
import sys, threading
from vqa_core.warmup import preload
preload().join()
print("after preload:", "scipy" in sys.modules)
import numba.np.arraymath as am
print("have blas:", am._HAVE_BLAS)
import scipy.linalg.cython_blas   # other imports still work
print("imported:", scipy.MARK)
"""


def test_preload_does_not_import_scipy(tmp_path):
    """Numba's BLAS check would import scipy.linalg on the start-up's
    critical path; the preload skips it (a stand-in SciPy records imports)."""
    fake = tmp_path / "scipy"
    (fake / "linalg").mkdir(parents=True)
    (fake / "__init__.py").write_text("MARK = 'fake scipy'\n")
    (fake / "linalg" / "__init__.py").write_text("")
    (fake / "linalg" / "cython_blas.py").write_text("")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path))
    r = subprocess.run([sys.executable, "-c", PRELOAD], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "after preload: False" in r.stdout
    assert "have blas: True" in r.stdout  # what Numba's own check would say
    assert "imported: fake scipy" in r.stdout
