"""vqa_filter: everything about ffmpeg — finding it, rewriting a transcode
command, building pairing graphs, running the process and streaming paired
frames through the C shim into vqa_core — plus the CLI.

Python API::

    from vqa_filter import compare, transcode
    result = compare("ref.y4m", "dis.mp4", metrics=["psnr", "ssim"], log="scores.jsonl")
    for record in transcode(["-i", "src.mp4", "-c:v", "libx264", "out.mp4"]):
        print(record["frame"], record["psnr_y"])

``compare`` and ``transcode`` return a :class:`Session`: iterate over it, or
call ``run(callback)`` for the :class:`Result`.  Failures raise
:class:`VqaError` subclasses (``exit_code`` as the CLI's, ``result`` with what
was scored); leaving early or an exception stops ffmpeg and waits for it.
Window and alert records (``window=``, ``alert_below=``) carry a ``type`` key;
frame records do not.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (FfmpegFailed, Interrupted, QualityGateFailed, ScoringFailed, UsageError,
                     VqaError)

if TYPE_CHECKING:  # imported on first use (see __getattr__)
    from .session import Options, Result, Session  # noqa: F401

__version__ = "0.1.0"

# Session, Options and Result come from .session when first asked for: it
# imports NumPy and vqa_core (~0.1 s), which the command line starts in a
# thread of its own while it probes the inputs (cli.py)
_LAZY = ("Session", "Options", "Result")


def __getattr__(name):
    if name in _LAZY:
        from . import session
        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _options(kw) -> Options:
    from .session import Options
    o = Options()
    for k, v in kw.items():
        if not hasattr(o, k):
            raise TypeError(f"unknown option {k!r}")
        setattr(o, k, v)
    return o


def compare(reference: str, distorted: str, **options) -> Session:
    """A comparison session: iterate over it for records, or call ``.run()``.

    Options as :class:`vqa_filter.session.Options` (metrics, log, report,
    ffmpeg, threads, scale_algo, quiet, ...)."""
    from .session import Session
    options.setdefault("quiet", True)
    return Session(_options(options), "compare", reference=reference, distorted=distorted)


def transcode(ffmpeg_args, **options) -> Session:
    """An inline session scoring the transcode ``ffmpeg *ffmpeg_args``."""
    from .session import Session
    options.setdefault("quiet", True)
    return Session(_options(options), "transcode", argv=list(ffmpeg_args))


__all__ = ["compare", "transcode", "Session", "Options", "Result", "VqaError", "UsageError",
           "FfmpegFailed", "ScoringFailed", "Interrupted", "QualityGateFailed", "__version__"]
