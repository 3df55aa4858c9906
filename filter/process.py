"""The life of one ffmpeg process: start, stderr relay, progress, signals, exit.

No ffmpeg outlives vqa: the child gets PR_SET_PDEATHSIG (Linux), and every
exit path of a session waits for it, or terminates and then kills it.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Sequence

_LIBC = None


def _child_setup(nice: int = 0):
    """What runs in ffmpeg's process between fork and exec: the parent-death
    signal, and ``nice`` added to its niceness (when above 0)."""
    def setup() -> None:
        _set_pdeathsig()
        if nice > 0:
            try:
                os.nice(nice)
            except OSError:
                pass
    return setup


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Progress:
    """Latest values of ffmpeg's ``-progress`` key=value blocks."""

    def __init__(self):
        self.values: Dict[str, str] = {}
        self.ended = False
        self._lock = threading.Lock()

    def update(self, block: Dict[str, str]) -> None:
        with self._lock:
            self.values.update(block)
            if block.get("progress") == "end":
                self.ended = True

    def get(self, key: str, default=None):
        with self._lock:
            return self.values.get(key, default)

    @property
    def speed(self) -> Optional[float]:
        v = self.get("speed", "")
        m = re.match(r"\s*([\d.]+)x", v or "")
        return float(m.group(1)) if m else None

    @property
    def fps(self) -> Optional[float]:
        try:
            return float(self.get("fps"))
        except (TypeError, ValueError):
            return None

    @property
    def frame(self) -> Optional[int]:
        try:
            return int(self.get("frame"))
        except (TypeError, ValueError):
            return None


class FfmpegProcess:
    """Run ffmpeg with extra pipes.

    ``relay``: "all" relays every stderr line; "errors" only lines at warning
    level or worse (the command must use ``-loglevel level+...``); "none".
    ``on_line`` sees every stderr line (for parsing).  ``nice``: added to
    ffmpeg's niceness (its CPU priority; 0 leaves it as vqa's).  ``env``:
    its environment (None: vqa's).
    """

    def __init__(self, cmd: Sequence[str], pass_fds: Sequence[int] = (), relay: str = "all",
                 progress_fd: Optional[int] = None, stdin=None, stdout=None,
                 writer: Optional[Callable[[str], None]] = None,
                 on_line: Optional[Callable[[str], None]] = None, nice: int = 0,
                 env: Optional[dict] = None):
        self.cmd = list(cmd)
        self.relay = relay
        self.progress = Progress()
        self.tail: Deque[str] = deque(maxlen=40)
        #: the first stderr line saying that an input is truncated or damaged
        self.damage: Optional[str] = None
        self._writer = writer or (lambda s: (sys.stderr.write(s), sys.stderr.flush()))
        self._on_line = on_line
        try:
            self.proc = subprocess.Popen(
                self.cmd, pass_fds=tuple(pass_fds), stdin=stdin, stdout=stdout,
                stderr=subprocess.PIPE, preexec_fn=_child_setup(nice), env=env)
        except FileNotFoundError:
            from .errors import FfmpegNotFound
            raise FfmpegNotFound(f"ffmpeg not found at {self.cmd[0]}") from None
        self._threads = [threading.Thread(target=self._read_stderr, daemon=True, name="ffmpeg-stderr")]
        if progress_fd is not None:
            self._threads.append(threading.Thread(target=self._read_progress, args=(progress_fd,),
                                                  daemon=True, name="ffmpeg-progress"))
        for t in self._threads:
            t.start()

    # -- stderr
    def _read_stderr(self) -> None:
        buf = b""
        f = self.proc.stderr
        while True:
            chunk = f.read1(65536) if hasattr(f, "read1") else f.read(4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = re.split(rb"\r\n|\r|\n", buf)
            for ln in lines:
                self._line(ln.decode("utf-8", "replace"))
        if buf:
            self._line(buf.decode("utf-8", "replace"))

    #: ffmpeg's words for an input that ends early or is damaged
    DAMAGE = re.compile(r"partial file|corrupt input packet|Packet corrupt|Truncat|"
                        r"[Ii]nvalid data found when processing input|[Ii]ncomplete frame|"
                        r"[Uu]nexpected end of file|End of file reached prematurely")

    #: what ffmpeg says of the y4m stream vqa reads (above 8 bits it is the
    #: "non standard" y4m that ``-strict -1`` allows): not relayed
    OWN_PIPE_NOISE = re.compile(r"\[yuv4mpegpipe @ [^\]]*\] (?:\[warning\] )?"
                                r"Warning: generating non standard YUV stream")

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        self.tail.append(line)
        if self.damage is None and self.DAMAGE.search(line):
            self.damage = _strip_level(line).strip()
        if self._on_line:
            self._on_line(line)
        if self.OWN_PIPE_NOISE.search(line):
            return  # about vqa's own frame pipe, not the user's command
        if self.relay == "all":
            self._writer(line + "\n")
        elif self.relay == "errors":
            m = re.match(r"^(?:\[[^\]]*\] )*\[(warning|error|fatal|panic)\] ?", line)
            if m or not line.startswith("["):
                self._writer(_strip_level(line) + "\n")

    # -- progress
    def _read_progress(self, fd: int) -> None:
        block: Dict[str, str] = {}

        def on_lines(lines):
            nonlocal block
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if "=" not in line:
                    continue
                k, v = line.split("=", 1)
                block[k] = v
                if k == "progress":
                    self.progress.update(block)
                    block = {}

        read_lines(fd, on_lines)

    # -- life
    def poll(self) -> Optional[int]:
        return self.proc.poll()

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: Optional[float] = None) -> int:
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def stop(self, grace: float = 5.0) -> int:
        """SIGINT (ffmpeg finishes its files), then SIGTERM, then SIGKILL."""
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            self.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.wait()

    def error_summary(self) -> str:
        """The most telling stderr line, for a one-line error."""
        lines = [_strip_level(x).strip() for x in self.tail]
        lines = [x for x in lines if x and not x.startswith(("frame=", "Press [q]"))]
        # ffmpeg's scheduler echoes a failure up every thread ("Task finished with
        # error code", "Terminating thread", "Could not open encoder before EOF",
        # "Nothing was written"...): the cause is the first specific line
        generic = re.compile(r"Task finished with error code|Terminating thread|Conversion failed|"
                             r"Nothing was written|Error while opening encoder|"
                             r"Could not open encoder before EOF|Error sending frames to consumers|"
                             r"Error while filtering|Error marking filters as finished")
        specific = [x for x in lines if not generic.search(x)]
        for pool in (specific, lines):
            for pat in (r"[Ee]rror", r"[Ii]nvalid", r"[Uu]nrecognized", r"[Nn]o such", r"not found",
                        r"[Ff]ailed"):
                for ln in pool:
                    if re.search(pat, ln):
                        return ln
        return lines[-1] if lines else ""


def read_lines(fd: int, on_lines: Callable[[List[bytes]], None]) -> None:
    """Read a pipe to its end, handing over complete lines in batches; closes fd."""
    with os.fdopen(fd, "rb", buffering=0) as f:
        pending = b""
        while True:
            try:
                chunk = f.read(65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            on_lines(lines)


def _strip_level(line: str) -> str:
    return re.sub(r"\[(?:trace|debug|verbose|info|warning|error|fatal|panic)\] ?", "", line, count=1)


def exit_status_text(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"
