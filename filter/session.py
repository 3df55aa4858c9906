"""Sessions: scoring an inline transcode, or comparing two files.

A session builds one ffmpeg command, starts it with one pipe pair per scored
stream (frames as y4m, and the frames' timestamps from ``-stats_enc_pre``),
scores every pair on a consumer thread per stream (which hands the frames to
a pool of lane threads, one frame each, and takes their records back in frame
order), and hands records to the caller in the main thread as they are
computed.
"""
from __future__ import annotations

import itertools
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

from vqa_core import FrameFormat, Scorer, __version__ as core_version

from . import graph as graphs
from .argv import parse_command
from .emit import StderrWriter, check_writable, summary_table, write_report
from .logformats import LOG_FORMATS, open_log
from .pixfmt import chroma_and_depth, frame_bytes, parse_y4m_header
from .errors import (FfmpegFailed, Interrupted, QualityGateFailed, ScoringFailed, StreamError,
                     UsageError, VqaError)
from .ffmpeg import Ffmpeg, find_ffmpeg
from .process import FfmpegProcess, exit_status_text, read_lines
from .stream import BLOCK, DROP, PairStream, read_header
from . import live as lv

VERSION = "0.1.0"
#: ring slots for a file's pairs, and the memory they may take beyond the
#: slots the lanes need (2 a lane, and 2 read ahead): 8 at 1080p (6.2 MB a
#: 4:2:0 pair), 8 at 4K 8-bit (25 MB), 6 at 4K 10-bit (50 MB) instead of 8
FILE_NSLOTS = 8
FILE_RING_BUDGET = 256 << 20
#: a compare's ffmpeg runs at this lower CPU priority (nice) than scoring, so
#: that its bursts of reading ahead fill the kernel threads' gaps instead of
#: pre-empting them mid-pass (a pre-empted kernel thread stalls its partner
#: at the end of the pass).  10 rather than 19: at 19, CPU-bound work beside
#: vqa in the same scheduling group (other processes of the session) starves
#: the decoding (a compare took 62 s instead of 16 s beside two busy loops;
#: at 10, 14 s)
COMPARE_FFMPEG_NICE = 10
#: ... and this one when the pairs carry chroma (the v1 models' SpEED, chroma
#: metrics): ffmpeg then stacks, writes and vqa reads half as much again per
#: pair, for lighter kernels, and at 10 the lanes waited for frames (120 1080p
#: frames, 8 alternating runs each: vmaf_v1.0.16_3d0h 1.473 s mean at 7 against
#: 1.552 at 10; vmaf_v0.6.1, luma only, 2.00 at 7 against 1.94 at 10)
COMPARE_FFMPEG_NICE_CHROMA = 7
#: glibc's malloc settings for a compare's own ffmpeg.  Its demuxers read each
#: frame into a packet allocated afresh, and glibc serves an allocation above
#: its mmap threshold (128 KiB at first, rising with what is freed, to 32 MiB
#: at most) with a new mapping that the kernel zero-fills page by page, then
#: unmaps it when freed: at 1080p 445 ms of ffmpeg's CPU per 120 pairs (351 ms
#: with a fixed threshold above the packets).  The threshold is 16 MiB: every
#: frame up to 1080p 16-bit 4:4:4 (12.4 MB) comes from the heap and is reused;
#: a 4K 10-bit one (25 MB) is mapped and unmapped, as from the heap (a 64 MiB
#: threshold before) ffmpeg's per-thread arenas kept every packet any queue
#: had held: its peak grew to 0.66-1.65 GB in a 48-frame 4K 10-bit compare
#: (0.51-0.86 GB now), and it spent more, not less, time in the kernel (1.96-
#: 4.16 s against 1.65-1.98 s; the run 3.47-4.60 s against 3.15-3.36 s).  Keys
#: the user's GLIBC_TUNABLES sets are left as they are; other C libraries ignore
#: the variable.  Not for the inline form's ffmpeg: that is the user's encode.
COMPARE_MALLOC_TUNABLES = ("glibc.malloc.mmap_threshold=16777216",
                           "glibc.malloc.trim_threshold=67108864")


def compare_env(environ=None) -> dict:
    """The environment of a compare's ffmpeg: ``environ`` (os.environ) with
    COMPARE_MALLOC_TUNABLES added to GLIBC_TUNABLES, the user's own keys
    winning."""
    env = dict(os.environ if environ is None else environ)
    cur = env.get("GLIBC_TUNABLES", "")
    have = {kv.split("=", 1)[0] for kv in cur.split(":") if kv}
    add = [kv for kv in COMPARE_MALLOC_TUNABLES if kv.split("=", 1)[0] not in have]
    if add:
        env["GLIBC_TUNABLES"] = ":".join([cur] + add if cur else add)
    return env


