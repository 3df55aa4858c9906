"""Start-up: load (or compile) the Numba kernels a run needs before its first
frame arrives, and tell whether that will mean compiling.

Numba keeps compiled kernels in a cache (``__pycache__`` next to the modules,
or, when the installed package's folder is not writable, a user-wide folder:
``$NUMBA_CACHE_DIR`` or ``~/.cache/numba``), reused across runs.  Loading
them still costs a fraction of a second per module; :func:`warm_up` does it on
a small synthetic frame pair of the run's chroma layout and bit depth, so a
session can call it in a thread while ffmpeg starts.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .engine import EXTRACTOR_METRICS, Scorer
from .features.base import FrameFormat

#: big enough for every extractor's minimum size (CAMBI's 216-pixel encode
#: size, SpEED's 80x80 chroma after a 0.5 prescale), small enough to be quick
WARM_SIZE = (480, 360)


def warm_up(chroma: str, bitdepth: int, metrics: Sequence[str] = (),
            models: Sequence[object] = ()) -> None:
    """Run every kernel the run needs once, on a small stacked frame pair laid
    out like the pairs of a real stream (distorted over reference in one
    array), so that the same compiled versions are loaded."""
    w, h = WARM_SIZE
    fmt = FrameFormat(w, h, chroma, bitdepth)
    scorer = Scorer(fmt, [m for m in metrics if m in EXTRACTOR_METRICS], models)
    rng = np.random.default_rng(1)
    planes_ref, planes_dis = [], []
    for ph, pw in fmt.plane_shapes():
        stacked = rng.integers(0, 1 << min(bitdepth, 10), (2 * ph, pw)).astype(fmt.dtype)
        stacked <<= max(bitdepth - 10, 0)
        planes_dis.append(stacked[:ph])
        planes_ref.append(stacked[ph:])
    for i in range(3):  # temporal extractors need neighbours
        scorer.push(i, None, tuple(planes_ref), tuple(planes_dis))
    scorer.finish()


class _CompileWatch:
    """Calls ``on_compile()`` once, at the first kernel compilation (a cache
    miss); loads from the cache do not count."""

    def __init__(self, on_compile):
        from numba.core import event
        self._fired = False
        self._on_compile = on_compile
        watch = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                if not watch._fired:
                    watch._fired = True
                    try:
                        watch._on_compile()
                    except Exception:
                        pass

            def on_end(self, ev):
                pass

        self._listener = _Listener()
        event.register("numba:compile", self._listener)

    def close(self):
        from numba.core import event
        try:
            event.unregister("numba:compile", self._listener)
        except Exception:
            pass

    @property
    def compiled(self) -> bool:
        return self._fired


def start_warm_up(chroma: str, bitdepth: int, metrics: Sequence[str] = (),
                  models: Sequence[object] = (), on_compile=None):
    """:func:`warm_up` in a daemon thread; ``on_compile()`` is called at the
    first compilation (so the caller can say that it is compiling).  Returns
    the thread; its ``error`` attribute holds an exception, if any."""
    import threading

    def run():
        watch = _CompileWatch(on_compile) if on_compile else None
        try:
            warm_up(chroma, bitdepth, metrics, models)
        except BaseException as e:  # the real scorer will report it
            t.error = e
        finally:
            if watch:
                watch.close()

    t = threading.Thread(target=run, name="vqa-warm-up", daemon=True)
    t.error = None
    t.start()
    return t
