"""``--html PATH``: one self-contained HTML report that a person reads.

The page has: the run's status, inputs and settings; the pooled summary table
of every metric (per stream when several); every metric over time (one plot per
metric, a line per stream, VMAF's confidence interval as a band, the worst
frames marked); and the worst frames with reference, distorted and difference
crops side by side.  Plots are drawn by matplotlib as inline SVG, images are
PNG ``data:`` URIs, and a Content-Security-Policy forbids any fetch, so the file
opens anywhere without a network.  matplotlib is the optional ``report``
extra: :func:`require_matplotlib` says so in one line.

Use::

    rep = HtmlReport()                    # at session start
    rep.add(rec)                          # for every record, as it is yielded
    rep.write(path, report=..., worst=[keeper, ...], settings={...})   # at the end

or ``write_html(path, records, ...)`` with all records at once.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import struct
import zlib
from array import array
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import UsageError

NON_METRIC_KEYS = ("frame", "pts", "output", "stream", "type")
POOL_COLUMNS = ("mean", "harmonic_mean", "min", "p1", "p5", "p50", "max")

INSTALL_HINT = "pip install 'vqa[report]'"


def require_matplotlib() -> None:
    """Raise UsageError (one line) when matplotlib is missing.  Call it when
    the options are checked, before any work starts."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(f"--html needs matplotlib, which is not installed: {INSTALL_HINT}") from None


# ---------------------------------------------------------------- PNG

