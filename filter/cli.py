"""The ``vqa`` command line.

    vqa [OPTIONS] ffmpeg ARGS...         score a transcode while it runs
    vqa compare [OPTIONS] REFERENCE DISTORTED
    vqa models                           list the built-in VMAF models
"""
from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from typing import List, Optional

from .errors import QualityGateFailed, UsageError, VqaError

HELP = """\
usage: vqa [OPTIONS] ffmpeg ARGS...
       vqa compare [OPTIONS] REFERENCE DISTORTED
       vqa models

Score video quality while ffmpeg encodes.

  vqa [OPTIONS] ffmpeg ARGS...   runs your ffmpeg command exactly as given (ARGS as
                                 you would pass them to ffmpeg) and scores every
                                 encoded video stream against its source, frame by
                                 frame, while it encodes. The files it writes are
                                 the same as without vqa; ffmpeg's exit status is
                                 vqa's.
  vqa compare REFERENCE DISTORTED
                                 scores an existing encode against its source.
                                 DISTORTED is scaled to REFERENCE's size; frames
                                 are compared at the reference's bit depth.
  vqa models                     lists the built-in VMAF models.

options (before "ffmpeg" in the inline form):
  --metrics LIST      comma-separated metrics: {metrics} (default: {default});
                      "vmaf" is the score of each --model (default vmaf_v0.6.1)
  --model SPEC        a VMAF model: a built-in name (see "vqa models") or a libvmaf
                      JSON model file, with options NAME|PATH[:option=value...]:
                      name=KEY (record key), disable_clip=true, enable_transform=true,
                      or feature options such as cambi.enc_width=1280,
                      enc_height=720, enc_bitdepth=8, adm_enhn_gain_limit=1.0.
                      Repeat to score several models in one pass: one model writes
                      "vmaf", several write each under its name. Implies vmaf.
  --features          also write the models' elementary features (vif_scale0,
                      adm2, motion2, ...) in the frame records
  --bit-depth N       compare at N bits (8, 10, 12, 16) instead of the reference's
                      own depth; ffmpeg converts 8-bit to 10-bit by shifting, as
                      libvmaf's docs ask for when scoring 8-bit video with the v1
                      models (which are meant for 10-bit processing)
  --log PATH          write one record per frame as it is scored ("-" is stdout)
  --log-format FMT    jsonl (default: JSON Lines, flushed per frame), csv (a row per
                      frame) or libvmaf-json (libvmaf's JSON log layout and metric
                      names, written when the run ends)
  --html PATH         write a self-contained HTML report when the run ends: every
                      metric over time, the pooled table, the worst frames with
                      reference/distorted/difference crops, inputs and settings
                      (needs matplotlib: pip install 'vqa[report]')
  --report PATH       write a summary JSON (per metric: mean, harmonic_mean, min,
                      max, p1, p5, p50; frame count; inputs; ffmpeg and vqa versions)
  --ffmpeg PATH       the ffmpeg binary (default: $VQA_FFMPEG, an ffmpeg 7+ on PATH,
                      else the one bundled with imageio-ffmpeg)
  --threads N         threads for vqa's kernels (default: all cores; the report
                      says how many ran): as many frames are scored at once, each
                      on one thread (fewer for very large frames, to bound memory;
                      several outputs share them; VQA_LANES=N in the environment
                      sets the number of frames at once)
  --ffmpeg-nice N     lower ffmpeg's CPU priority by N (0-19; default in "vqa
                      compare": 10 when the pairs travel as luma alone, 7 when they
                      carry chroma (more for ffmpeg to move), so that reading ahead
                      fills the kernels' idle moments instead of interrupting them;
                      0 in the inline form, where the encode is the job, and with
                      --live)
  --scale-algo NAME   scaler used to bring the distorted frames to the reference's
                      size (default: bicubic)
  --subsample N       score every Nth frame (motion, for VMAF, still sees every frame)
  --live              for encodes that run in real time (-re, capture devices,
                      network inputs or outputs): never slow ffmpeg down; when
                      scoring falls behind, frames are skipped (each one counted in
                      the summary, the report and the window records) and scoring
                      runs at a lower CPU priority than ffmpeg
  --window SECONDS    add a {{"type": "window"}} record to --log every SECONDS of
                      stream time: start, end, frames_scored, frames_skipped, and
                      mean, min and p5 of each metric
  --alert-below [METRIC=]SCORE[:SECONDS]
                      write a {{"type": "alert", "event": "alert"}} record when the
                      window mean of METRIC (default: vmaf if scored, else the
                      first metric) stays below SCORE for SECONDS (default 0), and
                      an "event": "recovery" record when it comes back; windows
                      are --window long, or 1 s
  --alert-cmd CMD     run CMD (through the shell, never waited for) on each alert
                      and recovery, with VQA_ALERT_EVENT, _METRIC, _THRESHOLD,
                      _VALUE, _SINCE, _TIME, _DURATION, _OUTPUT, _STREAM and _JSON
                      in its environment
  --metrics-port PORT serve Prometheus metrics at http://HOST:PORT/metrics while
                      running (last score, window mean and min, frames scored and
                      skipped, ffmpeg's fps and speed); needs prometheus-client
                      (pip install 'vqa[live]'); 0 picks a free port
  --metrics-host HOST address to serve metrics on (default: 127.0.0.1)
  --fail-below [METRIC=]SCORE
                      after a finished run, exit with status 3 and a one-line
                      reason if the pooled METRIC (default: vmaf if scored, else
                      the first metric, e.g. psnr_y, ssim) is below SCORE;
                      e.g. --fail-below 80 or --fail-below psnr_y=35
  --pool NAME         pooling for --fail-below: mean (default), harmonic_mean,
                      p5 or min
  -q, --quiet         no progress line, notes or summary table on stderr
  --no-progress       no progress line (notes and summary table stay)
  --version           print vqa's version and exit
  -h, --help          this help

exit status: ffmpeg's in the inline form; 1 when vqa fails, 2 for a usage error,
3 when --fail-below fails (ffmpeg's own failure wins), 130 after Ctrl-C. Every frame scored before a failure is in --log and --report.

kernels: compiled by Numba on first use (cached); after a run that needed Numba,
vqa builds a native library of them in the background (a C compiler, Linux) that
later runs load instead: ~0.1 s quicker to start. VQA_NATIVE=0 turns that off;
VQA_NATIVE_DIR sets its folder (default ~/.cache/vqa/native); python -m
vqa_core._native prepare|status|wait builds it ahead, lists it, waits for a build.
"""

