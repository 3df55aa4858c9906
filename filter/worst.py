"""The worst N frames of a run, kept as small RGB crops for the HTML report.

Fed from the scoring loop with numpy views into the frame ring (which will be
overwritten): only what is kept is copied, and only a crop around the largest
local error plus a small thumbnail, never a whole frame.

Two ways to feed it, both cheap for a frame that does not enter the set:

* ``offer(index, score, ref, dis, fmt)`` when the score is known while the
  planes are still valid: one comparison with the current threshold, and only
  a frame that enters pays for locating and copying its crop.
* ``feed(index, ref, dis, fmt, records)`` with what ``Scorer.push`` returned
  for that pair.  Temporal features (motion, so VMAF) complete a frame's record
  a few frames later, when its planes are gone; ``feed`` then keeps a small
  crop of the frame for up to ``lag`` frames (a coarse search on a strided
  luma view plus a copy of two crops: about 1 ms a frame at 1080p or 4K,
  next to the tens of milliseconds the temporal model itself costs) and
  decides when the record arrives.  Call ``finish(records)`` with what
  ``Scorer.finish()`` returned.

Crops are converted to 8-bit RGB (BT.709, limited range, any depth 8..16)
only when ``frames()`` is called.  One keeper per scored stream; it is not
thread-safe (feed it from one thread, read it after that thread ended).
"""
from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

#: which record key ranks frames when none is given: the first one present
PRIMARY_KEYS = ("vmaf", "ms_ssim", "ssim", "psnr_avg", "psnr_y", "ssim_y")


def primary_metric(keys: Iterable[str]) -> Optional[str]:
    """The record key that ranks frames: vmaf, else ms_ssim, ssim, psnr_avg, psnr_y."""
    keys = list(keys)
    for k in PRIMARY_KEYS:
        if k in keys:
            return k
    return None


@dataclass
class WorstFrame:
    """One kept frame.  ``ref``/``dis``/``diff`` are HxWx3 uint8 RGB crops,
    ``thumb`` the whole distorted frame, small; ``box`` = (x, y, w, h) of the
    crop in the frame's luma coordinates."""

    index: int
    score: float
    pts: Optional[float]
    box: Tuple[int, int, int, int]
    frame_size: Tuple[int, int]
    ref: np.ndarray
    dis: np.ndarray
    diff: np.ndarray
    thumb: np.ndarray
    record: dict = field(default_factory=dict)


class _Kept:
    __slots__ = ("index", "score", "pts", "box", "fmt", "ref", "dis", "thumb", "record")

    def __init__(self, index, box, fmt, ref, dis, thumb):
        self.index = index
        self.score = math.nan
        self.pts = None
        self.box = box
        self.fmt = fmt
        self.ref = ref
        self.dis = dis
        self.thumb = thumb
        self.record = {}


