"""Where scores go: JSON Lines as computed, the summary report, the summary
table and the progress line on stderr."""
from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections import deque
from typing import IO, Dict, List, Optional

from .errors import UsageError


def _clean(v):
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return round(v, 6)
    return v


def record_json(rec: dict) -> str:
    return json.dumps({k: _clean(v) for k, v in rec.items()}, separators=(",", ":"))


class JsonLinesLog:
    """One JSON object per frame, each flushed as soon as it is written."""

    def __init__(self, path: str):
        self.path = path
        if path == "-":
            self.f: IO[str] = sys.stdout
            self._own = False
        else:
            try:
                self.f = open(path, "w", encoding="utf-8")
            except OSError as e:
                raise UsageError(f"cannot write log {path}: {e.strerror}") from None
            self._own = True

    def write(self, rec: dict) -> None:
        self.f.write(record_json(rec) + "\n")
        self.f.flush()

    def close(self) -> None:
        if self._own:
            self.f.close()
        else:
            self.f.flush()


def check_writable(path: Optional[str], what: str) -> None:
    if not path or path == "-":
        return
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise UsageError(f"cannot write {what} {path}: folder {d} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {what} {path}: it is a folder")
    if not os.access(d, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {what} {path}: permission denied")


def write_report(path: str, report: dict) -> None:
    text = json.dumps(_clean_tree(report), indent=2)
    if path == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def _clean_tree(x):
    if isinstance(x, dict):
        return {k: _clean_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean_tree(v) for v in x]
    return _clean(x)


# the order metrics are shown in
_ORDER = ["vmaf", "vmaf_ci_low", "vmaf_ci_high", "psnr_y", "psnr_u", "psnr_v", "psnr_avg",
          "ssim_y", "ssim_u", "ssim_v", "ssim", "ms_ssim"]


def metric_order(keys) -> List[str]:
    keys = list(keys)
    first = [k for k in _ORDER if k in keys]
    return first + sorted(k for k in keys if k not in first)


def summary_table(summary: Dict[str, Dict[str, float]], title: str = "") -> str:
    cols = ["mean", "harmonic_mean", "min", "p1", "p5", "p50", "max"]
    heads = ["mean", "hmean", "min", "p1", "p5", "p50", "max"]
    keys = metric_order(summary)
    if not keys:
        return (title + "\n" if title else "") + "  (no frames scored)\n"
    w = max(len(k) for k in keys) + 2
    lines = [title] if title else []
    lines.append(" " * w + "".join(f"{h:>10}" for h in heads))
    for k in keys:
        s = summary[k]
        lines.append(f"{k:<{w}}" + "".join(f"{_fmt(s.get(c)):>10}" for c in cols))
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if abs(v) >= 100:
        return f"{v:.2f}"
    if abs(v) >= 1:
        return f"{v:.3f}"
    return f"{v:.5f}"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _score_text(name: str, v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return f"{name} -"
    return f"{name} {v:.4f}" if abs(v) < 2 else f"{name} {v:.2f}"


def format_progress(done: int, total: Optional[int] = None, fps: Optional[float] = None,
                    scores=(), speed: Optional[float] = None, skipped: int = 0,
                    width: Optional[int] = None, bar_chars: str = "#.") -> str:
    """One progress line: ``vqa: 42% [####....] 1234/2940 frames | 58.1 fps |
    ETA 0:29 | vmaf 93.41``.  ``width``: the terminal width, to draw a bar
    (None: no bar, as in plain lines); ``scores``: (name, value) pairs."""
    tail = []
    if fps:
        tail.append(f"{fps:.1f} fps")
    if speed:
        tail.append(f"speed {speed:.2f}x")
    if total:
        left = max(0, total - done)
        tail.append(f"ETA {_clock(left / fps)}" if fps and left else ("ETA 0:00" if not left else "ETA -"))
    if skipped:
        tail.append(f"{skipped} skipped")
    tail += [_score_text(n, v) for n, v in scores]
    if total:
        frac = min(1.0, max(0.0, done / total))
        head = f"vqa: {int(frac * 100):3d}%"
        count = f"{done}/{total} frames"
    else:
        frac = None
        head = "vqa:"
        count = f"{done} frames"
    rest = " | ".join([count] + tail)
    if width is None or frac is None:
        return f"{head} {rest}"
    room = width - 1 - len(head) - len(rest) - 4
    barw = min(40, room)
    if barw < 10:
        return f"{head} {rest}"[: width - 1]
    fill = int(round(frac * barw))
    bar = bar_chars[0] * fill + bar_chars[1] * (barw - fill)
    return f"{head} [{bar}] {rest}"


class StderrWriter:
    """Serializes writes to stderr and keeps a one-line progress display on a
    terminal (cleared before any other line is written).

    Progress: ``set_total(n)`` once the frame count is known (None: unknown;
    no percentage, bar or ETA then), and ``progress(done, scores=...)`` after
    records are scored (cheap: redrawn at most every ``min_interval``
    seconds).  On a terminal that is a bar with frames, fps, ETA and the
    running scores, redrawn in place; otherwise a plain line every
    ``plain_every`` seconds.  ``status(line)`` shows any line instead."""

    def __init__(self, stream=None, progress: bool = True, min_interval: float = 0.25,
                 plain_every: float = 5.0):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.progress_enabled = progress
        self.min_interval = min_interval
        self.plain_every = plain_every
        self._lock = threading.Lock()
        self._status = ""
        self._last_plain = -math.inf
        self._last_draw = -math.inf
        self.total: Optional[int] = None
        self._samples: "deque" = deque()
        enc = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        self._bar_chars = "\u2588\u2591" if enc in ("utf8", "utf_8") else "#."

    def write(self, text: str) -> None:
        with self._lock:
            if self.tty and self._status:
                self.stream.write("\r\033[K")
            self.stream.write(text)
            if self.tty and self._status:
                self.stream.write(self._status)
            self.stream.flush()

    def status(self, line: str, plain_every: Optional[float] = None) -> None:
        if not self.progress_enabled:
            return
        every = self.plain_every if plain_every is None else plain_every
        with self._lock:
            if self.tty:
                self._status = line
                self.stream.write("\r\033[K" + line)
                self.stream.flush()
            else:
                now = time.monotonic()
                if now - self._last_plain >= every:
                    self._last_plain = now
                    self.stream.write(line + "\n")
                    self.stream.flush()

    def set_total(self, n: Optional[int]) -> None:
        """The number of frames that will be scored (None or 0: unknown)."""
        self.total = int(n) if n else None

    def rate(self, done: int, now: Optional[float] = None) -> Optional[float]:
        """Frames per second over about the last five seconds."""
        now = time.monotonic() if now is None else now
        s = self._samples
        if not s or done != s[-1][1]:
            s.append((now, done))
        while len(s) > 2 and now - s[1][0] >= 5.0:
            s.popleft()
        if len(s) < 2 or s[-1][0] <= s[0][0]:
            return None
        return (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0])

    def progress(self, done: int, scores=(), fps: Optional[float] = None,
                 speed: Optional[float] = None, skipped: int = 0, force: bool = False) -> None:
        """Show progress: ``done`` frames scored; ``scores`` (name, value)
        pairs of the latest record(s); ``fps`` (default: vqa's own rate);
        ``speed`` ffmpeg's speed; ``skipped`` frames dropped (live)."""
        if not self.progress_enabled:
            return
        now = time.monotonic()
        rate = self.rate(done, now)
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        width = None
        if self.tty:
            import shutil
            width = shutil.get_terminal_size((80, 24)).columns
        line = format_progress(done, self.total, fps if fps is not None else rate, scores,
                               speed, skipped, width, self._bar_chars)
        self.status(line)

    def end_status(self) -> None:
        with self._lock:
            if self.tty and self._status:
                self.stream.write("\r\033[K")
                self.stream.flush()
            self._status = ""
