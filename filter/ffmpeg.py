"""Finding ffmpeg, its version, and probing inputs (without ffprobe).

Order: ``--ffmpeg PATH``, the ``VQA_FFMPEG`` environment variable, an
``ffmpeg`` on PATH that is 7.0 or newer, the binary that the imageio-ffmpeg
package ships.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

from .errors import FfmpegNotFound, FfmpegTooOld, ProbeError

MIN_INLINE_VERSION = (7, 0)


@dataclass(frozen=True)
class Ffmpeg:
    path: str
    version: str  # as printed, e.g. "n9.0.2-17-g2a571b6068-20260930" or "7.1"
    version_tuple: Optional[Tuple[int, int]]  # (major, minor); None for git builds

    def require_inline(self) -> None:
        if self.version_tuple is not None and self.version_tuple < MIN_INLINE_VERSION:
            raise FfmpegTooOld(
                f"ffmpeg {self.version} at {self.path} is too old for inline scoring: loopback "
                f"decoders (-dec) need FFmpeg 7.0 or newer; use --ffmpeg or VQA_FFMPEG to pick a newer "
                f"one, or leave both unset to use the bundled ffmpeg")


def parse_version(text: str) -> Tuple[str, Optional[Tuple[int, int]]]:
    m = re.search(r"ffmpeg version (\S+)", text)
    if not m:
        raise ValueError("not an ffmpeg version banner")
    v = m.group(1)
    n = re.match(r"n?(\d+)\.(\d+)", v)
    if n:
        return v, (int(n.group(1)), int(n.group(2)))
    n = re.match(r"n?(\d+)(?:$|[^.\d])", v)
    if n:
        return v, (int(n.group(1)), 0)
    return v, None  # e.g. "N-112345-gabcdef": a git snapshot, assume recent


@lru_cache(maxsize=16)
def _identify(path: str) -> Ffmpeg:
    try:
        r = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise FfmpegNotFound(f"ffmpeg not found at {path}") from None
    except PermissionError:
        raise FfmpegNotFound(f"{path} is not executable") from None
    except OSError as e:
        raise FfmpegNotFound(f"cannot run {path}: {e.strerror or e}") from None
    except subprocess.TimeoutExpired:
        raise FfmpegNotFound(f"{path} did not answer -version within 30 s") from None
    try:
        v, t = parse_version(r.stdout + r.stderr)
    except ValueError:
        raise FfmpegNotFound(f"{path} does not look like ffmpeg (no version banner)") from None
    return Ffmpeg(path, v, t)


def find_ffmpeg(explicit: Optional[str] = None) -> Ffmpeg:
    """The ffmpeg to use, by the documented order."""
    if explicit:
        return _identify(_resolve(explicit, "--ffmpeg"))
    env = os.environ.get("VQA_FFMPEG")
    if env:
        return _identify(_resolve(env, "VQA_FFMPEG"))
    on_path = shutil.which("ffmpeg")
    if on_path:
        try:
            f = _identify(on_path)
            if f.version_tuple is None or f.version_tuple >= MIN_INLINE_VERSION:
                return f
        except FfmpegNotFound:
            pass
    exe = _imageio_binary()
    if exe:
        try:
            return _identify(exe)
        except FfmpegNotFound:
            pass
    try:
        import imageio_ffmpeg
        return _identify(imageio_ffmpeg.get_ffmpeg_exe())
    except ImportError:
        pass
    except RuntimeError as e:  # imageio-ffmpeg found no binary
        raise FfmpegNotFound(f"no usable ffmpeg: {e}") from None
    raise FfmpegNotFound("no ffmpeg found: install imageio-ffmpeg, put ffmpeg 7+ on PATH, "
                         "or give --ffmpeg PATH")


def _imageio_binary() -> Optional[str]:
    """The binary imageio-ffmpeg ships (or its ``IMAGEIO_FFMPEG_EXE``), found
    without running it and without importing the package: ``get_ffmpeg_exe()``
    checks it with a ``-version`` run of its own (~12 ms of every start),
    which :func:`_identify` does anyway, and importing imageio_ffmpeg (its
    logging and I/O modules) took ~15 ms of Python beside the start-up's
    imports.  The package's ``binaries`` folder holds
    ``ffmpeg-<os>-<arch>-v<version>`` (imageio-ffmpeg's naming).  None where
    it is laid out otherwise (then ``get_ffmpeg_exe()`` decides)."""
    env = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if env:
        return env
    try:
        import importlib.util
        spec = importlib.util.find_spec("imageio_ffmpeg")
        if spec is None or not spec.submodule_search_locations:
            return None
        bindir = os.path.join(list(spec.submodule_search_locations)[0], "binaries")
        tag = _imageio_platform()
        if tag is None:
            return None
        names = sorted(n for n in os.listdir(bindir)
                       if n.startswith(f"ffmpeg-{tag}-v") and not n.endswith(".py"))
    except Exception:
        return None
    if len(names) != 1:
        return None  # none, or several: imageio-ffmpeg's own choice
    exe = os.path.join(bindir, names[0])
    return exe if os.path.isfile(exe) else None


def _imageio_platform() -> Optional[str]:
    """imageio-ffmpeg's platform tag (its get_platform) where it is plain:
    linux/macos x86_64/aarch64; None elsewhere."""
    if sys.platform.startswith("linux"):
        osn = "linux"
    elif sys.platform.startswith("darwin"):
        osn = "macos"
    else:
        return None
    machine = os.uname().machine.lower()
    if sys.maxsize <= 2 ** 32:
        return None
    if machine.startswith(("arm", "aarch64")):
        return f"{osn}-aarch64"
    if machine in ("x86_64", "amd64"):
        return f"{osn}-x86_64"
    return None


def _resolve(p: str, where: str) -> str:
    if os.sep in p or os.path.exists(p):
        if not os.path.exists(p):
            raise FfmpegNotFound(f"ffmpeg given by {where} does not exist: {p}")
        return os.path.abspath(p)
    found = shutil.which(p)
    if not found:
        raise FfmpegNotFound(f"ffmpeg given by {where} not found on PATH: {p}")
    return found


# ----------------------------------------------------------------- probing

@dataclass
class StreamInfo:
    index: int
    kind: str  # "video", "audio", "subtitle", "data", "attachment"
    codec: str = ""
    pix_fmt: str = ""
    width: int = 0
    height: int = 0
    fps: Optional[float] = None


@dataclass
class MediaInfo:
    url: str
    streams: List[StreamInfo] = field(default_factory=list)
    duration: Optional[float] = None

    @property
    def video(self) -> List[StreamInfo]:
        return [s for s in self.streams if s.kind == "video"]


_STREAM_RE = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (\w+): (.*)$")


def parse_probe(text: str, url: str) -> MediaInfo:
    info = MediaInfo(url)
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if m:
        info.duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    for line in text.splitlines():
        m = _STREAM_RE.match(line)
        if not m:
            continue
        idx, kind, rest = int(m.group(1)), m.group(2).lower(), m.group(3)
        s = StreamInfo(idx, kind)
        if kind == "video":
            parts = _split_top(rest)
            s.codec = parts[0].split()[0] if parts else ""
            for p in parts[1:]:
                p = p.strip()
                fm = re.match(r"^([a-z0-9_]+)(\(.*\))?$", p)
                if not s.pix_fmt and fm and not re.match(r"^\d", p):
                    s.pix_fmt = fm.group(1)
                    continue
                sm = re.match(r"^(\d+)x(\d+)", p)
                if sm and not s.width:
                    s.width, s.height = int(sm.group(1)), int(sm.group(2))
                    continue
                fm = re.match(r"^([\d.]+)(k?) fps$", p)
                if fm:
                    s.fps = float(fm.group(1)) * (1000 if fm.group(2) else 1)
        info.streams.append(s)
    return info


def _split_top(s: str) -> List[str]:
    """Split on commas that are not inside parentheses or brackets."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def probe(ff: Ffmpeg, url: str, input_options: List[str] = (), what: str = "input") -> MediaInfo:
    """Stream layout of an input, from ``ffmpeg -i`` (no ffprobe needed).

    Raises ProbeError with a one-line reason for a missing file, a file ffmpeg
    cannot read, or one without streams."""
    is_file = not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url) or url.startswith("file:")
    has_format = "-f" in input_options
    path = url[5:] if url.startswith("file:") else url
    if is_file and not has_format and url != "-":
        if not os.path.exists(path):
            raise ProbeError(f"{what} not found: {url}")
        if os.path.isdir(path):
            raise ProbeError(f"{what} is a directory, not a video file: {url}")
        if not os.access(path, os.R_OK):
            raise ProbeError(f"{what} is not readable: {url}")
    try:
        r = subprocess.run([ff.path, "-hide_banner", "-nostdin", *input_options, "-loglevel", "info", "-i", url],
                           capture_output=True, text=True, errors="replace", timeout=60,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffmpeg took over 60 s to open {what} {url}") from None
    text = r.stderr
    info = parse_probe(text, url)
    if not info.streams:
        reason = _last_error(text, url) or "ffmpeg cannot read it"
        raise ProbeError(f"{what} {url} is not a media file ffmpeg can read: {reason}")
    return info


#: probes made ahead of the session (the command line's prefetch): (ffmpeg,
#: url, input options, what) -> MediaInfo; each is used once
_prefetched: dict = {}


def prefetch(ff: Ffmpeg, jobs: Sequence[Tuple[str, Sequence[str], str]]) -> None:
    """Probe ``jobs`` now for a :func:`probe_all` to come (the command line
    does, while another thread imports NumPy and vqa_core); a failure is
    left for that later call to meet and report."""
    try:
        for job, info in zip(jobs, probe_all(ff, jobs)):
            _prefetched[(ff.path, job[0], tuple(job[1]), job[2])] = info
    except Exception:
        pass


def probe_all(ff: Ffmpeg, jobs: Sequence[Tuple[str, Sequence[str], str]]) -> List[MediaInfo]:
    """:func:`probe` of each ``(url, input_options, what)``, side by side
    (each is an ffmpeg process that mostly waits for its own start-up);
    results in order, and the first failure in order is raised."""
    if _prefetched:
        found = [_prefetched.pop((ff.path, u, tuple(o), w), None) for u, o, w in jobs]
        if all(found):
            return found  # type: ignore[return-value]
    if len(jobs) <= 1:
        return [probe(ff, url, list(o), what) for url, o, what in jobs]
    import threading
    results: List[Optional[MediaInfo]] = [None] * len(jobs)
    errors: List[Optional[BaseException]] = [None] * len(jobs)

    def one(i: int) -> None:
        url, o, what = jobs[i]
        try:
            results[i] = probe(ff, url, list(o), what)
        except BaseException as e:  # raised below, in order
            errors[i] = e

    threads = [threading.Thread(target=one, args=(i,), name="vqa-probe", daemon=True)
               for i in range(1, len(jobs))]
    for t in threads:
        t.start()
    one(0)
    for t in threads:
        t.join()
    for e in errors:
        if e is not None:
            raise e
    return results  # type: ignore[return-value]


def _last_error(text: str, url: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "At least one output file must be specified" in ln:
            continue
        if url in ln and ":" in ln:
            return ln.split(url, 1)[-1].lstrip(": ").strip() or ln
        return ln
    return ""


def require_video(info: MediaInfo, what: str) -> StreamInfo:
    if not info.video:
        kinds = ", ".join(sorted({s.kind for s in info.streams})) or "none"
        raise ProbeError(f"{what} {info.url} has no video stream (streams: {kinds})")
    return info.video[0]
