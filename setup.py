# The C shim is built by cffi; everything else is in pyproject.toml.
import os
import shlex
import shutil
import sys

from setuptools import setup


def _have_c_compiler() -> bool:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(shlex.split(cc)[0]) is not None
    return any(shutil.which(c) for c in ("cc", "gcc", "clang"))


# metadata-only steps (egg_info, dist_info) need no compiler
if any(a.startswith(("build", "bdist", "develop", "install", "editable_wheel")) for a in sys.argv[1:]) \
        and not _have_c_compiler():
    sys.exit("error: vqa needs a C compiler to build its frame shim (native/shim.c) and found "
             "none (looked for $CC, cc, gcc, clang). Install one, e.g. 'apt-get install gcc' or "
             "'xcode-select --install', then install vqa again.")

setup(cffi_modules=["native/build_shim.py:ffibuilder"])
