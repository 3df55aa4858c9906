import os
import subprocess
import sys

# tests import their helpers (oracle.py) from tests/
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))

#: a whole-suite run (at least this many tests) compiles the common kernels
#: in a background process meanwhile (tests/precompile.py); VQA_TEST_PRECOMPILE=0
#: turns it off
PRECOMPILE_MIN_TESTS = 100
_precompile = []


def pytest_collection_finish(session):
    if os.environ.get("VQA_TEST_PRECOMPILE", "1") == "0" or len(session.items) < PRECOMPILE_MIN_TESTS:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    _precompile.append(subprocess.Popen(
        [sys.executable, os.path.join(here, "tests", "precompile.py")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def stop_precompile():
    """End the background compilation (a test that measures speed or memory
    wants the CPU to itself)."""
    for p in _precompile:
        if p.poll() is None:
            p.kill()
        p.wait()


def pytest_sessionfinish(session, exitstatus):
    stop_precompile()