def png_bytes(rgb: np.ndarray) -> bytes:
    """An HxWx3 (or HxW) uint8 image as PNG bytes (zlib only, no dependency)."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    h, w, c = a.shape
    raw = np.zeros((h, 1 + w * c), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = a.reshape(h, w * c)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    color = {3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + chunk(b"IEND", b""))


def png_data_uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")


# ---------------------------------------------------------------- collecting

class _Series:
    """Per-frame values of one stream, compact (8 bytes per value)."""

    def __init__(self, output, stream):
        self.output = output
        self.stream = stream
        self.frames = array("q")
        self.pts = array("d")
        self.cols: Dict[str, array] = {}

    def add(self, rec: dict) -> None:
        n = len(self.frames)
        self.frames.append(int(rec["frame"]))
        p = rec.get("pts")
        self.pts.append(float(p) if isinstance(p, (int, float)) else math.nan)
        for k, v in rec.items():
            if k in NON_METRIC_KEYS or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            col = self.cols.get(k)
            if col is None:
                col = self.cols[k] = array("d", [math.nan]) * n
            col.append(float(v))
        for col in self.cols.values():
            if len(col) == n:
                col.append(math.nan)

    def values(self, key: str) -> np.ndarray:
        return np.frombuffer(self.cols[key], dtype=np.float64) if key in self.cols else np.empty(0)


class HtmlReport:
    """Collects records during a run; ``write()`` makes the page at the end.

    Memory: 8 bytes per metric per frame and stream (20 metrics over an hour
    of 60 fps video: about 35 MB).
    Non-frame records (``type`` other than ``frame``: windows, alerts) are kept,
    up to ``max_events``, and listed in an Events table."""

    def __init__(self, title: Optional[str] = None, max_events: int = 500):
        self.title = title
        self.max_events = max_events
        self._series: Dict[Tuple, _Series] = {}
        self.events: List[dict] = []
        self.events_dropped = 0

    def add(self, rec: dict) -> None:
        if "frame" not in rec or rec.get("type", "frame") != "frame":
            if len(self.events) < self.max_events:
                self.events.append(dict(rec))
            else:
                self.events_dropped += 1
            return
        key = (rec.get("output"), rec.get("stream"))
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series(*key)
        s.add(rec)

    @property
    def frames(self) -> int:
        return sum(len(s.frames) for s in self._series.values())

    def write(self, path: str, report: Optional[dict] = None, worst: Sequence = (),
              settings: Optional[dict] = None, title: Optional[str] = None,
              max_points: int = 2000) -> None:
        """Write the page to ``path`` (atomically: PATH.tmp, then renamed).

        ``report``: the summary report dict (as ``--report`` writes it): its
        inputs, ffmpeg, versions, status and per-stream summaries are shown.
        ``worst``: :class:`~vqa_filter.worst.WorstFrames` keepers, one per
        stream (their ``label`` names the stream).  ``settings``: the options
        of the run, shown as given."""
        require_matplotlib()
        page = _render(self, report or {}, list(worst), settings or {},
                       title or self.title, max_points)
        if path == "-":
            import sys
            sys.stdout.write(page)
            sys.stdout.flush()
            return
        tmp = path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(page)
            os.replace(tmp, path)
        except OSError as e:
            raise UsageError(f"cannot write HTML report {path}: {e.strerror}") from None


def write_html(path: str, records: Iterable[dict], report: Optional[dict] = None,
               worst: Sequence = (), settings: Optional[dict] = None,
               title: Optional[str] = None, max_points: int = 2000) -> None:
    """Write the report from all records at once (see :class:`HtmlReport`)."""
    rep = HtmlReport(title)
    for r in records:
        rep.add(r)
    rep.write(path, report=report, worst=worst, settings=settings, max_points=max_points)


# ---------------------------------------------------------------- rendering

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;color:#1d232a;background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d5d9de;
 padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#5a6470}.ok{color:#17803d;font-weight:600}.bad{color:#b42318;font-weight:600}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d5d9de;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#eef1f4}td.k,th.k{text-align:left}
table.kv td{text-align:left}table.kv td:first-child{font-weight:600;white-space:nowrap}
code,pre{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}pre{margin:0;white-space:pre-wrap;
 word-break:break-all}
.plot{background:#fff;border:1px solid #d5d9de;margin:8px 0;padding:4px}
.plot svg{width:100%;height:auto;display:block}
.worst{background:#fff;border:1px solid #d5d9de;margin:10px 0;padding:8px 10px}
.worst .head{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
.crops{display:grid;grid-template-columns:repeat(3,1fr);gap:8px;margin-top:8px}
.crops figure,.head figure{margin:0}.crops img{width:100%;height:auto;image-rendering:pixelated;
 display:block;border:1px solid #c5cad0}
figcaption{font-size:12px;color:#5a6470;margin-top:2px}
.nums{font-size:12px;color:#3a434d}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        a = abs(v)
        if a >= 100:
            return f"{v:.2f}"
        if a >= 1:
            return f"{v:.3f}"
        return f"{v:.5f}"
    return _e(v)


def _order(keys) -> List[str]:
    from .emit import metric_order
    return metric_order(keys)


def _stream_label(s: _Series, report: dict) -> str:
    for st in report.get("streams", []) or []:
        if st.get("output") == s.output and st.get("stream") == s.stream and st.get("label"):
            return st["label"]
    if s.output is None and s.stream is None:
        return report.get("label") or "stream"
    return f"{os.path.basename(str(s.output))} #{s.stream}"


def _summaries(rep: HtmlReport, report: dict) -> List[Tuple[str, dict, dict]]:
    """(label, summary {metric: pooled}, extra {frames, skipped, format})."""
    out = []
    if report.get("streams"):
        for st in report["streams"]:
            out.append((st.get("label") or f"{st.get('output')} #{st.get('stream')}",
                        st.get("summary") or {},
                        {"frames": st.get("frames"), "skipped": st.get("frames_skipped"),
                         "format": st.get("format")}))
        return out
    if report.get("summary") is not None:
        label = next((_stream_label(s, report) for s in rep._series.values()), "")
        return [(label, report["summary"], {"frames": report.get("frames"),
                                            "format": report.get("format")})]
    from vqa_core.pooling import pool
    for s in rep._series.values():
        out.append((_stream_label(s, report), {k: pool(s.values(k)) for k in s.cols},
                    {"frames": len(s.frames)}))
    return out


def _summary_table(summary: dict) -> str:
    keys = _order(summary)
    if not keys:
        return "<p class=meta>No frames scored.</p>"
    heads = "".join(f"<th>{c.replace('harmonic_mean', 'hmean')}</th>" for c in POOL_COLUMNS)
    rows = []
    for k in keys:
        s = summary[k] or {}
        rows.append(f"<tr><td class=k>{_e(k)}</td>"
                    + "".join(f"<td>{_num(s.get(c))}</td>" for c in POOL_COLUMNS) + "</tr>")
    return f"<table><tr><th class=k>metric</th>{heads}</tr>{''.join(rows)}</table>"


def _kv_table(d: dict) -> str:
    rows = []
    for k, v in d.items():
        if v is None or v == [] or v == {}:
            continue
        if isinstance(v, (dict, list, tuple)):
            if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v) and k == "command":
                cell = f"<pre>{_e(' '.join(_shell_quote(x) for x in v))}</pre>"
            else:
                cell = f"<pre>{_e(json.dumps(v, indent=1, default=str))}</pre>"
        else:
            cell = _e(v) if not isinstance(v, float) else _num(v)
        rows.append(f"<tr><td>{_e(k)}</td><td>{cell}</td></tr>")
    return f"<table class=kv>{''.join(rows)}</table>" if rows else ""


def _shell_quote(s: str) -> str:
    import shlex
    return shlex.quote(s)


def _envelope(x: np.ndarray, y: np.ndarray, max_points: int):
    """(x, mean, lo, hi) in at most max_points buckets; lo/hi None if not reduced."""
    n = len(x)
    if n <= max_points:
        return x, y, None, None
    nb = max_points
    edges = np.linspace(0, n, nb + 1).astype(int)
    xs, m, lo, hi = [], [], [], []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        seg = y[a:b]
        seg = seg[np.isfinite(seg)]
        xs.append(x[(a + b - 1) // 2])
        if seg.size:
            m.append(seg.mean()); lo.append(seg.min()); hi.append(seg.max())
        else:
            m.append(np.nan); lo.append(np.nan); hi.append(np.nan)
    return np.array(xs), np.array(m), np.array(lo), np.array(hi)


def _svg(fig, salt: str) -> str:
    import matplotlib
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    s = buf.getvalue()
    s = s[s.index("<svg"):]
    # ids must be unique in the page: give this figure's ids (and the
    # references to them) a prefix of their own
    import re
    p = salt + "-"
    s = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{p}{m.group(1)}"', s)
    s = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{p}{m.group(1)})", s)
    s = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{p}{m.group(1)}"', s)
    return s


def _plots(rep: HtmlReport, report: dict, worst_marks: Dict[Tuple, List[Tuple[int, float]]],
           worst_key: Optional[str], max_points: int) -> List[Tuple[str, str]]:
    from matplotlib.figure import Figure
    series = list(rep._series.values())
    keys: List[str] = []
    for s in series:
        for k in s.cols:
            if k not in keys:
                keys.append(k)
    keys = _order(keys)
    # a CI band is drawn on its score's plot, not as plots of its own
    bands = {}
    for k in keys:
        if k.endswith("_ci_low") and k[:-7] + "_ci_high" in keys and k[:-7] in keys:
            bands[k[:-7]] = (k, k[:-7] + "_ci_high")
    skip = {b for pair in bands.values() for b in pair}
    colors = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7ea4", "#cf222e", "#57606a"]
    out = []
    for i, k in enumerate(keys):
        if k in skip:
            continue
        fig = Figure(figsize=(11, 2.6), dpi=72)
        ax = fig.add_subplot(1, 1, 1)
        drawn = False
        for j, s in enumerate(series):
            if k not in s.cols:
                continue
            c = colors[j % len(colors)]
            x = np.frombuffer(s.frames, dtype=np.int64).astype(np.float64)
            y = s.values(k)
            label = _stream_label(s, report) if len(series) > 1 else k
            xs, m, lo, hi = _envelope(x, y, max_points)
            if lo is not None:
                ax.fill_between(xs, lo, hi, color=c, alpha=0.18, linewidth=0)
            if k in bands:
                blo, bhi = bands[k]
                bx, bl, _, _ = _envelope(x, s.values(blo), max_points)
                _, bh, _, _ = _envelope(x, s.values(bhi), max_points)
                ax.fill_between(bx, bl, bh, color=c, alpha=0.22, linewidth=0,
                                label="95% CI" if j == 0 else None)
            ax.plot(xs, m, color=c, linewidth=1.0, label=label)
            if k == worst_key:
                marks = worst_marks.get((s.output, s.stream), [])
                if marks:
                    ax.plot([p[0] for p in marks], [p[1] for p in marks], "v", color="#cf222e",
                            markersize=6, label="worst frames" if j == 0 else None)
            drawn = True
        if not drawn:
            continue
        ax.set_title(k, loc="left", fontsize=11)
        ax.set_xlabel("frame", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
        if len(series) > 1 or k in bands or (k == worst_key and worst_marks):
            ax.legend(fontsize=8, loc="lower left", framealpha=0.8)
        out.append((k, _svg(fig, f"vqa{i}")))
    return out


def _thumb_with_box(w) -> np.ndarray:
    t = w.thumb.copy()
    th, tw = t.shape[:2]
    fw, fh = w.frame_size
    x, y, bw, bh = w.box
    sx, sy = tw / fw, th / fh
    x0, y0 = int(x * sx), int(y * sy)
    x1 = min(tw - 1, max(x0 + 1, int((x + bw) * sx) - 1))
    y1 = min(th - 1, max(y0 + 1, int((y + bh) * sy) - 1))
    col = np.array([255, 214, 0], dtype=np.uint8)
    for d in (0, 1):
        t[min(th - 1, y0 + d), x0:x1 + 1] = col
        t[max(0, y1 - d), x0:x1 + 1] = col
        t[y0:y1 + 1, min(tw - 1, x0 + d)] = col
        t[y0:y1 + 1, max(0, x1 - d)] = col
    return t


def _worst_section(keepers: Sequence, frames_by: List[Tuple[object, list]]) -> str:
    parts = []
    for keeper, frames in frames_by:
        label = getattr(keeper, "label", None)
        key = getattr(keeper, "key", None) or "score"
        head = f"<h3>{_e(label)}</h3>" if label and len(frames_by) > 1 else ""
        if not frames:
            parts.append(head + "<p class=meta>No frames kept.</p>")
            continue
        parts.append(head)
        for rank, w in enumerate(frames, 1):
            when = f", {w.pts:.3f} s" if isinstance(w.pts, (int, float)) and math.isfinite(w.pts) else ""
            nums = ", ".join(f"{_e(k)} {_num(v)}" for k, v in w.record.items()
                             if k not in ("frame", "pts", "stream"))
            x, y, bw, bh = w.box
            parts.append(
                f"<div class=worst><div class=head><figure><img alt='frame {w.index} thumbnail' "
                f"src='{png_data_uri(_thumb_with_box(w))}' width={w.thumb.shape[1]} "
                f"height={w.thumb.shape[0]}><figcaption>whole frame, crop marked</figcaption></figure>"
                f"<div><b>#{rank}: frame {w.index}{when}</b> — {_e(key)} <b>{_num(w.score)}</b>"
                f"<div class=nums>{nums}</div>"
                f"<div class=nums>crop {bw}x{bh} at ({x}, {y}) of {w.frame_size[0]}x{w.frame_size[1]}"
                f"</div></div></div><div class=crops>"
                f"<figure><img alt='reference' src='{png_data_uri(w.ref)}'>"
                f"<figcaption>reference</figcaption></figure>"
                f"<figure><img alt='distorted' src='{png_data_uri(w.dis)}'>"
                f"<figcaption>distorted</figcaption></figure>"
                f"<figure><img alt='difference' src='{png_data_uri(w.diff)}'>"
                f"<figcaption>|difference| of luma ×4 (black 0, red, yellow, white ≥ 64 levels)"
                f"</figcaption></figure></div></div>")
    return "".join(parts)


def _events_table(rep: HtmlReport) -> str:
    if not rep.events:
        return ""
    keys: List[str] = []
    for ev in rep.events:
        for k in ev:
            if k not in keys:
                keys.append(k)
    head = "".join(f"<th class=k>{_e(k)}</th>" for k in keys)
    rows = "".join("<tr>" + "".join(
        f"<td class=k>{_num(ev.get(k)) if not isinstance(ev.get(k), (dict, list)) else _e(json.dumps(ev.get(k)))}</td>"
        for k in keys) + "</tr>" for ev in rep.events)
    more = (f"<p class=meta>{rep.events_dropped} more not shown.</p>" if rep.events_dropped else "")
    return f"<h2>Events</h2><table><tr>{head}</tr>{rows}</table>{more}"


def _render(rep: HtmlReport, report: dict, worst: Sequence, settings: dict,
            title: Optional[str], max_points: int) -> str:
    title = title or "vqa report"
    frames_by = [(k, k.frames()) for k in worst]
    worst_key = next((getattr(k, "key", None) for k in worst if getattr(k, "key", None)), None)
    marks: Dict[Tuple, List[Tuple[int, float]]] = {}
    series = list(rep._series.values())
    for keeper, frames in frames_by:
        label = getattr(keeper, "label", None)
        target = None
        for s in series:
            if len(series) == 1 or _stream_label(s, report) == label:
                target = (s.output, s.stream)
                break
        if target is not None:
            marks.setdefault(target, []).extend((w.index, w.score) for w in frames)

    status = ""
    if report:
        if report.get("complete", True) and not report.get("error"):
            status = "<span class=ok>complete</span>"
        else:
            status = f"<span class=bad>incomplete: {_e(report.get('error'))}</span>"
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    ver = report.get("vqa_version")
    meta = [f"written {now}"]
    if ver:
        meta.append(f"vqa {_e(ver)}")
    if report.get("mode"):
        meta.append(_e(report["mode"]))
    meta.append(f"{rep.frames} frame records")

    body = [f"<h1>{_e(title)}</h1><p class=meta>{' · '.join(meta)} {status}</p>"]

    body.append("<h2>Summary</h2>")
    sums = _summaries(rep, report)
    for label, summary, extra in sums:
        info = []
        if extra.get("frames") is not None:
            info.append(f"{extra['frames']} frames scored")
        if extra.get("skipped"):
            info.append(f"{extra['skipped']} skipped")
        if extra.get("format"):
            info.append(_e(extra["format"]))
        body.append(f"<h3>{_e(label)}</h3>" if label and len(sums) > 1 else "")
        body.append(f"<p class=meta>{', '.join(info)}</p>" if info else "")
        body.append(_summary_table(summary))

    plots = _plots(rep, report, marks, worst_key, max_points) if series else []
    body.append("<h2>Metrics over time</h2>")
    if not plots:
        body.append("<p class=meta>No frames scored.</p>")
    for k, svg in plots:
        body.append(f"<div class=plot id='plot-{_e(k)}'>{svg}</div>")

    if worst:
        body.append(f"<h2>Worst frames (by {_e(worst_key or 'score')})</h2>")
        body.append(_worst_section(worst, frames_by))

    body.append(_events_table(rep))

    body.append("<h2>Inputs and settings</h2>")
    run = {}
    for k in ("mode", "inputs", "ffmpeg", "metrics", "models", "format", "frames", "exit_code",
              "error", "notes", "vqa_version", "vqa_core_version"):
        if k in report:
            run[k] = report[k]
    inputs = run.pop("inputs", None)
    if isinstance(inputs, dict):
        body.append("<h3>Inputs</h3>" + _kv_table(inputs))
    elif inputs:
        body.append("<h3>Inputs</h3>" + _kv_table({"inputs": inputs}))
    if run:
        body.append("<h3>Run</h3>" + _kv_table(run))
    if settings:
        body.append("<h3>Settings</h3>" + _kv_table(settings))

    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           "font-src 'none'; script-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'")
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            "<link rel=icon href='data:,'>"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
            + "".join(body) + "</main></body></html>\n")
