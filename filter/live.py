"""Live monitoring: rolling windows, alerts, the metrics endpoint, and the
quality gate's option parsing.

Per scored stream a :class:`Monitor` sees every frame of the stream in frame
order -- scored ones with their record, skipped ones (dropped by the live
ring, or left out by ``--subsample``) with their timestamp -- and cuts them
into windows of ``window`` seconds of stream time (``pts``).  Each closed
window may become a ``{"type": "window", ...}`` record, is checked against
the ``--alert-below`` rule (``{"type": "alert", ...}`` records, and
``--alert-cmd``), and updates what the metrics endpoint serves.

Frame records stay as DESIGN.md names them (no ``type`` key); window and
alert records always carry ``type``.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np
from vqa_core.pooling import percentiles

from .errors import UsageError

#: pooling methods that --pool accepts
GATE_POOLS = ("mean", "harmonic_mean", "p5", "min")
#: window length used for alerts and the metrics endpoint when --window is not given
DEFAULT_WINDOW = 1.0

_NOT_METRICS = ("frame", "pts", "output", "stream", "type")


# ------------------------------------------------------------------ options

def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise UsageError(f"{what}: {text!r} is not a finite number")
    return v


def parse_threshold(spec, what: str) -> Tuple[Optional[str], float]:
    """``[METRIC=]SCORE`` -> (metric or None, score)."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return None, _number(spec, what)
    spec = str(spec).strip()
    metric = None
    if "=" in spec:
        metric, spec = (x.strip() for x in spec.split("=", 1))
        if not metric:
            raise UsageError(f"{what}: empty metric name")
    return metric, _number(spec, what)


@dataclass
class AlertRule:
    metric: Optional[str]
    threshold: float
    seconds: float = 0.0


def parse_alert(spec) -> AlertRule:
    """``[METRIC=]SCORE[:SECONDS]``."""
    what = "--alert-below"
    if isinstance(spec, AlertRule):
        return spec
    text = str(spec).strip()
    seconds = 0.0
    head = text
    if ":" in text:
        head, tail = text.rsplit(":", 1)
        seconds = _number(tail, what)
        if seconds < 0:
            raise UsageError(f"{what}: SECONDS must be 0 or more")
    metric, score = parse_threshold(head, what)
    return AlertRule(metric, score, seconds)


def record_keys(metrics: Sequence[str], models: Sequence[object], features: bool) -> List[str]:
    """The score keys frame records will have, in order."""
    from vqa_core.engine import EXTRACTOR_METRICS
    from vqa_core.features.registry import get_extractor
    keys: List[str] = []

    def add(ks):
        for k in ks:
            if k not in keys:
                keys.append(k)

    for m in metrics:
        add(get_extractor(EXTRACTOR_METRICS[m]).provides)
    for model in models:
        add(getattr(model, "outputs", ()) or ())
        if features:
            for name, _ in model.extractors():
                add(get_extractor(name).provides)
    return keys


def default_metric(metrics: Sequence[str], models: Sequence[object]) -> Optional[str]:
    """The key that gates and alerts use when none is named: the (first)
    model's score (``vmaf``) if models are scored, else the first metric's own
    key (``ssim``, ``ms_ssim``, ``cambi``; ``psnr_y`` for psnr)."""
    for model in models:
        outs = list(getattr(model, "outputs", ()) or ())
        if outs:
            return "vmaf" if "vmaf" in outs else outs[0]
    if not metrics:
        return None
    from vqa_core.engine import EXTRACTOR_METRICS
    from vqa_core.features.registry import get_extractor
    m = metrics[0]
    provides = get_extractor(EXTRACTOR_METRICS[m]).provides
    return m if m in provides else provides[0]


def check_metric(name: Optional[str], keys: Sequence[str], default: Optional[str], what: str) -> str:
    if name is None:
        name = default
    if name is None or name not in keys:
        raise UsageError(f"{what}: {name!r} is not scored in this run; scored keys: "
                         f"{', '.join(keys)}")
    return name


# ------------------------------------------------------------------ windows

def _clean(v: float) -> Optional[float]:
    return round(float(v), 6) if v is not None and math.isfinite(v) else None