#: live: the ring keeps the oldest frames and skips newer ones while full, so
#: a short ring keeps the scored frames close to what ffmpeg encodes now
LIVE_NSLOTS = 3


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
    #: frame slots in the ring (None: 8 for files, 3 live; fewer slots keep live scores fresh)
    nslots: Optional[int] = None
    #: live: the ring drops frames rather than slow ffmpeg (every skipped frame is counted)
    live: bool = False
    #: niceness added to ffmpeg's CPU priority (None: COMPARE_FFMPEG_NICE for
    #: compare, 0 for the inline form and live runs)
    ffmpeg_nice: Optional[int] = None
    #: score every Nth frame (temporal features still see every frame that arrives)
    subsample: int = 1
    #: seconds per ``{"type": "window"}`` record (None: no window records)
    window: Optional[float] = None
    #: ``[METRIC=]SCORE[:SECONDS]``: alert records when the window mean stays below
    alert_below: Optional[object] = None
    #: shell command run for each alert and recovery (VQA_ALERT_* in its environment)
    alert_cmd: Optional[str] = None
    #: serve Prometheus metrics on this port (0: any free port; see Session.metrics_url)
    metrics_port: Optional[int] = None
    metrics_host: str = "127.0.0.1"
    #: ``[METRIC=]SCORE`` (or a number): a finished run pooled below it fails (exit 3)
    fail_below: Optional[object] = None
    #: pooling for --fail-below: mean, harmonic_mean, p5 or min
    pool: str = "mean"
    #: write a self-contained HTML report here (needs matplotlib: the 'report' extra)
    html: Optional[str] = None
    #: --log format: jsonl, csv or libvmaf-json
    log_format: str = "jsonl"
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
        try:
            loaded.append(load_model_spec(spec, key_by_name=len(specs) > 1))
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
    frames_subsampled: int = 0
    summary: Dict[str, Dict[str, float]] = field(default_factory=dict)
    format: Optional[str] = None
    error: Optional[str] = None
    #: threads the kernels ran on
    threads: Optional[int] = None
    #: frames computed at once (each on one of those threads)
    lanes: int = 1


@dataclass
class Result:
    exit_code: int
    streams: List[StreamResult]
    report: dict
    error: Optional[str] = None
    #: (metric, pool, threshold, [(label, value)], passed) when --fail-below was given
    gate: Optional[dict] = None

    @property
    def summary(self) -> Dict[str, Dict[str, float]]:
        return self.streams[0].summary if len(self.streams) == 1 else {}


_lane = threading.local()  # .id: the lane of a scoring pool's thread

#: each lane has its own kernel buffers (measured: ~110-120 MiB for a 4K
#: 10-bit frame with the 4K models, ~17 MiB at 1080p, i.e. up to ~15 bytes a
#: pixel) and holds a ring slot (6 bytes a pixel at 10-bit); lanes beyond the
#: first may take this much together, so that a 4K run on many cores stays
#: well under 1.5 GiB (3 lanes at 4K, 9 at 1080p; 2 lanes at 4K peak at
#: 834 MiB)
LANE_MEMORY_BUDGET = 384 << 20
LANE_BYTES_PER_PIXEL = 24


def file_slots(lanes: int, pair_bytes: int) -> int:
    """Ring slots for a file's pairs of ``pair_bytes`` bytes on ``lanes``
    lanes: a frame in flight and one queued a lane, two read ahead, and more
    up to FILE_NSLOTS while they fit in FILE_RING_BUDGET."""
    fit = FILE_RING_BUDGET // pair_bytes if pair_bytes > 0 else FILE_NSLOTS
    return max(2 * lanes + 2, min(FILE_NSLOTS, fit))


def _lanes_for_memory(threads: int, pixels: int) -> int:
    """Lanes for ``threads`` kernel threads on frames of ``pixels`` pixels:
    one per thread, those beyond the second within LANE_MEMORY_BUDGET (a
    kernel call runs on one thread: with one lane, a run would use one core
    whatever the frame size)."""
    extra = LANE_MEMORY_BUDGET // max(1, LANE_BYTES_PER_PIXEL * pixels)
    return max(1, min(threads, max(2, 1 + extra)))