class WorstFrames:
    """Keeps the ``n`` frames with the worst ``key`` score.

    ``higher_is_better``: True for vmaf, psnr, ssim (the worst is the lowest).
    ``crop``: (width, height) of the crop in luma pixels (default: 384 wide, the
    frame's aspect ratio, never larger than the frame).  ``thumb_width``: width
    of the whole-frame thumbnail.  ``lag``: how many frames ``feed`` waits for
    a delayed record.  ``label``: the stream's label, shown in the report.
    """

    def __init__(self, n: int = 6, key: Optional[str] = None, higher_is_better: bool = True,
                 crop: Optional[Tuple[int, int]] = None, thumb_width: int = 192,
                 lag: int = 16, label: Optional[str] = None):
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.key = key
        self.higher_is_better = higher_is_better
        self.crop = crop
        self.thumb_width = thumb_width
        self.lag = lag
        self.label = label
        # heap of (badness, seq, _Kept): the root is the least bad kept frame
        self._heap: List[Tuple[float, int, _Kept]] = []
        self._seq = 0
        self._held: "OrderedDict[int, _Kept]" = OrderedDict()
        self.offered = 0
        self.missed = 0  # records that came later than ``lag`` frames

    # ------------------------------------------------------------ ranking
    def _badness(self, score: float) -> float:
        return -score if self.higher_is_better else score

    @property
    def threshold(self) -> float:
        """A score must be worse than this to enter (±inf while not full)."""
        if len(self._heap) < self.n:
            return math.inf if self.higher_is_better else -math.inf
        b = self._heap[0][0]
        return -b if self.higher_is_better else b

    def would_keep(self, score) -> bool:
        if score is None:
            return False
        try:
            s = float(score)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(s):
            return False
        if len(self._heap) < self.n:
            return True
        return self._badness(s) > self._heap[0][0]

    def _insert(self, kept: _Kept, score: float, record: Optional[dict]) -> None:
        kept.score = float(score)
        if record:
            kept.pts = record.get("pts")
            kept.record = {k: v for k, v in record.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._seq += 1
        item = (self._badness(kept.score), self._seq, kept)
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, item)
        else:
            heapq.heapreplace(self._heap, item)

    # ------------------------------------------------------------ feeding
    def offer(self, index: int, score, ref: Sequence[np.ndarray], dis: Sequence[np.ndarray],
              fmt, record: Optional[dict] = None) -> bool:
        """The score of frame ``index`` is known and its planes are valid now.
        Returns True when the frame was kept."""
        self.offered += 1
        if not self.would_keep(score):
            return False
        self._insert(self._capture(index, ref, dis, fmt), score, record)
        return True

    def feed(self, index: int, ref: Sequence[np.ndarray], dis: Sequence[np.ndarray], fmt,
             records: Iterable[dict] = ()) -> None:
        """One scored pair and the records ``Scorer.push`` returned for it."""
        own = None
        for rec in records:
            i = rec.get("frame")
            if i == index:
                own = rec
            else:
                self._resolve(rec)
        if own is not None:
            self.offer(index, self._score_of(own), ref, dis, fmt, own)
            return
        # the record comes later: keep a crop until it arrives
        if self.lag <= 0:
            return
        self._held[index] = self._capture(index, ref, dis, fmt)
        while len(self._held) > self.lag:
            self._held.popitem(last=False)

    def resolve(self, records: Iterable[dict]) -> None:
        """Records completed by a push whose own frame was not scored
        (``--subsample`` feeding motion): only earlier held frames can match."""
        for rec in records:
            self._resolve(rec)

    def finish(self, records: Iterable[dict] = ()) -> None:
        """Records from ``Scorer.finish()``; forgets frames still waiting."""
        for rec in records:
            self._resolve(rec)
        self._held.clear()

    def _resolve(self, rec: dict) -> None:
        i = rec.get("frame")
        kept = self._held.pop(i, None)
        if kept is None:
            if i is not None and self.would_keep(self._score_of(rec)):
                self.missed += 1
            return
        self.offered += 1
        s = self._score_of(rec)
        if self.would_keep(s):
            self._insert(kept, s, rec)

    def _score_of(self, rec: dict):
        if self.key is None:
            self.key = primary_metric(rec)
        return rec.get(self.key) if self.key else None

    # ------------------------------------------------------------ capture
    def _crop_size(self, fmt) -> Tuple[int, int]:
        W, H = fmt.width, fmt.height
        if self.crop:
            cw, ch = self.crop
        else:
            cw = 384
            ch = max(2, round(cw * H / W))
        return min(W, max(2, cw)), min(H, max(2, ch))

    def _capture(self, index, ref, dis, fmt) -> _Kept:
        W = fmt.width
        cw, ch = self._crop_size(fmt)
        x, y = locate_worst(ref[0], dis[0], cw, ch)
        sx, sy = _subsampling(fmt)
        # align to the chroma grid
        x -= x % (1 << sx)
        y -= y % (1 << sy)
        rc = [ref[0][y:y + ch, x:x + cw].copy()]
        dc = [dis[0][y:y + ch, x:x + cw].copy()]
        if len(ref) >= 3 and fmt.chroma != "400":
            cx, cy = x >> sx, y >> sy
            cwc, chc = -(-cw >> sx), -(-ch >> sy)
            for p in (1, 2):
                rc.append(ref[p][cy:cy + chc, cx:cx + cwc].copy())
                dc.append(dis[p][cy:cy + chc, cx:cx + cwc].copy())
        step = max(1, -(-W // self.thumb_width))
        if step > 1:  # a multiple of the chroma subsampling, so chroma rows line up
            m = max(1 << sx, 1 << sy)
            step = -(-step // m) * m
        thumb = [dis[0][::step, ::step].copy()]
        if len(dis) >= 3 and fmt.chroma != "400":
            tx, ty = max(1, step >> sx), max(1, step >> sy)
            thumb += [dis[1][::ty, ::tx].copy(), dis[2][::ty, ::tx].copy()]
        return _Kept(index, (x, y, rc[0].shape[1], rc[0].shape[0]), fmt, rc, dc, thumb)

    # ------------------------------------------------------------ output
    def frames(self) -> List[WorstFrame]:
        """The kept frames, worst first, with RGB crops."""
        out = []
        for _, _, k in sorted(self._heap, key=lambda t: (-t[0], t[2].index)):
            depth = k.fmt.bitdepth
            ref_rgb = planes_to_rgb(k.ref, depth)
            dis_rgb = planes_to_rgb(k.dis, depth)
            out.append(WorstFrame(
                index=k.index, score=k.score, pts=k.pts, box=k.box,
                frame_size=(k.fmt.width, k.fmt.height), ref=ref_rgb, dis=dis_rgb,
                diff=diff_heatmap(k.ref[0], k.dis[0], depth),
                thumb=planes_to_rgb(k.thumb, depth), record=k.record))
        return out

    def __len__(self) -> int:
        return len(self._heap)


# ---------------------------------------------------------------- helpers

def _subsampling(fmt) -> Tuple[int, int]:
    return {"420": (1, 1), "422": (1, 0), "444": (0, 0), "400": (0, 0)}.get(fmt.chroma, (1, 1))


def locate_worst(ref_y: np.ndarray, dis_y: np.ndarray, cw: int, ch: int) -> Tuple[int, int]:
    """Top-left (x, y) of the cw x ch window with the largest summed absolute
    luma error, to a quarter of the window: found on a strided view (about
    256 samples across) summed in tiles, so that it costs little even at 4K."""
    H, W = ref_y.shape
    if cw >= W and ch >= H:
        return 0, 0
    step = max(1, min(W, H) // 256)
    a = ref_y[::step, ::step].astype(np.int32)
    d = np.abs(a - dis_y[::step, ::step], out=a)
    h, w = d.shape
    bw, bh = max(1, min(w, cw // step)), max(1, min(h, ch // step))
    tw, th = max(1, bw // 4), max(1, bh // 4)
    gh, gw = h // th, w // tw
    g = d[:gh * th, :gw * tw].reshape(gh, th, gw, tw).sum(axis=(1, 3), dtype=np.int64)
    nw, nh = max(1, min(gw, bw // tw)), max(1, min(gh, bh // th))
    ii = np.zeros((gh + 1, gw + 1), np.int64)
    ii[1:, 1:] = g.cumsum(0).cumsum(1)
    sums = ii[nh:, nw:] - ii[:-nh, nw:] - ii[nh:, :-nw] + ii[:-nh, :-nw]
    r, c = np.unravel_index(int(np.argmax(sums)), sums.shape)
    x = min(int(c) * tw * step, W - cw) if cw < W else 0
    y = min(int(r) * th * step, H - ch) if ch < H else 0
    return max(0, x), max(0, y)


def planes_to_rgb(planes: Sequence[np.ndarray], bitdepth: int) -> np.ndarray:
    """Y'CbCr planes (BT.709, limited range, 8..16 bits; chroma at any
    subsampling, upsampled by repetition) to an HxWx3 uint8 RGB image.  A
    single plane gives grey."""
    scale = float(1 << (bitdepth - 8))
    y = planes[0].astype(np.float32) / scale
    H, W = y.shape
    yn = (y - 16.0) / 219.0
    if len(planes) < 3:
        g = np.clip(yn * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    chroma = []
    for p in planes[1:3]:
        c = p.astype(np.float32) / scale
        ry, rx = -(-H // c.shape[0]), -(-W // c.shape[1])
        if ry > 1 or rx > 1:
            c = np.repeat(np.repeat(c, ry, axis=0), rx, axis=1)
        chroma.append((c[:H, :W] - 128.0) / 224.0)
    pb, pr = chroma
    r = yn + 1.5748 * pr
    g = yn - 0.187324 * pb - 0.468124 * pr
    b = yn + 1.8556 * pb
    rgb = np.stack([r, g, b], axis=2)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def diff_heatmap(ref_y: np.ndarray, dis_y: np.ndarray, bitdepth: int, gain: float = 4.0) -> np.ndarray:
    """|ref - dis| of luma, in 8-bit steps times ``gain``, as a black-red-
    yellow-white heat map (the same scale for every frame, so crops compare)."""
    d = np.abs(ref_y.astype(np.float32) - dis_y.astype(np.float32)) / float(1 << (bitdepth - 8))
    t = np.clip(d * gain / 255.0, 0.0, 1.0)
    r = np.clip(t * 3.0, 0, 1)
    g = np.clip(t * 3.0 - 1.0, 0, 1)
    b = np.clip(t * 3.0 - 2.0, 0, 1)
    return (np.stack([r, g, b], axis=2) * 255.0 + 0.5).astype(np.uint8)