class Window:
    __slots__ = ("start", "end", "values", "scored", "skipped", "subsampled", "last_pts")

    def __init__(self, start: float, end: float):
        self.start, self.end = start, end
        self.values: Dict[str, List[float]] = {}
        self.scored = self.skipped = self.subsampled = 0
        self.last_pts = start

    @property
    def frames(self) -> int:
        return self.scored + self.skipped + self.subsampled

    def stats(self) -> Dict[str, Dict[str, Optional[float]]]:
        out = {}
        for k, vals in self.values.items():
            v = np.asarray(vals, dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size == 0:
                out[k] = {"mean": None, "min": None, "p5": None}
            else:
                out[k] = {"mean": _clean(v.mean()), "min": _clean(v.min()),
                          "p5": _clean(percentiles(v, [5])[0])}
        return out


class Monitor:
    """Windows, alerts and live figures of one scored stream.

    ``emit(record)`` receives window and alert records (they go into the log
    and the session's record stream).  ``frame_dur``: seconds per frame, for
    the end of the last window.
    """

    def __init__(self, *, window: float, write_windows: bool, alert: Optional[AlertRule],
                 alert_metric: Optional[str], emit: Callable[[dict], None],
                 ident: Optional[Dict[str, object]] = None,
                 alert_runner: Optional["AlertRunner"] = None, subsample: int = 1):
        self.window = float(window)
        self.write_windows = write_windows
        self.alert = alert
        self.alert_metric = alert_metric
        self.emit = emit
        self.ident = dict(ident or {})
        self.runner = alert_runner
        self.subsample = subsample
        self.frame_dur: Optional[float] = None
        self._w: Optional[Window] = None
        self._origin: Optional[float] = None
        self._below_since: Optional[float] = None
        self._alerted = False
        self.lock = threading.Lock()
        # live figures (read by the metrics endpoint)
        self.last: Dict[str, float] = {}
        self.last_window: Dict[str, Dict[str, Optional[float]]] = {}
        self.frames_scored = 0
        self.frames_skipped = 0
        self.frames_subsampled = 0
        self.alerts = 0
        self.alert_records: Deque[dict] = deque(maxlen=1000)

    @property
    def alert_active(self) -> bool:
        return self._alerted

    # -- input, in frame order
    def scored(self, rec: dict) -> None:
        pts = rec.get("pts")
        with self.lock:
            self.frames_scored += 1
            for k, v in rec.items():
                if k in _NOT_METRICS or isinstance(v, (str, bool)) or v is None:
                    continue
                self.last[k] = float(v)
        w = self._window_for(pts)
        if w is None:
            return
        w.scored += 1
        for k, v in rec.items():
            if k in _NOT_METRICS or isinstance(v, (str, bool)) or v is None:
                continue
            w.values.setdefault(k, []).append(float(v))

    def skipped(self, pts: Optional[float], subsampled: bool = False) -> None:
        with self.lock:
            if subsampled:
                self.frames_subsampled += 1
            else:
                self.frames_skipped += 1
        w = self._window_for(pts)
        if w is None:
            return
        if subsampled:
            w.subsampled += 1
        else:
            w.skipped += 1

    def _window_for(self, pts: Optional[float]) -> Optional[Window]:
        if pts is None:
            return self._w
        if self._origin is None:
            self._origin = pts
        w = self._w
        if w is not None and pts >= w.end:
            self._close(w)
            w = self._w = None
        if w is None:
            k = math.floor((pts - self._origin) / self.window)
            start = self._origin + k * self.window
            w = self._w = Window(start, start + self.window)
        w.last_pts = max(w.last_pts, pts)
        return w

    def finish(self) -> None:
        """Close the last (partial) window."""
        w, self._w = self._w, None
        if w is not None and w.frames:
            if self.frame_dur:
                w.end = min(w.end, w.last_pts + self.frame_dur)
            self._close(w, last=True)

    # -- closing a window
    def _close(self, w: Window, last: bool = False) -> None:
        stats = w.stats()
        with self.lock:
            self.last_window = stats
        if self.write_windows:
            rec = {"type": "window", **self.ident, "start": _clean(w.start), "end": _clean(w.end),
                   "frames_scored": w.scored, "frames_skipped": w.skipped}
            if self.subsample > 1:
                rec["frames_subsampled"] = w.subsampled
            rec.update(stats)
            self.emit(rec)
        if self.alert is not None and self.alert_metric:
            self._check_alert(w, stats.get(self.alert_metric, {}).get("mean"))

    def _check_alert(self, w: Window, mean: Optional[float]) -> None:
        if mean is None:
            return  # nothing scored in this window: no evidence either way
        rule = self.alert
        if mean < rule.threshold:
            if self._below_since is None:
                self._below_since = w.start
            if not self._alerted and w.end - self._below_since >= rule.seconds - 1e-9:
                self._alerted = True
                self._alert("alert", mean, self._below_since, w.end)
        else:
            if self._alerted:
                self._alert("recovery", mean, self._below_since, w.start)
            self._alerted = False
            self._below_since = None

    def _alert(self, event: str, value: float, since: float, time: float) -> None:
        rec = {"type": "alert", **self.ident, "event": event, "metric": self.alert_metric,
               "threshold": self.alert.threshold, "value": _clean(value),
               "since": _clean(since), "time": _clean(time), "duration": _clean(time - since)}
        with self.lock:
            if event == "alert":
                self.alerts += 1
            self.alert_records.append(rec)
        self.emit(rec)
        if self.runner is not None:
            self.runner.submit(rec)


class Ledger:
    """Puts a stream's frames back in frame order for its :class:`Monitor`.

    Records come out of the scorer a little later than their pair went in
    (motion needs the next frame), while skipped frames are known at once.
    ``pts_of(index)`` gives a skipped frame's timestamp (or None)."""

    def __init__(self, monitor: Monitor, pts_of: Callable[[int], Optional[float]]):
        self.m = monitor
        self.pts_of = pts_of
        self._q: Deque[list] = deque()  # [kind, first, last, rec]

    def expect(self, index: int) -> None:
        self._q.append(["scored", index, index, None])
        # bounded: records can't lag more than a few frames behind

    def skip(self, first: int, last: int, subsampled: bool) -> None:
        if last < first:
            return
        self._q.append(["sub" if subsampled else "drop", first, last, None])
        self._resolve()

    def record(self, rec: dict) -> None:
        for e in self._q:
            if e[0] == "scored" and e[3] is None and e[1] == rec["frame"]:
                e[3] = rec
                break
        else:
            self.m.scored(rec)  # not expected (should not happen)
            return
        self._resolve()

    def _resolve(self) -> None:
        q = self._q
        while q:
            kind, first, last, rec = q[0]
            if kind == "scored":
                if rec is None:
                    return
                self.m.scored(rec)
            else:
                for i in range(first, last + 1):
                    self.m.skipped(self.pts_of(i), subsampled=(kind == "sub"))
            q.popleft()

    def finish(self) -> None:
        # records that never came (scoring stopped): count nothing for them
        self._q = deque(e for e in self._q if e[0] != "scored" or e[3] is not None)
        self._resolve()
        self.m.finish()


# ------------------------------------------------------------------ --alert-cmd

class AlertRunner:
    """Runs ``--alert-cmd`` for each alert record, off the scoring threads.

    The command runs through the shell with the record in its environment
    (``VQA_ALERT_EVENT`` alert|recovery, ``VQA_ALERT_METRIC``,
    ``VQA_ALERT_THRESHOLD``, ``VQA_ALERT_VALUE``, ``VQA_ALERT_SINCE``,
    ``VQA_ALERT_TIME``, ``VQA_ALERT_DURATION``, ``VQA_ALERT_OUTPUT``,
    ``VQA_ALERT_STREAM``, and ``VQA_ALERT_JSON``, the whole record); its
    stdout goes to stderr so that ``--log -`` stays clean.  Nothing waits for
    it, except :meth:`close` at the end of the session (a few seconds at most).
    """

    MAX_RUNNING = 8

    def __init__(self, cmd: str, note: Callable[[str], None]):
        self.cmd = cmd
        self.note = note
        self._q: "deque[dict]" = deque()
        self._cv = threading.Condition()
        self._running: List[subprocess.Popen] = []
        self._closing = False
        self.started = 0
        self.failed = 0
        self._t = threading.Thread(target=self._loop, daemon=True, name="vqa-alert-cmd")
        self._t.start()

    def submit(self, rec: dict) -> None:
        with self._cv:
            self._q.append(rec)
            self._cv.notify()

    @staticmethod
    def environment(rec: dict) -> Dict[str, str]:
        env = dict(os.environ)
        for k in ("event", "metric", "threshold", "value", "since", "time", "duration", "output",
                  "stream"):
            v = rec.get(k)
            env[f"VQA_ALERT_{k.upper()}"] = "" if v is None else str(v)
        env["VQA_ALERT_JSON"] = json.dumps(rec, separators=(",", ":"))
        return env

    def _reap(self) -> None:
        still = []
        for p in self._running:
            rc = p.poll()
            if rc is None:
                still.append(p)
            elif rc != 0:
                self.failed += 1
                self.note(f"--alert-cmd exited with status {rc}")
        self._running = still

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._q and not self._closing:
                    self._cv.wait(0.5)
                    self._reap()
                if not self._q and self._closing:
                    return
                rec = self._q.popleft()
            self._reap()
            if len(self._running) >= self.MAX_RUNNING:
                self.note(f"--alert-cmd: {len(self._running)} commands still running; "
                          f"this {rec.get('event')} is not sent")
                continue
            try:
                err = sys.stderr.fileno()
            except (AttributeError, ValueError, OSError):
                err = None
            try:
                p = subprocess.Popen(self.cmd, shell=True, env=self.environment(rec),
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                     start_new_session=True)
            except OSError as e:
                self.failed += 1
                self.note(f"--alert-cmd could not start: {e.strerror}")
                continue
            self.started += 1
            self._running.append(p)

    def close(self, timeout: float = 5.0) -> None:
        """Start what is queued, wait up to ``timeout`` for running commands."""
        import time
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._t.join(timeout)
        deadline = time.monotonic() + timeout
        for p in list(self._running):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                p.wait(left)
            except subprocess.TimeoutExpired:
                break
        self._reap()
        if self._running:
            self.note(f"--alert-cmd: {len(self._running)} command(s) still running at exit")


# ------------------------------------------------------------------ metrics endpoint

class MetricsServer:
    """Prometheus text format on http://HOST:PORT/metrics, read at scrape time
    from the session's live figures (``snapshot()`` returns them)."""

    def __init__(self, host: str, port: int, snapshot: Callable[[], dict]):
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError:
            raise UsageError("--metrics-port needs prometheus-client: "
                             "pip install 'vqa[live]' (or prometheus-client)") from None
        self.snapshot = snapshot
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(snapshot))
        try:
            started = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise UsageError(f"cannot serve metrics on {host}:{port}: "
                             f"{e.strerror or e}") from None
        if not isinstance(started, tuple):
            raise UsageError("--metrics-port needs prometheus-client 0.20 or newer")
        self.server, self.thread = started
        self.host = host
        self.port = self.server.server_port
        h = f"[{host}]" if ":" in host else host
        self.url = f"http://{h}:{self.port}/metrics"

    def close(self) -> None:
        try:
            self.server.shutdown()
            self.server.server_close()
        except Exception:
            pass


