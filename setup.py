# The C shim is built by cffi; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["native/build_shim.py:ffibuilder"])
