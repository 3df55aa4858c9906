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
