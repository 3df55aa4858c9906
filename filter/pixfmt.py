"""Pixel formats: which y4m-compatible planar format a pair is compared in, and
y4m header parsing.  Frames are always compared at their own bit depth."""
from __future__ import annotations

import re
from typing import Tuple

from vqa_core import FrameFormat


def chroma_and_depth(pix_fmt: str) -> Tuple[str, int]:
    """Chroma layout ("420", "422", "444", "400") and bit depth of an ffmpeg pix_fmt."""
    f = pix_fmt.lower()
    if f.startswith(("gray", "ya", "y8", "y16")) or f in ("monow", "monob"):
        chroma = "400"
    elif f.startswith(("nv12", "nv21", "p010", "p012", "p016", "yuvj420", "yuva420", "yuv420")):
        chroma = "420"
    elif f.startswith(("nv16", "p210", "p212", "p216", "yuyv422", "uyvy422", "yvyu422",
                       "y210", "y212", "yuvj422", "yuva422", "yuv422")):
        chroma = "422"
    elif f.startswith(("yuv411", "yuv410", "uyyvyy411")):
        chroma = "420"  # compared after upsampling the chroma to 4:2:0
    else:  # 4:4:4 YUV, RGB and everything else
        chroma = "444"
    m = re.search(r"p(\d{2})(le|be)?$", f) or re.search(r"(\d{2})(le|be)$", f)
    depth = 8
    if m:
        depth = int(m.group(1))
    elif f.startswith(("p010", "p210", "p410", "y210", "xv30", "x2rgb10", "x2bgr10")):
        depth = 10
    elif f.startswith(("p012", "p212", "p412", "y212", "xv36")):
        depth = 12
    elif f.startswith(("p016", "p216", "p416", "rgb48", "bgr48", "rgba64", "bgra64", "gray16", "ya16")):
        depth = 16
    elif re.match(r"gray(\d+)", f):
        depth = int(re.match(r"gray(\d+)", f).group(1))
    if depth < 8:
        depth = 8
    if depth > 16:
        depth = 16
    return chroma, depth


def pair_pix_fmt(chroma: str, depth: int) -> str:
    """The planar format both frames of a pair are converted to (y4m supports it)."""
    if chroma == "400":
        return "gray" if depth == 8 else f"gray{depth}le"
    base = f"yuv{chroma}p"
    return base if depth == 8 else f"{base}{depth}le"


def pair_format_for(pix_fmt: str, bitdepth: int | None = None) -> str:
    """The pair format for a reference of ``pix_fmt``; ``bitdepth`` overrides
    its depth (ffmpeg converts by shifting: an 8-bit value v becomes v << 2 at
    10 bits, as libvmaf's documentation asks for scoring 8-bit video with the
    v1 models at 10 bits)."""
    c, d = chroma_and_depth(pix_fmt)
    if bitdepth:
        d = bitdepth
    # y4m carries 9, 10, 12, 14 and 16-bit; other depths round up
    for allowed in (8, 9, 10, 12, 14, 16):
        if d <= allowed:
            d = allowed
            break
    if c == "400" and d not in (8, 10, 12, 16):
        d = 16 if d > 12 else (12 if d > 10 else 10)
    return pair_pix_fmt(c, d)


def parse_y4m_header(line: bytes) -> Tuple[int, int, str, int, Tuple[int, int]]:
    """(width, height, chroma, depth, (fps_num, fps_den)) of a YUV4MPEG2 stream header."""
    parts = line.decode("ascii", "replace").split()
    if not parts or parts[0] != "YUV4MPEG2":
        raise ValueError("not a YUV4MPEG2 stream")
    w = h = None
    cs = "420jpeg"
    fps = (0, 1)
    for t in parts[1:]:
        k, v = t[0], t[1:]
        if k == "W":
            w = int(v)
        elif k == "H":
            h = int(v)
        elif k == "C":
            cs = v
        elif k == "F" and ":" in v:
            a, b = v.split(":")
            fps = (int(a), int(b))
    if not w or not h:
        raise ValueError("y4m header without size")
    if cs.startswith("mono"):
        chroma, depth = "400", int(cs[4:] or 8)
    else:
        m = re.match(r"(420|422|444|411)(?:p(\d+)|jpeg|paldv|mpeg2|alpha)?$", cs)
        if not m:
            raise ValueError(f"unsupported y4m colorspace C{cs}")
        chroma = m.group(1) if m.group(1) != "411" else "420"
        depth = int(m.group(2) or 8)
    return w, h, chroma, depth, fps


def frame_bytes(fmt: FrameFormat) -> int:
    bps = 1 if fmt.bitdepth == 8 else 2
    return sum(r * c for r, c in fmt.plane_shapes()) * bps
