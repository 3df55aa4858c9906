"""Paired frames out of an ffmpeg pipe, through the C shim.

The pipe carries a YUV4MPEG2 stream whose frames are the distorted frame
stacked on top of the reference frame, which starts at an even row (see
``graph.ref_row``).  The shim's reader thread fills a ring of aligned slots; for each
slot we keep numpy views of the six planes (distorted Y, U, V; reference Y,
U, V), made once, so a frame costs no allocation and no copy in Python.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import numpy as np

from vqa_core import FrameFormat

from ._shim import ffi, lib
from .errors import StreamError
from .pixfmt import frame_bytes, parse_y4m_header

BLOCK, DROP = lib.VQA_BLOCK, lib.VQA_DROP


@dataclass
class Pair:
    index: int  # frame number in the stream (counting dropped frames)
    ref: Tuple[np.ndarray, ...]
    dis: Tuple[np.ndarray, ...]


@dataclass
class StreamStats:
    frames_read: int
    frames_dropped: int
    frames_consumed: int
    bytes_read: int
    truncated_bytes: int
    filled: int
    nslots: int
    status: int
    err: int


def read_header(fd: int, stop=lambda: False, limit: int = 4096) -> bytes:
    """Read the y4m stream header line from fd (blocking, a byte at a time)."""
    buf = bytearray()
    while len(buf) < limit:
        try:
            b = os.read(fd, 1)
        except InterruptedError:
            continue
        if not b:
            return bytes(buf)
        if b == b"\n":
            return bytes(buf)
        buf += b
    raise StreamError("frame stream header too long: not a YUV4MPEG2 stream")


class PairStream:
    """Iterate over frame pairs read from ``fd`` (y4m, vstacked dis/ref).

    ``size``: the (width, height) of each frame; the reference starts at row
    ``height`` rounded up to even.  None: each frame is half the stacked height.
    ``policy``: BLOCK (nothing lost) or DROP (never stall the writer).
    """

    def __init__(self, fd: int, size: Optional[Tuple[int, int]] = None, nslots: int = 8,
                 policy: int = BLOCK, header: Optional[bytes] = None):
        self.fd = fd
        if header is None:
            header = read_header(fd)
        if not header:
            raise EOFError("frame stream ended before its header")
        try:
            w, h2, chroma, depth, fps = parse_y4m_header(header)
        except ValueError as e:
            raise StreamError(f"bad frame stream from ffmpeg: {e}") from None
        self.fps = fps
        self.stacked = FrameFormat(w, h2, chroma, depth)
        if size is None:  # vstack of two frames of unknown size
            tw, th = w, h2 // 2
            y2 = th
        else:
            tw, th = size
            y2 = th + (th & 1)
        if tw != w or h2 != y2 + th:
            raise StreamError(f"frame stream is {w}x{h2}, expected a {tw}x{th} pair stacked "
                              f"at row {y2}")
        self.format = FrameFormat(tw, th, chroma, depth)
        self.frame_bytes = frame_bytes(self.stacked)
        self._ring = lib.vqa_ring_open(fd, self.frame_bytes, nslots, policy, 1)
        if self._ring == ffi.NULL:
            raise MemoryError(f"cannot allocate {nslots} frame slots of {self.frame_bytes} bytes")
        self._views: List[Tuple[Tuple[np.ndarray, ...], Tuple[np.ndarray, ...]]] = []
        dt = np.dtype(np.uint8) if depth == 8 else np.dtype("<u2")
        stacked_shapes = self.stacked.plane_shapes()
        true_shapes = self.format.plane_shapes()
        starts = [y2] + [(y2 >> 1) if chroma == "420" else y2] * (len(true_shapes) - 1)
        for i in range(nslots):
            buf = ffi.buffer(lib.vqa_ring_slot(self._ring, i), self.frame_bytes)
            flat = np.frombuffer(buf, dtype=dt)
            dis, ref, off = [], [], 0
            for (sh, sw), (th_, tw_), r0 in zip(stacked_shapes, true_shapes, starts):
                plane = flat[off: off + sh * sw].reshape(sh, sw)
                off += sh * sw
                dis.append(plane[:th_, :tw_])
                ref.append(plane[r0: r0 + th_, :tw_])
            self._views.append((tuple(ref), tuple(dis)))
        self._slot = ffi.new("int *")
        self._index = ffi.new("int64_t *")
        self._held = 0
        self.end_status: Optional[int] = None

    def next(self, timeout_ms: int = 100) -> Optional[Pair]:
        """The next pair, or None on timeout; the pair returned before is
        released.  Raises StopIteration at a clean end and StreamError for a
        truncated or unreadable stream."""
        self.release_all()
        return self.acquire(timeout_ms)

    def acquire(self, timeout_ms: int = 100) -> Optional[Pair]:
        """As next(), but pairs stay valid until release()d: several can be
        held at once (scored in parallel)."""
        r = lib.vqa_ring_acquire(self._ring, timeout_ms, self._slot, self._index)
        if r == lib.VQA_FRAME:
            self._held += 1
            ref, dis = self._views[self._slot[0]]
            return Pair(int(self._index[0]), ref, dis)
        if r == lib.VQA_TIMEOUT:
            return None
        self.end_status = r
        if r == lib.VQA_EOS:
            raise StopIteration
        st = self.stats()
        if r == lib.VQA_TRUNCATED:
            raise StreamError(f"frame stream truncated: the last frame had {st.truncated_bytes} of "
                              f"{self.frame_bytes} bytes")
        if r == lib.VQA_BADHEADER:
            raise StreamError("frame stream out of sync: bad y4m frame header")
        why = os.strerror(st.err) if st.err else "unknown error"
        raise StreamError(f"reading the frame stream failed: {why}")

    def release(self) -> None:
        """Give back the oldest pair acquired and not yet released."""
        if self._held:
            lib.vqa_ring_release(self._ring)
            self._held -= 1

    def release_all(self) -> None:
        while self._held:
            self.release()

    def __iter__(self) -> Iterator[Pair]:
        while True:
            try:
                p = self.next(-1)
            except StopIteration:
                return
            if p is not None:
                yield p

    def stats(self) -> StreamStats:
        s = ffi.new("vqa_stats *")
        lib.vqa_ring_stats(self._ring, s)
        return StreamStats(s.frames_read, s.frames_dropped, s.frames_consumed, s.bytes_read,
                           s.truncated_bytes, s.filled, s.nslots, s.status, s.err)

    def close(self) -> None:
        if self._ring is not None and self._ring != ffi.NULL:
            self._views = []
            lib.vqa_ring_close(self._ring)
            self._ring = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
