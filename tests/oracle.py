"""Test helpers: the bundled ffmpeg, generated media, y4m reading, and the
oracles (ffmpeg's psnr/ssim filters and its libvmaf filter) run on the same
frames.  Tests never read ../shared: they make their media here."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


def ffmpeg_exe() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: Sequence[str], **kw) -> subprocess.CompletedProcess:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r


# ---------------------------------------------------------------- media

def lavfi_source(kind: str = "natural", size: str = "320x240", rate: int = 25,
                 duration: float = 1.0) -> str:
    """A lavfi graph with natural-looking or synthetic content.

    "natural": smooth noise-like texture with motion (cellauto/gradients look
    synthetic; a zoomed, blurred random field moves like camera footage).
    "testsrc": testsrc2 pattern.  "mandelbrot": fractal zoom (fine detail).
    """
    if kind == "testsrc":
        return f"testsrc2=size={size}:rate={rate}:duration={duration}"
    if kind == "mandelbrot":
        return f"mandelbrot=size={size}:rate={rate},trim=duration={duration}"
    if kind == "natural":
        w, h = size.split("x")
        # a life-like image: gradients + grain + moving fractal, softened
        return (f"mandelbrot=size={size}:rate={rate}:start_scale=0.5,"
                f"noise=alls=12:allf=t,gblur=sigma=0.8,"
                f"hue=H=t/2:s=0.8,trim=duration={duration}")
    raise ValueError(kind)


def make_clip(path: Path, kind: str = "natural", size: str = "320x240", rate: int = 25,
              duration: float = 1.0, pix_fmt: str = "yuv420p", codec_args: Sequence[str] = ()) -> Path:
    """Write a clip; with no codec_args a lossless/rawvideo container is used by extension."""
    args = ["-f", "lavfi", "-i", lavfi_source(kind, size, rate, duration), "-pix_fmt", pix_fmt]
    if path.suffix == ".y4m":
        args += ["-strict", "-1"]
    args += list(codec_args)
    run_ffmpeg([*args, str(path)])
    return path


def encode(src: Path, dst: Path, codec_args: Sequence[str]) -> Path:
    run_ffmpeg(["-i", str(src), *codec_args, str(dst)])
    return dst


# ---------------------------------------------------------------- y4m

_Y4M_FMT = {
    "mono": ("400", 8), "420jpeg": ("420", 8), "420paldv": ("420", 8), "420mpeg2": ("420", 8),
    "420": ("420", 8), "422": ("422", 8), "444": ("444", 8),
}


def parse_y4m_colorspace(tag: str) -> Tuple[str, int]:
    """C-tag of a y4m header -> (chroma, bitdepth)."""
    if tag in _Y4M_FMT:
        return _Y4M_FMT[tag]
    m = re.fullmatch(r"(420|422|444|mono)p?(\d+)?", tag)
    if not m:
        raise ValueError(f"unsupported y4m colorspace {tag}")
    chroma = "400" if m.group(1) == "mono" else m.group(1)
    return chroma, int(m.group(2) or 8)


def read_y4m(path: Path) -> Tuple[List[Tuple[np.ndarray, ...]], Tuple[int, int, str, int]]:
    """All frames of a y4m file as tuples of planes; and (w, h, chroma, depth)."""
    data = Path(path).read_bytes()
    nl = data.index(b"\n")
    header = data[:nl].decode().split()
    w = h = None
    cs = "420"
    for t in header[1:]:
        if t[0] == "W":
            w = int(t[1:])
        elif t[0] == "H":
            h = int(t[1:])
        elif t[0] == "C":
            cs = t[1:]
    chroma, depth = parse_y4m_colorspace(cs)
    dt = np.dtype("<u2") if depth > 8 else np.dtype(np.uint8)
    shapes = [(h, w)]
    if chroma != "400":
        cw = (w + 1) // 2 if chroma in ("420", "422") else w
        ch = (h + 1) // 2 if chroma == "420" else h
        shapes += [(ch, cw)] * 2
    fbytes = sum(a * b for a, b in shapes) * dt.itemsize
    frames = []
    pos = nl + 1
    while pos < len(data):
        eol = data.index(b"\n", pos)
        pos = eol + 1
        planes = []
        for s in shapes:
            n = s[0] * s[1] * dt.itemsize
            planes.append(np.frombuffer(data, dt, s[0] * s[1], pos).reshape(s).astype(
                np.uint16 if depth > 8 else np.uint8))
            pos += n
        frames.append(tuple(planes))
    return frames, (w, h, chroma, depth)


def decode_y4m(src: Path, dst: Path, pix_fmt: str = "yuv420p", size: str | None = None,
               scale_flags: str = "bicubic") -> Path:
    vf = []
    if size:
        vf.append(f"scale={size.replace('x', ':')}:flags={scale_flags}")
    vf.append(f"format={pix_fmt}")
    run_ffmpeg(["-i", str(src), "-vf", ",".join(vf), "-fps_mode", "passthrough",
                "-strict", "-1", "-f", "yuv4mpegpipe", str(dst)])
    return dst


# ---------------------------------------------------------------- oracles

def ffmpeg_psnr(ref: Path, dis: Path, tmp: Path) -> List[Dict[str, float]]:
    """ffmpeg's psnr filter per frame: psnr_y, psnr_u, psnr_v, psnr_avg."""
    log = tmp / "psnr_meta.log"
    run_ffmpeg(["-i", str(dis), "-i", str(ref), "-lavfi",
                f"[0:v][1:v]psnr,metadata=mode=print:file={log}", "-f", "null", "-"])
    # full-precision values from the frame metadata (the stats file rounds to 0.01)
    out: List[Dict[str, float]] = []
    names = {"lavfi.psnr.psnr.y": "psnr_y", "lavfi.psnr.psnr.u": "psnr_u",
             "lavfi.psnr.psnr.v": "psnr_v", "lavfi.psnr.psnr_avg": "psnr_avg"}
    for line in log.read_text().splitlines():
        if line.startswith("frame:"):
            out.append({})
        elif "=" in line:
            k, v = line.split("=", 1)
            if k in names:
                out[-1][names[k]] = float(v)
    return out