_VALUE_OPTS = {"--metrics", "--log", "--report", "--ffmpeg", "--ffmpeg-nice", "--threads", "--scale-algo",
               "--subsample", "--model", "--bit-depth", "--log-format", "--html", "--window", "--alert-below",
               "--alert-cmd", "--metrics-port", "--metrics-host", "--fail-below", "--pool"}
_FLAG_OPTS = {"-q", "--quiet", "--no-progress", "--features", "--live"}


def _metrics_list():
    from vqa_core.engine import EXTRACTOR_METRICS
    return ["vmaf", "psnr", "ssim"] + sorted(m for m in EXTRACTOR_METRICS
                                             if m not in ("psnr", "ssim"))


DEFAULT_METRICS = "vmaf"


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, add_help=False)
    p.add_argument("--metrics")
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--features", action="store_true")
    p.add_argument("--bit-depth", type=int, dest="bitdepth")
    p.add_argument("--log")
    p.add_argument("--log-format", dest="log_format", default="jsonl",
                   choices=["jsonl", "csv", "libvmaf-json"])
    p.add_argument("--html")
    p.add_argument("--report")
    p.add_argument("--ffmpeg")
    p.add_argument("--threads", type=int)
    p.add_argument("--ffmpeg-nice", type=int, dest="ffmpeg_nice")
    p.add_argument("--scale-algo", default="bicubic")
    p.add_argument("--subsample", type=int, default=1)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--live", action="store_true")
    p.add_argument("--window", type=float)
    p.add_argument("--alert-below", dest="alert_below")
    p.add_argument("--alert-cmd", dest="alert_cmd")
    p.add_argument("--metrics-port", dest="metrics_port", type=int)
    p.add_argument("--metrics-host", dest="metrics_host", default="127.0.0.1")
    p.add_argument("--fail-below", dest="fail_below")
    p.add_argument("--pool", default="mean")
    return p


def _parse(parser: argparse.ArgumentParser, args: List[str]) -> argparse.Namespace:
    def error(msg):
        raise UsageError(msg + " (see vqa --help)")
    parser.error = error  # type: ignore[assignment]
    return parser.parse_args(args)