class _Collector:
    def __init__(self, snapshot):
        self.snapshot = snapshot

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        snap = self.snapshot()
        streams = snap.get("streams", [])
        last = GaugeMetricFamily("vqa_frame_score", "Score of the last scored frame",
                                 labels=["stream", "metric"])
        wmean = GaugeMetricFamily("vqa_window_mean",
                                  "Mean score over the last completed window",
                                  labels=["stream", "metric"])
        wmin = GaugeMetricFamily("vqa_window_min", "Lowest score in the last completed window",
                                 labels=["stream", "metric"])
        scored = CounterMetricFamily("vqa_frames_scored", "Frames scored", labels=["stream"])
        skipped = CounterMetricFamily("vqa_frames_skipped",
                                      "Frames skipped because scoring fell behind (live)",
                                      labels=["stream"])
        subs = CounterMetricFamily("vqa_frames_subsampled", "Frames left out by --subsample",
                                   labels=["stream"])
        alert = GaugeMetricFamily("vqa_alert_active", "1 while an --alert-below alert is on",
                                  labels=["stream", "metric"])
        for s in streams:
            lab = s["label"]
            for k, v in s["last"].items():
                last.add_metric([lab, k], v)
            for k, st in s["window"].items():
                if st.get("mean") is not None:
                    wmean.add_metric([lab, k], st["mean"])
                if st.get("min") is not None:
                    wmin.add_metric([lab, k], st["min"])
            scored.add_metric([lab], s["frames_scored"])
            skipped.add_metric([lab], s["frames_skipped"])
            subs.add_metric([lab], s["frames_subsampled"])
            if s.get("alert_metric"):
                alert.add_metric([lab, s["alert_metric"]], 1.0 if s["alert_active"] else 0.0)
        yield from (last, wmean, wmin, scored, skipped, subs, alert)
        enc = snap.get("encoder", {})
        for name, key, doc in (("vqa_encoder_fps", "fps", "ffmpeg's encoding rate (frames/s)"),
                               ("vqa_encoder_speed", "speed",
                                "ffmpeg's speed (media time / wall time)")):
            g = GaugeMetricFamily(name, doc + "; NaN until ffmpeg's first progress report")
            # always present (a scraper should not see series appear late):
            # ffmpeg reports progress every 0.5 s, a short run may be scored before
            v = enc.get(key)
            g.add_metric([], float("nan") if v is None else v)
            yield g
        c = CounterMetricFamily("vqa_encoder_frames", "Frames ffmpeg has encoded")
        c.add_metric([], enc.get("frames") or 0)
        yield c
