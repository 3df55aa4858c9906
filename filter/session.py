"""Sessions: scoring an inline transcode, or comparing two files.

A session builds one ffmpeg command, starts it with one pipe pair per scored
stream (frames as y4m, and the frames' timestamps from ``-stats_enc_pre``),
scores every pair on a consumer thread per stream, and hands records to the
caller in the main thread as they are computed.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from vqa_core import Scorer, __version__ as core_version

from . import graph as graphs
from .argv import parse_command
from .emit import JsonLinesLog, StderrWriter, check_writable, summary_table, write_report
from .errors import Interrupted, StreamError, UsageError, VqaError
from .ffmpeg import Ffmpeg, find_ffmpeg
from .process import FfmpegProcess, exit_status_text, read_lines
from .stream import BLOCK, DROP, PairStream, read_header

VERSION = "0.1.0"


@dataclass
class Options:
    #: metric names; ``vmaf`` stands for the models (``models``, default vmaf_v0.6.1)
    metrics: Sequence[str] = ("vmaf",)
    #: model specs ``NAME|PATH[:option=value...]`` or loaded model objects
    models: Sequence[object] = ()
    features: bool = False
    #: compare at this bit depth (None: the reference's own)
    bitdepth: Optional[int] = None
    log: Optional[str] = None
    report: Optional[str] = None
    ffmpeg: Optional[str] = None
    threads: Optional[int] = None
    scale_algo: str = "bicubic"
    nslots: int = 8
    live: bool = False
    subsample: int = 1
    quiet: bool = False  # no summary table / progress on stderr
    progress: bool = True


DEFAULT_MODEL = "vmaf_v0.6.1"


def resolve_metrics(metrics: Sequence[str], models: Sequence[object]):
    """(extractor metrics, loaded models) from Options' ``metrics`` and ``models``.

    ``vmaf`` in ``metrics`` or any model given means models are scored; with
    no model given that is :data:`DEFAULT_MODEL`.  One model writes its score
    as ``vmaf``; several write each under its model name (as libvmaf's logs
    do) unless a spec sets ``name=``.  Raises UsageError for a bad metric or
    model."""
    from vqa_core.engine import EXTRACTOR_METRICS
    metrics = [m for m in metrics]
    bad = [m for m in metrics if m != "vmaf" and m not in EXTRACTOR_METRICS]
    if bad:
        raise UsageError(f"unknown metric {bad[0]!r}; known: vmaf, "
                         f"{', '.join(sorted(EXTRACTOR_METRICS))}")
    specs = list(models)
    if "vmaf" in metrics and not specs:
        specs = [DEFAULT_MODEL]
    loaded = []
    from vqa_core.models import load_model_spec
    for spec in specs:
        if not isinstance(spec, str):
            loaded.append(spec)
            continue
        prefix = None
        if len(specs) > 1:
            from vqa_core.models import parse_model_spec
            target, _ = parse_model_spec(spec)
            prefix = os.path.splitext(os.path.basename(target))[0] if (
                target.endswith(".json") or os.sep in target) else target
            if prefix.startswith(("version=", "path=")):
                prefix = prefix.split("=", 1)[1]
        try:
            loaded.append(load_model_spec(spec, output_prefix=prefix))
        except (ValueError, KeyError) as e:
            raise UsageError(f"--model {spec}: {e.args[0] if e.args else e}") from None
    keys: Dict[str, str] = {}
    for m in loaded:
        for k in m.outputs:
            if k in keys:
                raise UsageError(f"models {keys[k]!r} and {m.name!r} both write {k!r}; "
                                 f"give one a name (--model SPEC:name=KEY)")
            keys[k] = m.name
    return [m for m in metrics if m != "vmaf"], loaded


@dataclass
class StreamResult:
    label: str
    output: Optional[str]
    stream: Optional[int]
    frames_scored: int = 0
    frames_read: int = 0
    frames_dropped: int = 0
    summary: Dict[str, Dict[str, float]] = field(default_factory=dict)
    format: Optional[str] = None
    error: Optional[str] = None


@dataclass
class Result:
    exit_code: int
    streams: List[StreamResult]
    report: dict
    error: Optional[str] = None

    @property
    def summary(self) -> Dict[str, Dict[str, float]]:
        return self.streams[0].summary if len(self.streams) == 1 else {}


class _Consumer(threading.Thread):
    """Reads one pair stream, scores it, puts records on the session queue."""

    def __init__(self, session: "Session", plan: graphs.ScoredStream, frames_fd: int, stats_fd: int,
                 kernel_lock: Optional[threading.Lock]):
        super().__init__(daemon=True, name=f"vqa-{plan.label}")
        self.s = session
        self.plan = plan
        self.frames_fd = frames_fd
        self.stats_fd = stats_fd
        self.kernel_lock = kernel_lock
        self.result = StreamResult(plan.label, plan.output_url, plan.stream_index)
        self.pts: Dict[int, float] = {}
        self._pts_cv = threading.Condition()
        self._pts_done = False
        self.scorer: Optional[Scorer] = None
        self.stream: Optional[PairStream] = None
        self.error: Optional[BaseException] = None
        self._pts_thread = threading.Thread(target=self._read_pts, daemon=True)

    def _read_pts(self) -> None:
        def on_lines(lines):
            with self._pts_cv:
                for ln in lines:
                    parts = ln.split()
                    if len(parts) == 2:
                        try:
                            self.pts[int(parts[0])] = float(parts[1])
                        except ValueError:
                            pass
                self._pts_cv.notify_all()

        read_lines(self.stats_fd, on_lines)
        with self._pts_cv:
            self._pts_done = True
            self._pts_cv.notify_all()

    def _pts_of(self, index: int) -> Optional[float]:
        with self._pts_cv:
            deadline = time.monotonic() + 2.0
            while index not in self.pts and not self._pts_done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._pts_cv.wait(left)
            v = self.pts.pop(index, None)
        if v is None and self.stream is not None and self.stream.fps[0]:
            num, den = self.stream.fps
            v = index * den / num
        return v

    def run(self) -> None:
        self._pts_thread.start()
        try:
            self._run()
        except BaseException as e:  # reported by the session
            self.error = e
        finally:
            if self.stream is not None:
                st = self.stream.stats()
                self.result.frames_read = st.frames_read
                self.result.frames_dropped = st.frames_dropped
                self.stream.close()
            try:
                os.close(self.frames_fd)
            except OSError:
                pass
            self.s._q.put(("done", self))

    def _run(self) -> None:
        header = read_header(self.frames_fd)
        if not header:
            return  # ffmpeg ended before producing a frame; the session says why
        policy = DROP if self.s.opts.live else BLOCK
        self.stream = PairStream(self.frames_fd, self.plan.size, self.s.opts.nslots, policy, header)
        fmt = self.stream.format
        self.result.format = (f"{fmt.width}x{fmt.height} {fmt.chroma} {fmt.bitdepth}-bit")
        self.scorer = Scorer(fmt, self.s.metrics, self.s.models, self.s.opts.features)
        n = self.s.opts.subsample
        while True:
            if self.s._stop.is_set():
                self._drain()
                return
            try:
                pair = self.stream.next(100)
            except StopIteration:
                break
            if pair is None:
                continue
            if n > 1 and pair.index % n:
                continue
            if self.kernel_lock is not None:
                with self.kernel_lock:
                    recs = self.scorer.push(pair.index, None, pair.ref, pair.dis)
            else:
                recs = self.scorer.push(pair.index, None, pair.ref, pair.dis)
            self._emit(recs)
        self._emit(self.scorer.finish())

    def _drain(self) -> None:
        # keep the pipe flowing so that ffmpeg can finish; score nothing more
        while True:
            try:
                if self.stream.next(100) is None and self.s._hard_stop.is_set():
                    return
            except (StopIteration, StreamError):
                return

    def _emit(self, recs: List[dict]) -> None:
        for r in recs:
            r["pts"] = self._pts_of(r["frame"])
            if self.s._multi:
                r = {"frame": r["frame"], "pts": r["pts"], "output": self.plan.output_url,
                     "stream": self.plan.stream_index,
                     **{k: v for k, v in r.items() if k not in ("frame", "pts")}}
            self.result.frames_scored += 1
            self.s._q.put(("rec", r))


class _Signalled(Exception):
    def __init__(self, sig):
        self.sig = sig


class Session:
    """One run.  Iterate over it for records as they are scored, or call run()."""

    def __init__(self, opts: Options, mode: str, *, argv: Sequence[str] = (),
                 reference: Optional[str] = None, distorted: Optional[str] = None,
                 writer: Optional[StderrWriter] = None):
        self.opts = opts
        self.metrics, self.models = resolve_metrics(opts.metrics, opts.models)
        self.mode = mode  # "transcode" or "compare"
        self.argv = list(argv)
        self.reference = reference
        self.distorted = distorted
        self.writer = writer or StderrWriter(progress=opts.progress and not opts.quiet)
        self._q: "queue.Queue" = queue.Queue()
        self._stop = threading.Event()
        self._hard_stop = threading.Event()
        self._multi = False
        self._last_progress = 0.0
        self.result: Optional[Result] = None
        self.notes: List[str] = []
        if opts.threads:
            import numba
            numba.set_num_threads(max(1, min(opts.threads, numba.config.NUMBA_NUM_THREADS)))

    # ------------------------------------------------------------ building
    def _build(self, ff: Ffmpeg, tmp: str):
        if self.mode == "compare":
            return graphs.build_compare(ff, self.reference, self.distorted, self.opts, tmp)
        ff.require_inline()
        cmd = parse_command(self.argv)
        return graphs.build_inline(ff, cmd, self.opts)

    def note(self, text: str) -> None:
        self.notes.append(text)
        if not self.opts.quiet:
            self.writer.write(f"vqa: {text}\n")

    # ------------------------------------------------------------ running
    def __iter__(self) -> Iterator[dict]:
        return self.records()

    def run(self, callback: Optional[Callable[[dict], None]] = None) -> Result:
        for rec in self.records():
            if callback:
                callback(rec)
        return self.result

    def records(self) -> Iterator[dict]:
        check_writable(self.opts.report, "report")
        if self.opts.log and self.opts.log != "-":
            check_writable(self.opts.log, "log")
        ff = find_ffmpeg(self.opts.ffmpeg)
        self.ffmpeg = ff
        tmp = tempfile.mkdtemp(prefix="vqa-")
        try:
            yield from self._records(ff, tmp)
        finally:
            for f in os.listdir(tmp):
                try:
                    os.unlink(os.path.join(tmp, f))
                except OSError:
                    pass
            try:
                os.rmdir(tmp)
            except OSError:
                pass

    def _records(self, ff: Ffmpeg, tmp: str) -> Iterator[dict]:
        built = self._build(ff, tmp)
        for n in built.notes:
            self.note(n)
        plans = built.streams
        if not plans:
            raise UsageError("nothing to score: the command encodes no video stream "
                             "(stream copies and audio-only outputs are not scored)")
        self._multi = len(plans) > 1
        log = JsonLinesLog(self.opts.log) if self.opts.log else None
        if log and log.path == "-" and built.uses_stdout:
            raise UsageError("--log - writes to stdout, but the ffmpeg command writes its output there")
        # pipes: progress, then frames + stats per stream
        fds_to_pass: List[int] = []
        prog_r, prog_w = os.pipe()
        fds_to_pass.append(prog_w)
        pipes: List[Tuple[int, int, int, int]] = []
        for _ in plans:
            fr, fw = os.pipe()
            sr, sw = os.pipe()
            pipes.append((fr, fw, sr, sw))
            fds_to_pass += [fw, sw]
        cmd = built.command(prog_w, [(p[1], p[3]) for p in pipes])
        self.command = cmd
        relay = "all" if self.mode == "transcode" else "errors"
        consumers: List[_Consumer] = []
        proc = None
        old_handlers = {}
        stdin = None if self.mode == "transcode" else subprocess.DEVNULL
        try:
            proc = FfmpegProcess(cmd, fds_to_pass, relay=relay, progress_fd=prog_r,
                                 writer=self.writer.write, stdin=stdin)
        finally:
            for fd in fds_to_pass:
                os.close(fd)
        self.proc = proc
        lock = threading.Lock() if len(plans) > 1 else None
        for plan, (fr, _, sr, _) in zip(plans, pipes):
            c = _Consumer(self, plan, fr, sr, lock)
            consumers.append(c)
            c.start()
        if threading.current_thread() is threading.main_thread():
            def handler(sig, frame):
                raise _Signalled(sig)
            for sig in (signal.SIGINT, signal.SIGTERM):
                old_handlers[sig] = signal.signal(sig, handler)
        interrupted = None
        error: Optional[str] = None
        last_rec: Dict[str, dict] = {}
        running = len(consumers)
        start = time.monotonic()
        try:
            try:
                while running:
                    try:
                        kind, item = self._q.get(timeout=0.25)
                    except queue.Empty:
                        self._show_progress(last_rec, start)
                        continue
                    if kind == "done":
                        running -= 1
                        continue
                    last_rec[item.get("output", "")] = item
                    if log:
                        log.write(item)
                    yield item
                    self._show_progress(last_rec, start)
            except _Signalled as s:
                interrupted = s.sig
            except KeyboardInterrupt:
                interrupted = signal.SIGINT
            except GeneratorExit:
                interrupted = signal.SIGINT
                raise
            finally:
                if interrupted is not None:
                    self._stop.set()
                    proc.send_signal(signal.SIGINT if interrupted == signal.SIGINT else signal.SIGTERM)
                # wait for ffmpeg; consumers keep the pipes flowing
                rc = self._wait_ffmpeg(proc, consumers, interrupted)
                self._hard_stop.set()
                for c in consumers:
                    c.join(timeout=10)
                # records queued after the loop ended (interrupt) still count
                while True:
                    try:
                        kind, item = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if kind == "rec":
                        if log:
                            log.write(item)
                        last_rec[item.get("output", "")] = item
                self.writer.end_status()
        finally:
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            if proc is not None and proc.poll() is None:
                proc.stop(grace=1.0)
            if log:
                log.close()

        # ------------------------------------------------------ outcome
        stream_results = [c.result for c in consumers]
        for c in consumers:
            if c.scorer is not None:
                c.result.summary = c.scorer.summary()
        exit_code = 0
        consumer_errors = [c.error for c in consumers if c.error is not None]
        if interrupted is not None:
            name = "Ctrl-C" if interrupted == signal.SIGINT else "SIGTERM"
            error = f"interrupted by {name}"
            exit_code = 130 if interrupted == signal.SIGINT else 143
        elif rc != 0:
            why = proc.error_summary()
            if rc < 0:
                error = f"ffmpeg was {exit_status_text(rc)}" + (f": {why}" if why and self.mode == "compare" else "")
            else:
                error = f"ffmpeg failed ({exit_status_text(rc)})" + (f": {why}" if why else "")
            if self.mode == "transcode":
                exit_code = rc if rc > 0 else 128 - rc
            else:
                exit_code = 1
        elif consumer_errors:
            e = consumer_errors[0]
            error = str(e) if isinstance(e, VqaError) else f"scoring failed: {type(e).__name__}: {e}"
            exit_code = 1
        if self.mode == "compare" and error is None:
            for w in built.finish_notes():
                self.note(w)
        scored = sum(r.frames_scored for r in stream_results)
        if error and scored:
            error += f" ({scored} frame{'s' if scored != 1 else ''} scored before it)"
        report = self._report(ff, built, stream_results, error, exit_code)
        if self.opts.report:
            write_report(self.opts.report, report)
        if not self.opts.quiet:
            for r in stream_results:
                title = f"vqa: {r.frames_scored} frames scored"
                if self._multi or self.mode == "transcode":
                    title += f" ({r.label})"
                if r.frames_dropped:
                    title += f", {r.frames_dropped} skipped"
                self.writer.write(summary_table(r.summary, title))
        self.result = Result(exit_code, stream_results, report, error)
        if error:
            exc_cls = Interrupted if interrupted is not None else VqaError
            e = exc_cls(error)
            e.exit_code = exit_code
            e.result = self.result
            raise e

    def _wait_ffmpeg(self, proc: FfmpegProcess, consumers, interrupted) -> int:
        deadline = time.monotonic() + (15.0 if interrupted is not None else 1e9)
        while True:
            rc = proc.poll()
            if rc is not None:
                return proc.wait()
            if interrupted is not None and time.monotonic() > deadline:
                return proc.stop(grace=0.1)
            # ffmpeg still running although every consumer ended: it can't
            # write to us any more (scoring failed); let the encode finish
            try:
                proc.proc.wait(0.2)
            except subprocess.TimeoutExpired:
                pass
            except (_Signalled, KeyboardInterrupt):
                # a second Ctrl-C or SIGTERM: stop now
                return proc.stop(grace=2.0)

    def _show_progress(self, last: Dict[str, dict], start: float) -> None:
        # called after every record: redraw at most four times a second
        now = time.monotonic()
        if self.opts.quiet or not self.opts.progress or now - self._last_progress < 0.25:
            return
        self._last_progress = now
        p = self.proc.progress
        parts = []
        fr = p.frame
        if fr is not None:
            parts.append(f"frame {fr}")
        if p.fps:
            parts.append(f"{p.fps:.1f} fps")
        if p.speed:
            parts.append(f"speed {p.speed:.2f}x")
        for rec in list(last.values())[:3]:
            for key in ("vmaf", "psnr_y", "ssim"):
                if key in rec and rec[key] is not None:
                    parts.append(f"{key} {rec[key]:.2f}" if key != "ssim" else f"{key} {rec[key]:.4f}")
                    break
        if parts:
            self.writer.status("vqa: " + " | ".join(parts))

    def _report(self, ff: Ffmpeg, built, streams: List[StreamResult], error, exit_code) -> dict:
        rep = {
            "vqa_version": VERSION,
            "vqa_core_version": core_version,
            "ffmpeg": {"path": ff.path, "version": ff.version},
            "mode": self.mode,
            "inputs": built.inputs_description,
            "metrics": list(self.metrics),
            "models": [{"name": m.name, "key": m.output_prefix,
                        "path": str(m.path) if getattr(m, "path", None) else None}
                       for m in self.models],
            "complete": error is None,
            "exit_code": exit_code,
        }
        if error:
            rep["error"] = error
        if self.notes:
            rep["notes"] = list(self.notes)
        per = []
        for s in streams:
            per.append({"label": s.label, "output": s.output, "stream": s.stream, "format": s.format,
                        "frames": s.frames_scored, "frames_skipped": s.frames_dropped,
                        "summary": s.summary})
        if len(per) == 1:
            rep["frames"] = per[0]["frames"]
            rep["format"] = per[0]["format"]
            rep["summary"] = per[0]["summary"]
            if self.mode == "transcode":
                rep["output"], rep["stream"] = per[0]["output"], per[0]["stream"]
        else:
            rep["frames"] = sum(p["frames"] for p in per)
            rep["streams"] = per
        return rep
