"""Turn a stream of frame pairs into per-frame records.

A :class:`Scorer` owns one extractor instance per distinct (extractor, options)
that the chosen metrics and models need, feeds every frame pair to each, and
emits one record per frame, in frame order, as soon as every extractor has
reported for that frame.  Models turn feature values into scores.
"""
from __future__ import annotations

import threading
from array import array
from collections import deque
from typing import Deque, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .features.base import FeatureExtractor, FrameFormat, as_planes, check_planes
from .features.registry import get_extractor, reads_chroma
from .pooling import pool

#: metric name -> extractor name, for metrics that are a feature extractor's
#: outputs as they are (models such as VMAF are handled by ``vqa_core.models``)
EXTRACTOR_METRICS = {"psnr": "psnr", "ssim": "ssim", "ms_ssim": "ms_ssim",
                     "cambi": "cambi"}

Key = Tuple[str, Tuple[Tuple[str, object], ...]]


def _key(name: str, options: Dict[str, object]) -> Key:
    return name, tuple(sorted(options.items()))


class Scorer:
    """Score frame pairs of one format.

    ``metrics``: names from :data:`EXTRACTOR_METRICS` (and ``vmaf``-style model
    metrics, given as ``models``).  ``models``: objects with ``name``,
    ``extractors()`` -> list of ``(extractor_name, options)``, ``outputs`` and
    ``predict(features_by_extractor)`` -> ``{key: value}``.
    ``features``: also put every model's elementary features in the records.

    ``lanes``: how many frames may be computed at once, each on its own
    thread (see :meth:`begin`); lane k > 0 has its own instances of the
    extractors that hold no state between frames; those that must see the
    frames in order on one instance (``ordered``: motion, CAMBI writing
    heatmaps) are shared and run in frame order.  :meth:`push` uses lane 0.
    """

    def __init__(self, fmt: FrameFormat, metrics: Sequence[str] = ("psnr", "ssim"),
                 models: Sequence[object] = (), features: bool = False, lanes: int = 1):
        self.fmt = fmt
        self.models = list(models)
        self.with_features = features
        self._instances: Dict[Key, FeatureExtractor] = {}
        self._metric_keys: List[Key] = []
        for m in metrics:
            if m not in EXTRACTOR_METRICS:
                raise ValueError(f"unknown metric {m!r}; known: "
                                 f"{', '.join(sorted(EXTRACTOR_METRICS))}")
            self._metric_keys.append(self._instance(EXTRACTOR_METRICS[m], {}))
        self._model_keys: List[List[Key]] = []
        for model in self.models:
            self._model_keys.append([self._instance(n, o) for n, o in model.extractors()])
        # --features: outputs not to show per instance (an ADM told to skip AIM,
        # as for the v0 models, has no real aim / adm3)
        self._hidden = {k: (("aim", "adm3") if dict(k[1]).get("adm_skip_aim") else ())
                        for k in self._instances}
        self._pending: Dict[int, Dict[Key, Dict[str, float]]] = {}
        self._pts: Dict[int, Optional[float]] = {}
        self._order: Deque[int] = deque()  # pushed indices not yet emitted
        self._columns: Dict[str, array] = {}  # per-key values, for pooling
        # indices fed to temporal extractors only -> outputs still to discard
        self._unscored: Dict[int, int] = {}
        self._temporal = [k for k, e in self._instances.items() if e.temporal]
        self._ordered = [k for k, e in self._instances.items() if e.ordered]
        self._lanes: List[Dict[Key, FeatureExtractor]] = [self._instances]
        for _ in range(1, max(1, int(lanes))):
            own = {}
            for key, ext in self._instances.items():
                if key not in self._ordered:
                    ext = get_extractor(key[0])(**dict(key[1]))
                    ext.setup(self.fmt)
                own[key] = ext
            self._lanes.append(own)
        # begin() numbers the frames; the ordered extractors run in that order
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._seq = 0
        self._next_temporal = 0
        self._failed = False
        self._out: List[dict] = []

    def _instance(self, name: str, options: Dict[str, object]) -> Key:
        key = _key(name, options)
        if key not in self._instances:
            ext = get_extractor(name)(**options)
            ext.setup(self.fmt)
            self._instances[key] = ext
        return key

    @property
    def extractors(self) -> Dict[Key, FeatureExtractor]:
        return dict(self._instances)

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    def push(self, index: int, pts: Optional[float], ref, dis, score: bool = True) -> List[dict]:
        """Feed one pair; returns the records completed by it (maybe none).

        ``score=False`` feeds the pair to the temporal extractors only (motion
        needs every frame, also those that ``--subsample`` leaves unscored):
        no record is made for it, and it costs nothing when no extractor is
        temporal."""
        ref, dis = _checked(self.fmt, ref, dis)  # a bad pair changes nothing
        self.work(self.begin(index, pts, score), 0, ref, dis)
        return self.collect()

    def begin(self, index: int, pts: Optional[float], score: bool = True):
        """Frames computed in parallel, step 1: register the pair ``index``, in
        frame order, from one thread.  Returns the ticket to give to
        :meth:`work` (None: nothing to compute, an unscored frame and no
        temporal extractor).  Then ``work(ticket, lane, ref, dis)`` on lane
        ``lane``'s thread (one thread per lane; the pair's planes must stay
        valid until it returns) -- or ``work(..., ordered=False)`` there and
        then :meth:`work_ordered` on one thread in frame order (the planes
        valid until that returns) -- and :meth:`collect` for the records
        completed so far, in frame order."""
        with self._lock:
            if score:
                self._pts[index] = pts
                self._order.append(index)
            elif self._temporal:
                self._unscored[index] = len(self._temporal)
            else:
                return None
            seq = self._seq
            self._seq += 1
        return seq, index, score

    def work(self, ticket, lane: int, ref, dis, ordered: bool = True) -> None:
        """Compute the pair of ``ticket`` (from :meth:`begin`) on ``lane``.

        ``ordered=False``: only the extractors that hold no state between
        frames; the caller then gives every ticket, in :meth:`begin`'s order
        and after its ``work`` has returned, to :meth:`work_ordered` on one
        thread.  Else a lane whose frame is ready before the frame ahead of it
        has passed the ordered extractors waits for it here (40-80 ms in a
        120-frame 1080p run on two lanes)."""
        if ticket is None:
            return
        seq, index, score = ticket
        exts = self._lanes[lane]
        got = []
        try:
            ref, dis = _checked(self.fmt, ref, dis)
            if score:
                for key, ext in exts.items():
                    if key not in self._ordered:
                        got.append((key, ext.extract(index, ref, dis)))
            if ordered:
                with self._turn:  # the ordered extractors: one frame after the other
                    while self._next_temporal != seq and not self._failed:
                        self._turn.wait()
                    if self._failed:
                        raise RuntimeError("scoring stopped: another frame failed")
                for key in (self._ordered if score else self._temporal):
                    got.append((key, exts[key].extract(index, ref, dis)))
        except BaseException:
            with self._turn:
                self._failed = True
                self._turn.notify_all()
            raise
        if ordered:
            with self._turn:
                self._next_temporal += 1
                self._turn.notify_all()
        self._commit(got)

    def work_ordered(self, ticket, ref, dis) -> None:
        """The ordered extractors (motion, CAMBI writing heat maps) of the pair
        of ``ticket``, on the caller's thread, after ``work(ticket, ...,
        ordered=False)`` has returned; every ticket in :meth:`begin`'s order."""
        if ticket is None:
            return
        seq, index, score = ticket
        ref, dis = _checked(self.fmt, ref, dis)
        exts = self._instances
        got = [(key, exts[key].extract(index, ref, dis))
               for key in (self._ordered if score else self._temporal)]
        with self._turn:
            self._next_temporal += 1
        self._commit(got)

    def _commit(self, got) -> None:
        with self._lock:
            for key, results in got:
                self._take(key, results)
            self._out.extend(self._drain())

    def collect(self) -> List[dict]:
        """The records completed since the last call, in frame order."""
        with self._lock:
            out, self._out = self._out, []
        return out

    def _take(self, key: Key, results) -> None:
        for i, vals in results:
            left = self._unscored.get(i)
            if left is not None:
                if left <= 1:
                    del self._unscored[i]
                else:
                    self._unscored[i] = left - 1
                continue
            self._pending.setdefault(i, {})[key] = vals

    def finish(self) -> List[dict]:
        """Flush temporal extractors; returns the remaining records (after
        every work() has returned)."""
        out = self.collect()
        for key, ext in self._instances.items():
            self._take(key, ext.flush())
        self._unscored.clear()
        out += self._drain()
        # frames that some extractor never reported (should not happen) are
        # emitted with what is known
        for i in sorted(self._pending):
            out.append(self._record(i, self._pending.pop(i)))
        self._order.clear()
        return out

    def _drain(self) -> List[dict]:
        out = []
        n = len(self._instances)
        while self._order and len(self._pending.get(self._order[0], ())) == n:
            i = self._order.popleft()
            out.append(self._record(i, self._pending.pop(i)))
        return out

    def _record(self, index: int, vals: Dict[Key, Dict[str, float]]) -> dict:
        rec = {"frame": index, "pts": self._pts.pop(index, None)}
        for key in self._metric_keys:
            rec.update(vals.get(key, {}))
        for model, keys in zip(self.models, self._model_keys):
            feats = {k: vals.get(k, {}) for k in keys}
            rec.update(model.predict(feats))
            if self.with_features:
                for k in keys:
                    hide = self._hidden[k]
                    for fname, v in vals.get(k, {}).items():
                        if fname not in hide:
                            rec.setdefault(fname, v)
        _collect(self._columns, rec)
        return rec

    def summary(self) -> Dict[str, Dict[str, float]]:
        return {k: pool(v) for k, v in self._columns.items()}

    @property
    def frames_scored(self) -> int:
        return max((len(v) for v in self._columns.values()), default=0)


