"""Where scores go: JSON Lines as computed, the summary report, the summary
table and the progress line on stderr."""
from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
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


class StderrWriter:
    """Serializes writes to stderr and keeps a one-line progress display on a
    terminal (cleared before any other line is written)."""

    def __init__(self, stream=None, progress: bool = True):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.progress = progress
        self._lock = threading.Lock()
        self._status = ""
        self._last_plain = 0.0

    def write(self, text: str) -> None:
        with self._lock:
            if self.tty and self._status:
                self.stream.write("\r\033[K")
            self.stream.write(text)
            if self.tty and self._status:
                self.stream.write(self._status)
            self.stream.flush()

    def status(self, line: str, plain_every: float = 5.0) -> None:
        if not self.progress:
            return
        with self._lock:
            if self.tty:
                self._status = line
                self.stream.write("\r\033[K" + line)
                self.stream.flush()
            else:
                now = time.monotonic()
                if now - self._last_plain >= plain_every:
                    self._last_plain = now
                    self.stream.write(line + "\n")
                    self.stream.flush()

    def end_status(self) -> None:
        with self._lock:
            if self.tty and self._status:
                self.stream.write("\r\033[K")
                self.stream.flush()
            self._status = ""
