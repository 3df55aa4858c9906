"""The symbol table of an ELF64 little-endian relocatable object (what Numba
emits on Linux), read without any tool: the warm-up takes the names a cached
kernel defines from it (vqa_core/warmup.py), the native library build the
names an object needs from elsewhere (vqa_core/_native.py)."""
from __future__ import annotations

import struct
from typing import Iterator, Optional, Tuple

#: symbol types that name no function or data: STT_SECTION, STT_FILE
SECTION_OR_FILE = (3, 4)


def symbols(obj: bytes) -> Optional[Iterator[Tuple[str, int, int]]]:
    """``(name, type, section index)`` of every named symbol of ``obj`` (the
    section index is 0 for a symbol defined elsewhere), or None if ``obj`` is
    not an ELF64 little-endian object with a plain section table."""
    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    if shnum == 0 or shentsize != 64:  # extended section numbering: not handled
        return None

    def walk():
        for i in range(shnum):
            off = shoff + 64 * i
            if struct.unpack_from("<I", obj, off + 4)[0] != 2:  # SHT_SYMTAB
                continue
            start, size, link = struct.unpack_from("<QQI", obj, off + 24)
            (strtab,) = struct.unpack_from("<Q", obj, shoff + 64 * link + 24)
            for name, info, _, shndx, _, _ in struct.iter_unpack("<IBBHQQ", obj[start:start + size]):
                if name == 0:
                    continue
                a = strtab + name
                yield obj[a:obj.index(b"\0", a)].decode(), info & 0xF, shndx
    return walk()
