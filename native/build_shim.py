"""cffi build script for the frame shim: builds ``vqa_filter._shim``.

Run by setuptools through ``cffi_modules`` in setup.py when the package is
installed; needs a C compiler.
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _cdefs() -> str:
    # the declarations cffi needs, taken from the header (minus preprocessor lines)
    text = open(os.path.join(HERE, "shim.h")).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        if line.startswith("#define VQA_") and "SHIM_H" not in line:
            name, value = line.split()[1:3]
            lines.append(f"#define {name} {value}")
        elif line.startswith("#"):
            continue
        else:
            lines.append(line)
    return "\n".join(lines)


ffibuilder = FFI()
ffibuilder.cdef(_cdefs())
ffibuilder.set_source(
    "vqa_filter._shim",
    '#include "shim.h"',
    sources=[os.path.relpath(os.path.join(HERE, "shim.c"))],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-pthread", "-std=gnu99"],
    libraries=["pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