def _split_inline(argv: List[str]):
    """vqa's own options, the ffmpeg program token, and ffmpeg's arguments."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_OPTS:
            i += 2
            continue
        if "=" in a and a.split("=", 1)[0] in _VALUE_OPTS:
            i += 1
            continue
        if a in _FLAG_OPTS:
            i += 1
            continue
        if a.startswith("-"):
            raise UsageError(f"unknown option {a} (vqa's options go before \"ffmpeg\"; see vqa --help)")
        return argv[:i], a, argv[i + 1:]
    raise UsageError("expected \"ffmpeg ARGS...\", \"compare REFERENCE DISTORTED\" or \"models\" "
                     "(see vqa --help)")


def _options(ns) -> "Options":
    from .session import Options, resolve_metrics
    if ns.metrics is None:
        metrics = ["vmaf"]
    else:
        metrics = [m.strip() for m in ns.metrics.split(",") if m.strip()]
        if not metrics:
            raise UsageError("--metrics is empty")
    known = _metrics_list()
    bad = [m for m in metrics if m not in known]
    if bad:
        raise UsageError(f"unknown metric {bad[0]!r}; known: {', '.join(known)}")
    if ns.model and "vmaf" not in metrics:
        metrics.append("vmaf")
    if ns.bitdepth is not None and ns.bitdepth not in (8, 9, 10, 12, 14, 16):
        raise UsageError("--bit-depth must be one of 8, 9, 10, 12, 14, 16")
    _, models = resolve_metrics(metrics, ns.model)  # load models now: errors before ffmpeg starts
    if ns.threads is not None and ns.threads < 1:
        raise UsageError("--threads must be 1 or more")
    if ns.subsample < 1:
        raise UsageError("--subsample must be 1 or more")
    return Options(metrics=metrics, models=models, features=ns.features,
                   bitdepth=ns.bitdepth, log=ns.log, report=ns.report, ffmpeg=ns.ffmpeg,
                   threads=ns.threads, ffmpeg_nice=ns.ffmpeg_nice,
                   scale_algo=ns.scale_algo, subsample=ns.subsample,
                   quiet=ns.quiet, progress=not ns.no_progress, live=ns.live,
                   window=ns.window, alert_below=ns.alert_below, alert_cmd=ns.alert_cmd,
                   metrics_port=ns.metrics_port, metrics_host=ns.metrics_host,
                   fail_below=ns.fail_below, pool=ns.pool, html=ns.html,
                   log_format=ns.log_format)


#: the command's thread importing NumPy, vqa_core and the session (see main)
_heavy: Optional[threading.Thread] = None
#: the command turned the garbage collector off (see main)
_gc_paused = False


def _import_heavy() -> None:
    try:
        from vqa_core import warmup
        warmup.SKIP_OPTIONAL_IMPORTS = True
        if _gc_paused:
            warmup.adopt_gc_pause()  # the warm-up turns it back on
        from . import session  # noqa: F401
    except BaseException:  # the main thread's own import says what is wrong
        pass


def _prefetch(ffmpeg: Optional[str], jobs) -> None:
    """The command only: find ffmpeg and probe the inputs (of a compare, or
    of the user's ffmpeg command) while _heavy imports (the probes are
    processes of their own: the import goes on meanwhile); the session then
    uses the results.  Failures are left for the session to meet and
    report, in its order."""
    if _heavy is None:
        return
    try:
        from .ffmpeg import find_ffmpeg, prefetch
        prefetch(find_ffmpeg(ffmpeg), jobs)
    except Exception:
        pass


def main(argv: Optional[List[str]] = None) -> int:
    """The command line.  As the command itself (``argv`` None: a process of
    its own) it also turns the garbage collector off until the kernels are
    loaded (see vqa_core.warmup.pause_gc), and imports NumPy, vqa_core and
    the session (~0.1 s) in a thread while it finds ffmpeg and probes the
    inputs (processes of their own, which leave the thread Python's lock)."""
    global _heavy, _gc_paused
    command = argv is None
    if command:
        import gc
        if gc.isenabled():
            gc.disable()
            _gc_paused = True
        # vqa makes no BLAS call; NumPy's OpenBLAS would start a thread per
        # core at import that spins ~0.1 s waiting for work (2% of a 120-frame
        # 1080p run's CPU samples); one thread (the caller) starts none.  A
        # user's own setting stays.  (120 frames, 8 alternating runs: mean
        # 1.590 against 1.617 s.)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        _heavy = threading.Thread(target=_import_heavy, name="vqa-imports", daemon=True)
        _heavy.start()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except QualityGateFailed as e:
        sys.stderr.write(f"vqa: {e}\n")
        sys.stderr.flush()
        return e.exit_code
    except VqaError as e:
        sys.stderr.write(f"vqa: error: {e}\n")
        sys.stderr.flush()
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("vqa: interrupted\n")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = None  # type: ignore[assignment]
        except Exception:
            pass
        return 1
    finally:
        if command:
            if _gc_paused:
                from vqa_core import warmup
                warmup.adopt_gc_pause()  # if _import_heavy had not
                warmup.resume_gc()
            # kernels this run called through Numba: add them to the native
            # library in the background (vqa_core/_native.py)
            from vqa_core import _native
            _native.build_later()


def _main(argv: List[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(HELP.format(metrics=", ".join(_metrics_list()), default=DEFAULT_METRICS))
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__
        sys.stdout.write(f"vqa {__version__}\n")
        return 0
    if argv[0] == "compare":
        return _compare(argv[1:])
    if argv[0] == "models":
        return _models(argv[1:])
    vqa_args, prog, ff_args = _split_inline(argv)
    if os.path.basename(prog) not in ("ffmpeg", "ffmpeg.exe") and not os.path.basename(prog).startswith("ffmpeg"):
        raise UsageError(f"expected \"ffmpeg\" after vqa's options, got {prog!r} (see vqa --help)")
    ns = _parse(_parser("vqa"), vqa_args)
    if prog not in ("ffmpeg", "ffmpeg.exe") and not ns.ffmpeg:
        ns.ffmpeg = prog  # "vqa /opt/ffmpeg7/bin/ffmpeg -i ..." uses that binary
    if ff_args:
        _prefetch(ns.ffmpeg, _inline_probe_jobs(ff_args))
    opts = _options(ns)
    if not ff_args:
        raise UsageError("no ffmpeg arguments given")
    from .session import Session
    s = Session(opts, "transcode", argv=ff_args)
    return _run(s)


def _inline_probe_jobs(ff_args: List[str]) -> list:
    """The probes the inline session's graph will ask for (graph.build_inline),
    or none when the command does not parse (the session reports that)."""
    from .argv import parse_command
    try:
        return [job for _, job in parse_command(ff_args).probe_jobs()]
    except Exception:
        return []


def _compare(args: List[str]) -> int:
    p = _parser("vqa compare")
    p.add_argument("reference")
    p.add_argument("distorted")
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(HELP.format(metrics=", ".join(_metrics_list()), default=DEFAULT_METRICS))
        return 0
    ns = _parse(p, args)
    _prefetch(ns.ffmpeg, [(ns.reference, (), "reference"), (ns.distorted, (), "distorted")])
    from .session import Session
    s = Session(_options(ns), "compare", reference=ns.reference, distorted=ns.distorted)
    return _run(s)


def _run(session) -> int:
    for _ in session.records():
        pass
    return session.result.exit_code


def _models(args: List[str]) -> int:
    try:
        from vqa_core.models import builtin_models
    except ImportError:
        sys.stdout.write("no models available in this build\n")
        return 1
    rows = builtin_models()
    w = max(len(n) for n, _ in rows) + 2
    for name, desc in rows:
        sys.stdout.write(f"{name:<{w}}{desc}\n")
    return 0


def run() -> None:
    """The ``vqa`` command: :func:`main`, then the end of the process.

    Python's own exit would then tear the interpreter down, freeing the
    hundreds of thousands of objects Numba made one by one (~20 ms of every
    run).  This does what that exit does that matters (the other non-daemon
    threads run to their end, atexit handlers run, buffered output is
    written; vqa's own files are closed by then) and ends the process."""
    code = main()
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter calls
    if shutdown is None:  # another Python: its own exit
        sys.exit(code)
    try:
        shutdown()
        atexit._run_exitfuncs()
    except BaseException:  # e.g. Ctrl-C while waiting: the usual way out
        sys.exit(code)
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:  # a closed pipe: nothing more to write to it
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