_SKIP = ("frame", "pts", "output", "stream")


def _checked(fmt: FrameFormat, ref, dis):
    ref, dis = as_planes(ref), as_planes(dis)
    check_planes(fmt, ref, "reference")
    check_planes(fmt, dis, "distorted")
    return ref, dis


def _collect(columns: Dict[str, array], rec: dict) -> None:
    for k, v in rec.items():
        if k in _SKIP or isinstance(v, (str, bool)) or v is None:
            continue
        columns.setdefault(k, array("d")).append(float(v))


def needs_chroma(metrics: Sequence[str] = (), models: Sequence[object] = ()) -> bool:
    """Whether scoring ``metrics`` and ``models`` (as :class:`Scorer` takes
    them) reads any chroma plane; answered without importing the feature
    modules (nor Numba)."""
    names = [EXTRACTOR_METRICS[m] for m in metrics if m in EXTRACTOR_METRICS]
    for model in models:
        names += [n for n, _ in model.extractors()]
    return any(reads_chroma(n) for n in names)


def summarize(records: Iterable[dict]) -> Dict[str, Dict[str, float]]:
    """Pool every numeric key of the records except frame and pts."""
    cols: Dict[str, array] = {}
    for r in records:
        _collect(cols, r)
    return {k: pool(v) for k, v in cols.items()}


def score_pair(ref, dis, metrics: Sequence[str] = ("psnr", "ssim"), bitdepth: int = 8,
               chroma: Optional[str] = None, models: Sequence[object] = ()) -> dict:
    """Score one frame pair given as numpy planes; returns the frame record.

    ``ref`` and ``dis`` are a 2-D luma array or a sequence (Y, U, V).
    """
    ref, dis = as_planes(ref), as_planes(dis)
    h, w = ref[0].shape
    if chroma is None:
        chroma = _guess_chroma(ref)
    fmt = FrameFormat(w, h, chroma, bitdepth)
    s = Scorer(fmt, metrics, models)
    recs = s.push(0, None, ref, dis) + s.finish()
    return recs[0]


def _guess_chroma(planes) -> str:
    if len(planes) == 1:
        return "400"
    (h, w), (ch, cw) = planes[0].shape, planes[1].shape
    if (ch, cw) == (h, w):
        return "444"
    if ch == h:
        return "422"
    return "420"