def ffmpeg_ssim(ref: Path, dis: Path, tmp: Path) -> List[Dict[str, float]]:
    """ffmpeg's ssim filter per frame: Y, U, V, All."""
    log = tmp / "ssim.log"
    run_ffmpeg(["-i", str(dis), "-i", str(ref), "-lavfi",
                f"[0:v][1:v]ssim=stats_file={log}", "-f", "null", "-"])
    out = []
    for line in log.read_text().splitlines():
        d = dict(kv.split(":", 1) for kv in line.split() if ":" in kv)
        out.append({k: float(d[k]) for k in ("Y", "U", "V", "All")})
    return out


def libvmaf(ref: Path, dis: Path, tmp: Path, model: str = "version=vmaf_v0.6.1",
            features: Sequence[str] = (), threads: int = 2, extra: str = "") -> dict:
    """Run ffmpeg's libvmaf filter; returns its JSON log as a dict.

    ``model`` is libvmaf's model string (e.g. ``version=vmaf_v0.6.1neg`` or
    ``version=vmaf_v0.6.1|version=vmaf_4k_v0.6.1`` joined by ``|``);
    ``features`` are feature strings such as ``name=float_ssim``.
    Frames are read from ``dis`` and ``ref`` as they are (use y4m files to
    control the pixel format).  Per-frame values: ``out['frames'][i]['metrics']``.
    """
    log = tmp / f"vmaf_{abs(hash((str(ref), str(dis), model, tuple(features), extra)))}.json"
    opts = [f"log_path={log}", "log_fmt=json", f"n_threads={threads}",
            "model=" + _esc(model)]
    if features:
        opts.append("feature=" + _esc("|".join(features)))
    if extra:
        opts.append(extra)
    graph = "[0:v][1:v]libvmaf=" + ":".join(opts)
    run_ffmpeg(["-i", str(dis), "-i", str(ref), "-lavfi", graph, "-f", "null", "-"])
    return json.loads(log.read_text())


def feature_spec(name: str, opts=None) -> str:
    """libvmaf's feature string ``name=NAME:key=value...`` (booleans as
    true / false, as libvmaf parses them)."""
    kv = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in (opts or {}).items()}
    return f"name={name}" + "".join(f":{k}={v}" for k, v in kv.items())


def _esc(s: str) -> str:
    # libvmaf option values contain ':' and '=' and '|': quote for the filtergraph parser
    return "'" + s.replace(":", "\\:") + "'"


def libvmaf_frames(result: dict) -> List[Dict[str, float]]:
    return [f["metrics"] for f in result["frames"]]


