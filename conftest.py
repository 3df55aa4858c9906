import os
import sys

# tests import their helpers (oracle.py, precompile.py) from tests/
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))

# No native kernel library (vqa_core/_native.py) is used or built by the runs
# the tests start (their processes inherit this): builds would run in the
# background while other tests time and score.  Its own tests
# (tests/test_native.py) turn it on, with a folder of their own.
os.environ["VQA_NATIVE"] = "0"

import precompile  # noqa: E402
from vqa_core.features import _jit  # noqa: E402

# Tests compile kernels of their own that call vqa's, which Numba can only
# type once vqa's kernels are Numba's objects (vqa_core/features/_jit.py)
_jit.activate()

#: a whole-suite run (at least this many tests) compiles the common kernels
#: in a background process meanwhile (tests/precompile.py); VQA_TEST_PRECOMPILE=0
#: turns it off
PRECOMPILE_MIN_TESTS = 100


def pytest_collection_finish(session):
    if os.environ.get("VQA_TEST_PRECOMPILE", "1") != "0" and len(session.items) >= PRECOMPILE_MIN_TESTS:
        precompile.start()


def pytest_sessionfinish(session, exitstatus):
    precompile.stop()
