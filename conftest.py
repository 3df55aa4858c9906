import os
import sys

# tests import their helpers (oracle.py, precompile.py) from tests/
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))

import precompile  # noqa: E402

#: a whole-suite run (at least this many tests) compiles the common kernels
#: in a background process meanwhile (tests/precompile.py); VQA_TEST_PRECOMPILE=0
#: turns it off
PRECOMPILE_MIN_TESTS = 100


def pytest_collection_finish(session):
    if os.environ.get("VQA_TEST_PRECOMPILE", "1") != "0" and len(session.items) >= PRECOMPILE_MIN_TESTS:
        precompile.start()


def pytest_sessionfinish(session, exitstatus):
    precompile.stop()