# ---------------------------------------------------------------- our side

def read_pair(ref: Path, dis: Path):
    """Frames of two y4m files of one format: (ref_frames, dis_frames, FrameFormat)."""
    from vqa_core import FrameFormat
    ref_frames, info = read_y4m(ref)
    dis_frames, dinfo = read_y4m(dis)
    assert info == dinfo, f"{ref} is {info}, {dis} is {dinfo}"
    w, h, chroma, depth = info
    return ref_frames, dis_frames, FrameFormat(w, h, chroma, depth)


def extract_all(ext, ref_frames, dis_frames, fmt) -> List[Dict[str, float]]:
    """Set a spatial extractor up for fmt and run it on every pair, in order."""
    ext.setup(fmt)
    return [ext.extract(i, r, d)[0][1] for i, (r, d) in enumerate(zip(ref_frames, dis_frames))]


def libvmaf_key(ours: str, keys) -> Optional[str]:
    """The key in a libvmaf JSON log for one of vqa's record keys.

    libvmaf adds an ``integer_``/``float_`` prefix and, for non-default
    options, a suffix (``integer_adm2_egl_1``); its SAD motion is
    ``integer_motion`` or ``VMAF_integer_feature_motion_sad_score``; bootstrap
    bounds are ``*_ci_p95_lo``/``_hi`` where vqa writes ``*_ci_low``/``_high``.
    """
    import re
    keys = list(keys)
    if ours == "vmaf" or ours.startswith("vmaf_"):
        alias = ours.replace("_ci_low", "_ci_p95_lo").replace("_ci_high", "_ci_p95_hi")
        return alias if alias in keys else None
    if ours == "motion":
        pat = r"(integer_motion|VMAF_integer_feature_motion_sad_score)(_[a-z].*)?"
    else:
        pat = rf"(integer_|float_)?{re.escape(ours)}(_[a-z].*)?"
    cands = sorted((k for k in keys if re.fullmatch(pat, k)), key=len)
    return cands[0] if cands else None


VQA = [sys.executable, "-m", "vqa_filter.cli"]


def run_vqa(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the vqa command (this checkout's) and capture its output."""
    return subprocess.run([*VQA, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)



def assert_close(ours, theirs, label, keys, tol):
    """Per-frame max |ours - theirs| of ``keys`` below ``tol`` (printed with -s)."""
    assert len(ours) == len(theirs) and theirs
    worst = {}
    for a, b in zip(ours, theirs):
        assert set(keys) <= set(b), (label, sorted(b))
        for k in keys:
            worst[k] = max(worst.get(k, 0.0), abs(a[k] - b[k]))
    print(f"\n{label}: max |diff| " + " ".join(f"{k}={v:.1e}" for k, v in worst.items()))
    for k, v in worst.items():
        assert v < tol, (label, k, v)


def x264_pair(d: Path, tag: str, size: str, pix: str, crf: int = 30, half: bool = False,
              frames: float = 0.2):
    """A natural source and its x264 encode decoded back to y4m (``half``:
    encoded at half size and scaled back with bicubic)."""
    src = make_clip(d / f"src{tag}.y4m", "natural", size, duration=frames, pix_fmt=pix)
    enc = d / f"enc{tag}.mp4"
    args = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", pix]
    if half:
        w, h = (int(v) for v in size.split("x"))
        encode(src, enc, ["-vf", f"scale={w // 2}:{h // 2}:flags=bicubic", *args])
        dis = decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix, size=size, scale_flags="bicubic")
    else:
        encode(src, enc, args)
        dis = decode_y4m(enc, d / f"dis{tag}.y4m", pix_fmt=pix)
    return src, dis



def standard_pairs(d: Path) -> dict:
    """The oracle tests' pairs: name -> (source, distorted, folder)."""
    return {
        "8": (*x264_pair(d, "8", "320x240", "yuv420p"), d),
        "10": (*x264_pair(d, "10", "320x240", "yuv420p10le"), d),
        "12": (*x264_pair(d, "12", "176x144", "yuv420p12le"), d),
        "odd": (*x264_pair(d, "odd", "181x97", "yuv444p"), d),
        "half": (*x264_pair(d, "half", "320x240", "yuv420p", half=True), d),
        "small": (*x264_pair(d, "small", "64x36", "yuv420p", crf=36), d),
    }
