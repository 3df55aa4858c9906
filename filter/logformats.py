"""Per-frame log writers other than JSON Lines: CSV and libvmaf's JSON log.

Every writer has :class:`~vqa_filter.emit.JsonLinesLog`'s interface:
``Writer(path)`` (``-`` is stdout; an unwritable path raises UsageError),
``write(rec)`` for each record, ``close()`` once.  :func:`open_log` picks one
by its ``--log-format`` name.

Only frame records are logged in these formats: a record is a frame record
when it has a ``frame`` key and no ``type`` key other than ``"frame"`` (so
window and alert records, which JSON Lines carries, are skipped here and
counted in ``skipped``).

* ``csv`` (:class:`CsvLog`): one row per frame, flushed as written.  The header
  is the first frame record's keys, in order.  A key that first appears in a
  later record gets a column at the end: the rows written so far are kept and,
  when the log is a file, it is rewritten once at close() with the full header
  (earlier rows have that cell empty).  On stdout, which cannot be rewritten,
  such keys are left out and listed in ``dropped_keys``.  Missing, None and
  non-finite values are empty cells.
* ``libvmaf-json`` (:class:`LibvmafJsonLog`): libvmaf's ``--json`` log layout
  (``version``, ``fps``, ``frames`` [{``frameNum``, ``metrics``}],
  ``pooled_metrics`` {name: {min, max, mean, harmonic_mean}},
  ``aggregate_metrics``), metric names spelt as libvmaf spells them
  (:func:`libvmaf_name`).  It is one JSON document, so it is written at
  close(): nothing is in the file until the run ends.  Values are kept
  compactly (8 bytes per metric per frame) until then.  Records from several
  streams (``output``/``stream`` keys) go to one file per stream.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
import time
from array import array
from typing import IO, Dict, List, Optional, Tuple

from .emit import JsonLinesLog, _clean
from .errors import UsageError

LOG_FORMATS = ("jsonl", "csv", "libvmaf-json")

#: record keys that describe the frame, not a metric
NON_METRIC_KEYS = ("frame", "pts", "output", "stream", "type")


def is_frame_record(rec: dict) -> bool:
    return "frame" in rec and rec.get("type", "frame") == "frame"


def open_log(path: str, fmt: str = "jsonl"):
    """The writer for ``--log PATH --log-format FMT``."""
    if fmt == "jsonl":
        return JsonLinesLog(path)
    if fmt == "csv":
        return CsvLog(path)
    if fmt == "libvmaf-json":
        return LibvmafJsonLog(path)
    raise UsageError(f"unknown log format {fmt!r}; known: {', '.join(LOG_FORMATS)}")


def _open(path: str, what: str = "log") -> Tuple[IO[str], bool]:
    if path == "-":
        return sys.stdout, False
    try:
        return open(path, "w", encoding="utf-8", newline=""), True
    except OSError as e:
        raise UsageError(f"cannot write {what} {path}: {e.strerror}") from None


# ---------------------------------------------------------------- CSV

def _cell(v) -> str:
    v = _clean(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


class CsvLog:
    """One CSV row per frame record, flushed as written (see the module doc)."""

    def __init__(self, path: str):
        self.path = path
        self.f, self._own = _open(path)
        self._w = csv.writer(self.f, lineterminator="\n")
        self.columns: List[str] = []
        self.dropped_keys: List[str] = []
        self._extra: List[str] = []
        self.rows = 0
        self.skipped = 0

    def write(self, rec: dict) -> None:
        if not is_frame_record(rec):
            self.skipped += 1
            return
        if not self.columns:
            self.columns = list(rec)
            self._w.writerow(self.columns)
        else:
            for k in rec:
                if k not in self.columns and k not in self._extra:
                    self._extra.append(k)
        cols = self.columns + (self._extra if self._own else [])
        self._w.writerow([_cell(rec.get(k)) for k in cols])
        self.rows += 1
        self.f.flush()

    def close(self) -> None:
        if not self._own:
            self.dropped_keys = list(self._extra)
            self.f.flush()
            return
        self.f.close()
        if self._extra:
            self._rewrite()

    def _rewrite(self) -> None:
        cols = self.columns + self._extra
        tmp = self.path + ".tmp"
        with open(self.path, newline="", encoding="utf-8") as src, \
                open(tmp, "w", newline="", encoding="utf-8") as dst:
            r = csv.reader(src)
            w = csv.writer(dst, lineterminator="\n")
            next(r, None)
            w.writerow(cols)
            for row in r:
                w.writerow(row + [""] * (len(cols) - len(row)))
        os.replace(tmp, self.path)
        self.columns = cols
        self._extra = []


# ---------------------------------------------------------------- libvmaf JSON

_INTEGER_FEATURES = re.compile(r"(vif_scale[0-3]|adm2|adm3|aim|adm_scale[0-3]|motion2|motion3)")
_RENAME = {
    "psnr_u": "psnr_cb",
    "psnr_v": "psnr_cr",
    "ssim_y": "float_ssim",
    "ms_ssim": "float_ms_ssim",
    "motion": "VMAF_integer_feature_motion_sad_score",
}


def libvmaf_name(key: str) -> str:
    """libvmaf's spelling of one of vqa's record keys.

    ``vif_scale0`` → ``integer_vif_scale0`` (and adm*, aim, motion2, motion3),
    ``motion`` → ``VMAF_integer_feature_motion_sad_score``, ``psnr_u``/``_v`` →
    ``psnr_cb``/``_cr``, ``ssim_y`` → ``float_ssim`` (libvmaf's SSIM is luma
    only), ``ms_ssim`` → ``float_ms_ssim``, ``*_ci_low``/``*_ci_high`` →
    ``*_ci_p95_lo``/``*_ci_p95_hi``.  ``vmaf``, model names, ``psnr_y``,
    ``cambi`` and ``speed_chroma_*`` are libvmaf's own names already; keys
    libvmaf has no name for (``psnr_avg``, ``ssim``, ``ssim_u``, ``ssim_v``)
    are kept as they are.
    """
    if key in _RENAME:
        return _RENAME[key]
    if _INTEGER_FEATURES.fullmatch(key):
        return "integer_" + key
    if key.endswith("_ci_low"):
        return key[:-len("_ci_low")] + "_ci_p95_lo"
    if key.endswith("_ci_high"):
        return key[:-len("_ci_high")] + "_ci_p95_hi"
    return key


def _version() -> str:
    try:
        from importlib.metadata import version
        return f"vqa-{version('vqa')}"
    except Exception:
        return "vqa"


class _Stream:
    def __init__(self):
        self.frames = array("q")
        self.cols: Dict[str, array] = {}  # libvmaf name -> values (NaN: none)

    def add(self, rec: dict) -> None:
        n = len(self.frames)
        self.frames.append(int(rec["frame"]))
        for k, v in rec.items():
            if k in NON_METRIC_KEYS or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            name = libvmaf_name(k)
            col = self.cols.get(name)
            if col is None:
                col = self.cols[name] = array("d", [math.nan]) * n
            col.append(float(v))
        for col in self.cols.values():
            if len(col) == n:
                col.append(math.nan)

    def document(self, version: str, fps: float) -> dict:
        frames = []
        names = list(self.cols)
        for i, fr in enumerate(self.frames):
            m = {}
            for name in names:
                v = self.cols[name][i]
                if math.isfinite(v):
                    m[name] = round(v, 6)
            frames.append({"frameNum": fr, "metrics": m})
        pooled = {}
        for name in names:
            vals = [v for v in self.cols[name] if math.isfinite(v)]
            if not vals:
                continue
            p = {"min": min(vals), "max": max(vals), "mean": math.fsum(vals) / len(vals)}
            if all(v > -1 for v in vals):
                p["harmonic_mean"] = len(vals) / math.fsum(1.0 / (v + 1.0) for v in vals) - 1.0
            pooled[name] = {k: round(v, 6) for k, v in p.items()}
        return {"version": version, "fps": round(fps, 2), "frames": frames,
                "pooled_metrics": pooled, "aggregate_metrics": {}}


class LibvmafJsonLog:
    """libvmaf's JSON log layout, written at close() (see the module doc).

    With records of several streams, stream k (0-based, in the order given by
    ``set_stream_order``, else the order streams first appear) goes to
    ``STEM.k.EXT`` beside PATH (``scores.json`` → ``scores.0.json``,
    ``scores.1.json``); on stdout the documents follow one another, one per
    line.  ``paths`` lists the files written."""

    def __init__(self, path: str, version: Optional[str] = None):
        self.path = path
        self.version = version or _version()
        self.f, self._own = _open(path)
        self._streams: Dict[Tuple, _Stream] = {}
        self._t0: Optional[float] = None
        self.skipped = 0
        self.paths: List[str] = []
        self._order: List[Tuple] = []

    def set_stream_order(self, keys) -> None:
        """The streams' (output, stream) keys in the order their files are
        numbered (the order of the report's ``streams``)."""
        self._order = [tuple(k) for k in keys]

    def write(self, rec: dict) -> None:
        if not is_frame_record(rec):
            self.skipped += 1
            return
        if self._t0 is None:
            self._t0 = time.monotonic()
        key = (rec.get("output"), rec.get("stream"))
        s = self._streams.get(key)
        if s is None:
            s = self._streams[key] = _Stream()
        s.add(rec)

    def _fps(self, n: int) -> float:
        if self._t0 is None or n == 0:
            return 0.0
        dt = time.monotonic() - self._t0
        return n / dt if dt > 0 else 0.0

    def close(self) -> None:
        keys = [k for k in self._order if k in self._streams]
        keys += [k for k in self._streams if k not in keys]
        streams = [self._streams[k] for k in keys] or [_Stream()]
        total = sum(len(s.frames) for s in streams)
        fps = self._fps(total)
        docs = [s.document(self.version, fps) for s in streams]
        if not self._own:
            for d in docs:
                self.f.write(json.dumps(d) + "\n")
            self.f.flush()
            return
        if len(docs) == 1:
            self.f.write(json.dumps(docs[0], indent=2) + "\n")
            self.f.close()
            self.paths = [self.path]
            return
        self.f.close()
        os.unlink(self.path)
        stem, ext = os.path.splitext(self.path)
        for k, d in enumerate(docs):
            p = f"{stem}.{k}{ext or '.json'}"
            with open(p, "w", encoding="utf-8") as f:
                f.write(json.dumps(d, indent=2) + "\n")
            self.paths.append(p)
