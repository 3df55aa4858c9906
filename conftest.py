import sys, os
# tests import their helpers (oracle.py) from tests/
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tests"))