class _Consumer(threading.Thread):
    """Reads one pair stream, scores it, puts records on the session queue."""

    def __init__(self, session: "Session", plan: graphs.ScoredStream, frames_fd: int, stats_fd: int,
                 streams: int = 1):
        super().__init__(daemon=True, name=f"vqa-{plan.label}")
        self.s = session
        self.plan = plan
        self.frames_fd = frames_fd
        self.stats_fd = stats_fd
        #: streams scored at once (several outputs share the threads)
        self.streams = max(1, streams)
        self.result = StreamResult(plan.label, plan.output_url, plan.stream_index)
        self.pts: Dict[int, float] = {}
        self._pts_cv = threading.Condition()
        self._pts_done = False
        self.scorer: Optional[Scorer] = None
        self.ledger: Optional[lv.Ledger] = None
        self.stream: Optional[PairStream] = None
        self.error: Optional[BaseException] = None
        self.monitor: Optional[lv.Monitor] = None
        self.worst = None  # WorstFrames for --html
        self._mon_done = False
        self._pts_floor = 0
        self._pts_thread = threading.Thread(target=self._read_pts, daemon=True)

    def _read_pts(self) -> None:
        def on_lines(lines):
            with self._pts_cv:
                for ln in lines:
                    parts = ln.split()
                    if len(parts) == 2:
                        try:
                            n = int(parts[0])
                            if n >= self._pts_floor:
                                self.pts[n] = float(parts[1])
                        except ValueError:
                            pass
                self._pts_cv.notify_all()

        read_lines(self.stats_fd, on_lines)
        with self._pts_cv:
            self._pts_done = True
            self._pts_cv.notify_all()

    def _pts_of(self, index: int, wait: bool = True) -> Optional[float]:
        """The timestamp of frame ``index``.  Asked in increasing index order:
        earlier frames' timestamps are forgotten (memory stays flat when a
        live session skips frames)."""
        with self._pts_cv:
            deadline = time.monotonic() + (2.0 if wait else 0.0)
            while index not in self.pts and not self._pts_done:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._pts_cv.wait(left)
            v = self.pts.pop(index, None)
            self._pts_floor = max(self._pts_floor, index + 1)
            pts = self.pts
            while pts:
                k = next(iter(pts))
                if k >= index:
                    break
                del pts[k]
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
            if self.s.mode == "transcode" and self.stream is not None:
                # the encode must not die of a broken pipe because scoring did
                try:
                    self._drain()
                except BaseException:
                    pass
        finally:
            if self.stream is not None:
                st = self.stream.stats()
                self.result.frames_read = st.frames_read
                self.result.frames_dropped = st.frames_dropped
                self.stream.close()
            if self.monitor is not None and not self._mon_done and self.error is None:
                try:
                    self.monitor.finish()
                except BaseException as e:
                    self.error = e
            try:
                os.close(self.frames_fd)
            except OSError:
                pass
            self.s._q.put(("done", self))

    def _run(self) -> None:
        from vqa_core.features._jit import num_threads
        most = num_threads()
        self.result.threads = min(self.s.threads, most) if self.s.threads else most
        header = read_header(self.frames_fd)
        if not header:
            return  # ffmpeg ended before producing a frame; the session says why
        live = self.s.opts.live
        policy = DROP if live else BLOCK
        try:
            w, h2, chroma, depth = parse_y4m_header(header)[:4]
            cap = _lanes_for_memory(self.result.threads, w * (h2 // 2))
            pair_bytes = frame_bytes(FrameFormat(w, h2, chroma, depth))
        except ValueError:  # PairStream says what is wrong with it
            cap, pair_bytes = 1, 0
        # live: a short ring plus a slot for each frame in flight beyond the
        # first; files: room for the frames in flight and two read ahead
        nslots = self.s.opts.nslots or (LIVE_NSLOTS + cap - 1 if live else file_slots(cap, pair_bytes))
        self.stream = PairStream(self.frames_fd, self.plan.size, nslots, policy, header)
        if live:
            _lower_priority()  # after the ring's reader thread started: it keeps its priority
        fmt = self.stream.format
        # the kernels are being loaded (or compiled, shared with a helper
        # process): let that finish rather than compile the same here
        for t in (getattr(self.s, "_preload", None), getattr(self.s, "_warm", None)):
            while t is not None and t.is_alive() and not self.s._stop.is_set():
                t.join(0.1)
        self.result.format = (f"{fmt.width}x{fmt.height} {fmt.chroma} {fmt.bitdepth}-bit")
        if self.plan.luma_of and fmt.chroma == "400":  # the pair's chroma, which ffmpeg left out
            chroma = chroma_and_depth(self.plan.luma_of)[0]
            self.result.format = f"{fmt.width}x{fmt.height} {chroma} {fmt.bitdepth}-bit (luma only)"
        lanes = self._lane_count(cap)
        self.scorer = Scorer(fmt, self.s.metrics, self.s.models, self.s.opts.features, lanes=lanes)
        self.result.lanes = lanes
        if self.s.opts.html:
            from .worst import WorstFrames
            self.worst = WorstFrames(label=self.plan.label)
        worst = self.worst
        mon = self.monitor
        ledger = lv.Ledger(mon, lambda i: self._pts_of(i, wait=False)) if mon else None
        self.ledger = ledger
        if mon is not None and self.stream.fps[0]:
            mon.frame_dur = self.stream.fps[1] / self.stream.fps[0]
        n = self.s.opts.subsample
        next_due = 0
        last = -1
        # Pairs computed on `lanes` threads at once, each with one-thread
        # kernels (frame-level parallelism: no barrier between the
        # threads inside a frame, so a thread that ffmpeg or the encoder
        # pre-empts holds back only its own frame); records and slots are
        # handled here in frame order.  One lane: computed on this thread.
        pool = None
        if lanes > 1:
            from concurrent.futures import ThreadPoolExecutor
            pool = ThreadPoolExecutor(lanes, thread_name_prefix=f"vqa-lane-{self.plan.label}",
                                      initializer=self._lane_init, initargs=(itertools.count(),))
        # Twice as many frames in flight as lanes (files): the pool's queue
        # then holds the next frame, so a lane that finishes before the frame
        # ahead of it takes new work at once instead of waiting for this
        # thread to hand it out (in-process, 48 1080p frames on 2 lanes: 6 of 6
        # alternating runs faster, v1 frame 18-25 -> 16-22 ms); live keeps to
        # one frame a lane (its ring is short: frames are skipped, not queued)
        depth = lanes if pool is None or live else 2 * lanes
        inflight: Deque[Tuple[object, object, bool, object]] = deque()  # (pair, future, scored, ticket)
        ended = False
        stream_error: Optional[BaseException] = None
        try:
            while not self.s._stop.is_set():
                room = not ended and len(inflight) < depth
                if room:
                    try:
                        pair = self.stream.acquire(2 if inflight else 100)
                    except StopIteration:
                        ended = True
                        continue
                    except StreamError as e:  # score what is in flight, then fail
                        ended, stream_error = True, e
                        continue
                    if pair is not None:
                        i = pair.index
                        if i > last + 1 and ledger is not None:  # the ring skipped frames
                            ledger.skip(last + 1, i - 1, subsampled=False)
                        last = i
                        score = i >= next_due
                        if score:
                            next_due = i + n
                            if ledger is not None:
                                ledger.expect(i)
                        else:  # --subsample: not scored, but motion sees it
                            self.result.frames_subsampled += 1
                            if ledger is not None:
                                ledger.skip(i, i, subsampled=True)
                        ticket = self.scorer.begin(i, None, score)
                        if pool is not None:
                            fut = pool.submit(self._work, ticket, pair, False)
                        else:
                            fut = None
                            self._work(ticket, pair)
                        inflight.append((pair, fut, score, ticket))
                        continue
                if not inflight:
                    if ended:
                        break
                    continue
                pair, fut, score, ticket = inflight[0]
                if fut is not None:
                    if not fut.done():
                        if room:
                            continue
                        try:
                            fut.result(0.1)
                        except FutureTimeout:
                            continue
                    fut.result()  # a failure in the lane is raised here
                    # the ordered extractors, here in frame order: a lane
                    # never waits for the frame ahead of its own
                    self.scorer.work_ordered(ticket, pair.ref, pair.dis)
                inflight.popleft()
                recs = self.scorer.collect()
                self._emit(recs)
                if worst is not None:  # before the release: the slot is still ours
                    if score:
                        worst.feed(pair.index, pair.ref, pair.dis, fmt, recs)
                    else:
                        worst.resolve(recs)
                self.stream.release()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)  # queued frames: not needed now
                if self.s._stop.is_set():  # the frames the lanes finished: complete them
                    self._complete(inflight)
            self.stream.release_all()
        if self.s._stop.is_set():
            self._emit(self.scorer.collect())  # frames that were in flight
            self._drain()
            return
        if stream_error is not None:
            raise stream_error
        final = self.scorer.finish()
        self._emit(final)
        if worst is not None:
            worst.finish(final)
        if ledger is not None:
            read = self.stream.stats().frames_read
            if read - 1 > last:  # skipped after the last frame scoring saw
                ledger.skip(last + 1, read - 1, subsampled=False)
            ledger.finish()
            self._mon_done = True

    def _lane_count(self, cap: int) -> int:
        """Frames computed at once, each on one thread (a kernel call runs on
        the thread that makes it): one per kernel thread, up to ``cap`` (what
        the memory budget allows, :func:`_lanes_for_memory`); several scored
        streams (outputs) share the threads.  ``VQA_LANES`` overrides it."""
        want = os.environ.get("VQA_LANES", "")
        if want.isdigit() and int(want) >= 1:
            return int(want)
        return max(1, min(cap, self.result.threads // self.streams))

    def _lane_init(self, ids) -> None:
        _lane.id = next(ids)
        if self.s.opts.live:
            _lower_priority()

    def _work(self, ticket, pair, ordered: bool = True) -> None:
        self.scorer.work(ticket, getattr(_lane, "id", 0), pair.ref, pair.dis, ordered)

    def _complete(self, inflight) -> None:
        """After an interrupt: the ordered extractors of the frames in flight
        whose lanes finished, in order up to the first that did not."""
        for pair, fut, _, ticket in inflight:
            if not fut.done() or fut.cancelled() or fut.exception() is not None:
                return
            try:
                self.scorer.work_ordered(ticket, pair.ref, pair.dis)
            except BaseException:
                return

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
            with self.s._emit_lock:
                if not self.s._collecting:
                    return
                self.result.frames_scored += 1
                self.s._q.put(("rec", r))
            if self.ledger is not None:
                self.ledger.record(r)


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """Ask for a 1 MiB pipe buffer (Linux; 64 KiB by default): a 1080p pair is
    6 MB, and fewer, larger writes mean fewer wake-ups of ffmpeg and of the
    reader.  Best effort: the system limit may refuse it."""
    import fcntl
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except OSError:
        pass


def _scoring_failure(e: BaseException) -> str:
    """One line for an unexpected exception in scoring (Numba's typing errors
    run to pages, with terminal colours)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"scoring failed: {type(e).__name__}" + (f": {first}" if first else "")


def _lower_priority(niceness: int = 10) -> None:
    """Make the calling thread (and the threads it starts later) yield
    the CPU to ffmpeg: in a live session scoring takes what the encoder
    leaves.  Linux applies setpriority(PRIO_PROCESS, tid) to one thread."""
    try:
        tid = threading.get_native_id()
        cur = os.getpriority(os.PRIO_PROCESS, tid)
        if cur < niceness:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except (AttributeError, OSError):
        pass


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
        # records are counted and queued under this lock until the session
        # stops collecting them (after an interrupt)
        self._emit_lock = threading.Lock()
        self._collecting = True
        self._signals: List[int] = []
        self._multi = False
        self._last_progress = 0.0
        self.result: Optional[Result] = None
        self.notes: List[str] = []
        self.metrics_url: Optional[str] = None
        self._consumers: List[_Consumer] = []
        self.proc = None
        self._check_live_options()
        from vqa_core.warmup import preload
        #: Numba's registries loading (overlaps with probing and ffmpeg's
        #: start); no kernel may load or compile before it has ended
        self._preload = preload()
        #: --threads (Numba's setting is per thread: the scoring threads apply
        #: it, capped at Numba's thread count; not imported here, as that
        #: would wait for the preload's import of Numba)
        self.threads: Optional[int] = max(1, opts.threads) if opts.threads else None
        #: niceness added to ffmpeg's priority (validated in _check_live_options)
        self.ffmpeg_nice: int = (opts.ffmpeg_nice if opts.ffmpeg_nice is not None
                                 else COMPARE_FFMPEG_NICE if mode == "compare" and not opts.live
                                 else 0)

    def _check_live_options(self) -> None:
        """Validate --subsample, --ffmpeg-nice, --window, --alert-below,
        --metrics-port, --fail-below and --pool (UsageError before ffmpeg
        starts)."""
        o = self.opts
        if not isinstance(o.subsample, int) or o.subsample < 1:
            raise UsageError("--subsample must be 1 or more")
        if o.ffmpeg_nice is not None:
            if isinstance(o.ffmpeg_nice, bool) or not isinstance(o.ffmpeg_nice, int) \
                    or not 0 <= o.ffmpeg_nice <= 19:
                raise UsageError("--ffmpeg-nice must be 0 to 19")
            if o.live and o.ffmpeg_nice:
                raise UsageError("--ffmpeg-nice cannot be used with --live "
                                 "(a live run never slows ffmpeg down)")
        if o.window is not None:
            o.window = lv._number(o.window, "--window")
            if o.window <= 0:
                raise UsageError("--window must be more than 0 seconds")
        keys = lv.record_keys(self.metrics, self.models, o.features)
        default = lv.default_metric(self.metrics, self.models)
        self.alert_rule: Optional[lv.AlertRule] = None
        self.alert_metric: Optional[str] = None
        if o.alert_below is not None:
            self.alert_rule = lv.parse_alert(o.alert_below)
            self.alert_metric = lv.check_metric(self.alert_rule.metric, keys, default,
                                                "--alert-below")
        elif o.alert_cmd:
            raise UsageError("--alert-cmd needs --alert-below")
        if o.metrics_port is not None:
            try:
                port = int(o.metrics_port)
            except (TypeError, ValueError):
                raise UsageError(f"--metrics-port: {o.metrics_port!r} is not a port number") from None
            if not 0 <= port <= 65535:
                raise UsageError("--metrics-port must be 0 to 65535")
            o.metrics_port = port
            try:
                import prometheus_client  # noqa: F401
            except ImportError:
                raise UsageError("--metrics-port needs prometheus-client: "
                                 "pip install 'vqa[live]' (or prometheus-client)") from None
        self.gate_metric: Optional[str] = None
        self.gate_threshold: Optional[float] = None
        if o.pool not in lv.GATE_POOLS:
            raise UsageError(f"--pool must be one of {', '.join(lv.GATE_POOLS)}, got {o.pool!r}")
        if o.fail_below is not None:
            metric, self.gate_threshold = lv.parse_threshold(o.fail_below, "--fail-below")
            self.gate_metric = lv.check_metric(metric, keys, default, "--fail-below")
        self._monitoring = (o.window is not None or self.alert_rule is not None
                            or o.metrics_port is not None)

    def _make_monitor(self, plan: graphs.ScoredStream, runner) -> "lv.Monitor":
        ident = ({"output": plan.output_url, "stream": plan.stream_index} if self._multi else {})
        window = self.opts.window or lv.DEFAULT_WINDOW
        return lv.Monitor(window=window, write_windows=self.opts.window is not None,
                          alert=self.alert_rule, alert_metric=self.alert_metric,
                          emit=lambda rec: self._q.put(("rec", rec)), ident=ident,
                          alert_runner=runner, subsample=self.opts.subsample)

    def snapshot(self) -> dict:
        """Live figures (what the metrics endpoint serves): per stream the last
        frame's scores, the last window's mean/min/p5, frames scored, skipped
        and subsampled; ffmpeg's frames, fps and speed."""
        streams = []
        for c in list(self._consumers):
            m = c.monitor
            if m is None:
                continue
            with m.lock:
                streams.append({"label": c.plan.label, "last": dict(m.last),
                                "window": {k: dict(v) for k, v in m.last_window.items()},
                                "frames_scored": m.frames_scored,
                                "frames_skipped": m.frames_skipped,
                                "frames_subsampled": m.frames_subsampled,
                                "alert_metric": m.alert_metric if m.alert else None,
                                "alert_active": m.alert_active})
        enc = {}
        if self.proc is not None:
            p = self.proc.progress
            enc = {"fps": p.fps, "speed": p.speed, "frames": p.frame}
        return {"streams": streams, "encoder": enc}

    # ------------------------------------------------------------ building
    def _damage(self, line: str) -> Tuple[str, str]:
        """(which file, ffmpeg's words without its tags) for a damage line."""
        return self._damaged_input(line), re.sub(r"^(\[[^\]]*\] ?)+", "", line)

    def _damaged_input(self, line: str) -> str:
        """Which file an ffmpeg complaint is about, from its ``[in#N/...]`` tag."""
        m = re.search(r"\[in#(\d+)", line)
        cmd = getattr(self, "command", None) or []
        urls = [cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a == "-i"]
        if m and int(m.group(1)) < len(urls):
            url = urls[int(m.group(1))]
            for what, path in (("distorted", self.distorted), ("reference", self.reference)):
                if path and (url == path or url == "file:" + os.path.abspath(path)):
                    return f"{what} {path}"
            return url
        return "an input"

    def _start_warm_up(self, built) -> None:
        """Load the run's kernels while ffmpeg starts; say so when they have
        to be compiled (the first run after install)."""
        fmt = built.pair_fmt
        if fmt is None:
            return
        chroma, depth = chroma_and_depth(fmt)
        if any(s.luma_of == fmt for s in built.streams):
            chroma = "400"  # the frames will be luma only
        from vqa_core.warmup import start_warm_up

        def compiling():
            self.note("compiling the scoring kernels for first use (up to half a minute, "
                      "once; later runs reuse Numba's cache)")
        self._warm = start_warm_up(chroma, depth, self.metrics, self.models, on_compile=compiling,
                                   after=self._preload)

    def _build(self, ff: Ffmpeg, tmp: str):
        if self.mode == "compare":
            built = graphs.build_compare(ff, self.reference, self.distorted, self.opts, tmp)
        else:
            ff.require_inline()
            cmd = parse_command(self.argv)
            built = graphs.build_inline(ff, cmd, self.opts)
        # metrics that read no chroma (the VMAF models, CAMBI, MS-SSIM): ffmpeg
        # sends the luma alone (the HTML report's frame images need colour)
        from vqa_core.engine import needs_chroma
        if not self.opts.html and not needs_chroma(self.metrics, self.models):
            for s, f in zip(built.streams, built.stream_formats):
                if graphs.drops_chroma(f):
                    s.luma_of = f
        return built

    def note(self, text: str) -> None:
        self.notes.append(text)
        if not self.opts.quiet:
            self.writer.write(f"vqa: {text}\n")

    # ------------------------------------------------------------ running
    def __iter__(self) -> Iterator[dict]:
        return self.records()

    def run(self, callback: Optional[Callable[[dict], None]] = None) -> Result:
        """Run to the end, calling ``callback(record)`` for each record; returns
        the :class:`Result`.  Raises as iterating does; if the callback raises,
        ffmpeg is stopped and waited for before the exception propagates."""
        gen = self.records()
        try:
            for rec in gen:
                if callback:
                    callback(rec)
        finally:
            gen.close()
        return self.result

    def records(self) -> Iterator[dict]:
        if self.opts.log_format not in LOG_FORMATS:
            raise UsageError(f"unknown --log-format {self.opts.log_format!r}; one of: "
                             f"{', '.join(LOG_FORMATS)}")
        if self.opts.html:
            from .report_html import require_matplotlib
            require_matplotlib()
            check_writable(self.opts.html, "HTML report")
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
        if (self.mode == "compare" and self.opts.ffmpeg_nice is None and not self.opts.live
                and not all(p.luma_of for p in plans)):
            self.ffmpeg_nice = COMPARE_FFMPEG_NICE_CHROMA
        if self.opts.log == "-" and built.uses_stdout:
            raise UsageError("--log - writes to stdout, but the ffmpeg command writes its output there")
        log = open_log(self.opts.log, self.opts.log_format) if self.opts.log else None
        if log is not None and hasattr(log, "set_stream_order"):
            log.set_stream_order([(p.output_url, p.stream_index) for p in plans])
        html = None
        if self.opts.html:
            from .report_html import HtmlReport
            html = HtmlReport()
        self._start_warm_up(built)
        total = getattr(built, "expected_frames", None)
        if total and self.opts.subsample > 1:
            total = -(-total // self.opts.subsample)
        self.writer.set_total(total)
        # pipes: progress, then frames + stats per stream
        fds_to_pass: List[int] = []
        prog_r, prog_w = os.pipe()
        fds_to_pass.append(prog_w)
        pipes: List[Tuple[int, int, int, int]] = []
        for _ in plans:
            fr, fw = os.pipe()
            _grow_pipe(fw)
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
        server = runner = None
        try:
            if self.opts.metrics_port is not None:
                server = lv.MetricsServer(self.opts.metrics_host, self.opts.metrics_port,
                                          self.snapshot)
                self.metrics_url = server.url
                self.note(f"metrics at {server.url}")
            if self.opts.alert_cmd:
                runner = lv.AlertRunner(self.opts.alert_cmd, self.note)
            proc = FfmpegProcess(cmd, fds_to_pass, relay=relay, progress_fd=prog_r,
                                 writer=self.writer.write, stdin=stdin, nice=self.ffmpeg_nice,
                                 env=compare_env() if self.mode == "compare" else None)
        except BaseException:
            if server is not None:
                server.close()
            if runner is not None:
                runner.close(0)
            for fd in (prog_r, *[p[0] for p in pipes], *[p[2] for p in pipes]):
                try:
                    os.close(fd)
                except OSError:
                    pass
            raise
        finally:
            for fd in fds_to_pass:
                os.close(fd)
        self.proc = proc
        for plan, (fr, _, sr, _) in zip(plans, pipes):
            c = _Consumer(self, plan, fr, sr, len(plans))
            if self._monitoring:
                c.monitor = self._make_monitor(plan, runner)
            consumers.append(c)
        self._consumers = consumers
        for c in consumers:
            c.start()
        # Ctrl-C and SIGTERM are only recorded here and acted on by this loop:
        # an exception raised wherever the main thread happens to be (between
        # taking a record off the queue and logging it, or in the caller's
        # code between two records) would lose a scored frame.
        signals = self._signals = []
        if threading.current_thread() is threading.main_thread():
            def handler(sig, frame):
                signals.append(sig)
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
                    if signals:
                        interrupted = signals[0]
                        break
                    try:
                        kind, item = self._q.get(timeout=0.1)
                    except queue.Empty:
                        self._show_progress(last_rec, start)
                        continue
                    if kind == "done":
                        running -= 1
                        continue
                    if "type" not in item:
                        last_rec[item.get("output", "")] = item
                    if log:
                        log.write(item)
                    if html is not None:
                        html.add(item)
                    yield item
                    self._show_progress(last_rec, start)
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
                if interrupted is None and signals:  # while ffmpeg was finishing
                    interrupted = signals[0]
                self._hard_stop.set()
                for c in consumers:
                    c.join(timeout=10)
                # records queued after the loop ended (interrupt) still count;
                # a consumer still running now (it did not join) counts no more
                with self._emit_lock:
                    self._collecting = False
                    while True:
                        try:
                            kind, item = self._q.get_nowait()
                        except queue.Empty:
                            break
                        if kind == "rec":
                            if log:
                                log.write(item)
                            if html is not None:
                                html.add(item)
                self.writer.end_status()
        finally:
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            if proc is not None and proc.poll() is None:
                proc.stop(grace=1.0)
            if log:
                log.close()
            if runner is not None:
                runner.close()
            if server is not None:
                server.close()

        # ------------------------------------------------------ outcome
        stream_results = [c.result for c in consumers]
        for c in consumers:
            if c.scorer is not None:
                c.result.summary = c.scorer.summary()
        exit_code = 0
        exc_cls = VqaError
        consumer_errors = [c.error for c in consumers if c.error is not None]
        if interrupted is not None:
            exc_cls = Interrupted
            name = "Ctrl-C" if interrupted == signal.SIGINT else "SIGTERM"
            error = f"interrupted by {name}"
            exit_code = 130 if interrupted == signal.SIGINT else 143
        elif rc != 0 and not (consumer_errors and self.mode == "compare"):
            # (in compare, a failed scorer stops reading: ffmpeg's broken pipe
            # is the effect, the scoring error below the cause)
            why = proc.error_summary()
            if rc < 0:
                error = f"ffmpeg was {exit_status_text(rc)}" + (f": {why}" if why and self.mode == "compare" else "")
            elif self.mode == "compare" and proc.damage:
                where, what = self._damage(proc.damage)
                error = f"{where} is truncated or damaged ({what}); ffmpeg stopped ({exit_status_text(rc)})"
            else:
                error = f"ffmpeg failed ({exit_status_text(rc)})" + (f": {why}" if why else "")
            if self.mode == "transcode":
                exit_code = rc if rc > 0 else 128 - rc
            else:
                exit_code = 1
            exc_cls = FfmpegFailed
        elif consumer_errors:
            e = consumer_errors[0]
            error = str(e) if isinstance(e, VqaError) else _scoring_failure(e)
            exc_cls = type(e) if isinstance(e, VqaError) else ScoringFailed
            exit_code = 1
        if self.mode == "compare" and error is None:
            for w in built.finish_notes():
                self.note(w)
            damage = (self._damage(proc.damage) if proc.damage else None) or built.truncated_y4m()
            if damage:  # ffmpeg went on, but an input ended early or is damaged
                error = f"{damage[0]} is truncated or damaged ({damage[1]})"
                exit_code, exc_cls = 1, StreamError
        scored = sum(r.frames_scored for r in stream_results)
        if error and scored:
            error += f" ({scored} frame{'s' if scored != 1 else ''} scored before it)"
        gate = None
        if self.gate_metric is not None and error is None:  # ffmpeg's own failure wins
            gate, why = self._gate(stream_results)
            if not gate["passed"]:
                error, exit_code, exc_cls = why, QualityGateFailed.exit_code, QualityGateFailed
        report = self._report(ff, built, stream_results, error, exit_code)
        if gate is not None:
            report["gate"] = gate
            report["complete"] = True  # the run finished; it failed the gate
        if self.opts.window is not None:
            report["window"] = self.opts.window
        if self.alert_rule is not None:
            report["alerts"] = [r for c in consumers if c.monitor is not None
                                for r in c.monitor.alert_records]
        if self.opts.report:
            write_report(self.opts.report, report)
        if html is not None:
            settings = {k: v for k, v in vars(self.opts).items()
                        if k not in ("models",) and v not in (None, False, ())}
            settings["models"] = [m.name for m in self.models]
            html.write(self.opts.html, report=report,
                       worst=[c.worst for c in consumers if c.worst is not None],
                       settings=settings)
        if not self.opts.quiet:
            for r in stream_results:
                title = f"vqa: {r.frames_scored} frames scored"
                if self._multi or self.mode == "transcode":
                    title += f" ({r.label})"
                if r.frames_dropped or self.opts.live:
                    title += f", {r.frames_dropped} skipped (scoring fell behind)"
                if r.frames_subsampled:
                    title += f", {r.frames_subsampled} left out by --subsample"
                self.writer.write(summary_table(r.summary, title))
        self.result = Result(exit_code, stream_results, report, error, gate)
        if error:
            e = exc_cls(error)
            e.exit_code = exit_code
            e.result = self.result
            raise e

    def _gate(self, streams: List[StreamResult]):
        """--fail-below: (gate dict for the report, one-line reason or None)."""
        metric, pool, thr = self.gate_metric, self.opts.pool, self.gate_threshold
        values, failed = [], []
        for r in streams:
            v = r.summary.get(metric, {}).get(pool)
            ok = v is not None and v == v and v >= thr
            values.append({"label": r.label, "value": v, "passed": ok})
            if not ok:
                failed.append((r, v))
        gate = {"metric": metric, "pool": pool, "threshold": thr, "streams": values,
                "passed": not failed}
        if not failed:
            return gate, None
        r, v = failed[0]
        where = f" ({r.label})" if self.mode == "transcode" or self._multi else ""
        if v is None or v != v:
            why = f"quality gate failed: no {metric} scores to pool{where}"
        else:
            why = f"quality gate failed: {metric} {pool} {v:.3f} is below {thr:g}{where}"
        if len(failed) > 1:
            why += f" and {len(failed) - 1} more stream{'s' if len(failed) > 2 else ''}"
        return gate, why

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
                proc.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
            except KeyboardInterrupt:
                return proc.stop(grace=2.0)
            if len(self._signals) > (1 if interrupted is not None else 0):
                # a (second) Ctrl-C or SIGTERM while ffmpeg finishes: stop now
                return proc.stop(grace=2.0)

    def _show_progress(self, last: Dict[str, dict], start: float) -> None:
        """The progress line (a bar on a terminal): frames scored, rate, ETA
        when the frame count is known, ffmpeg's speed, the latest score."""
        now = time.monotonic()
        # called after every record: gather the figures at most four times a second
        if self.opts.quiet or not self.opts.progress or now - self._last_progress < 0.25:
            return
        self._last_progress = now
        done = sum(c.result.frames_scored for c in getattr(self, "_consumers", ()))
        skipped = 0
        for c in getattr(self, "_consumers", ()):
            if c.stream is not None:
                try:
                    skipped += c.stream.stats().frames_dropped
                except Exception:
                    pass
        scores = []
        for rec in list(last.values())[:3]:
            for key in ("vmaf", "psnr_y", "ssim", "ms_ssim"):
                if rec.get(key) is not None:
                    scores.append((key, rec[key]))
                    break
        p = self.proc.progress
        self.writer.progress(done, scores=scores, speed=p.speed, skipped=skipped)

    def _report(self, ff: Ffmpeg, built, streams: List[StreamResult], error, exit_code) -> dict:
        rep = {
            "vqa_version": VERSION,
            "vqa_core_version": core_version,
            "ffmpeg": {"path": ff.path, "version": ff.version, "nice": self.ffmpeg_nice},
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
                        "frames_subsampled": s.frames_subsampled, "threads": s.threads,
                        "lanes": s.lanes,
                        "summary": s.summary})
        if self.mode == "transcode" and getattr(self, "proc", None) is not None:
            p = self.proc.progress
            rep["encoder"] = {"frames": p.frame, "fps": p.fps, "speed": p.speed}
        if self.opts.live:
            rep["live"] = True
        if len(per) == 1:
            rep["frames"] = per[0]["frames"]
            rep["frames_skipped"] = per[0]["frames_skipped"]
            rep["frames_subsampled"] = per[0]["frames_subsampled"]
            rep["format"] = per[0]["format"]
            rep["threads"] = per[0]["threads"]
            rep["lanes"] = per[0]["lanes"]
            rep["summary"] = per[0]["summary"]
            if self.mode == "transcode":
                rep["output"], rep["stream"] = per[0]["output"], per[0]["stream"]
        else:
            rep["frames"] = sum(p["frames"] for p in per)
            rep["streams"] = per
        return rep
