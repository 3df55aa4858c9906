"""The feature-extractor contract.

An extractor declares the feature names it provides (``provides``) and whether
it needs neighbouring frames (``temporal``).  It is set up once for a frame
format, then called once per frame pair, and flushed at the end of the stream.

Planes are 2-D numpy arrays (``uint8`` for 8-bit, ``uint16`` for 9 to 16-bit),
possibly non-contiguous views; ``ref`` and ``dis`` are tuples ``(Y,)`` or
``(Y, U, V)``.  Values are integer code values at the format's own bit depth.

``extract`` returns a list of ``(frame_index, {feature: value})`` pairs that
are complete.  A spatial extractor returns its own frame at once; a temporal
one (motion) may return an earlier frame, and gives the rest from ``flush``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

FeatureValues = Dict[str, float]
Result = List[Tuple[int, FeatureValues]]

CHROMA_SUBSAMPLING = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "400": None}


@dataclass(frozen=True)
class FrameFormat:
    """Width and height of the luma plane, chroma layout and bit depth."""

    width: int
    height: int
    chroma: str = "420"  # "420", "422", "444" or "400" (luma only)
    bitdepth: int = 8

    def __post_init__(self):
        if self.chroma not in CHROMA_SUBSAMPLING:
            raise ValueError(f"unknown chroma layout {self.chroma!r}")
        if not 8 <= self.bitdepth <= 16:
            raise ValueError(f"bit depth {self.bitdepth} outside 8..16")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"bad frame size {self.width}x{self.height}")

    @property
    def dtype(self):
        return np.uint8 if self.bitdepth == 8 else np.uint16

    @property
    def peak(self) -> int:
        return (1 << self.bitdepth) - 1

    def plane_shapes(self) -> List[Tuple[int, int]]:
        """(rows, cols) of each plane: Y, then U and V unless luma only."""
        shapes = [(self.height, self.width)]
        sub = CHROMA_SUBSAMPLING[self.chroma]
        if sub is not None:
            sx, sy = sub
            cw = -(-self.width >> sx) if sx else self.width
            ch = -(-self.height >> sy) if sy else self.height
            shapes += [(ch, cw), (ch, cw)]
        return shapes

    def plane_weights(self) -> List[float]:
        """Each plane's share of all samples (4/6, 1/6, 1/6 for 4:2:0): the
        weights of ffmpeg's combined PSNR and SSIM."""
        sizes = [r * c for r, c in self.plane_shapes()]
        total = float(sum(sizes))
        return [s / total for s in sizes]

    @property
    def nplanes(self) -> int:
        return 1 if self.chroma == "400" else 3


class FeatureExtractor:
    """Base class; subclasses set ``name``, ``provides`` and implement ``extract``."""

    name: str = ""
    provides: Tuple[str, ...] = ()
    temporal: bool = False
    #: options accepted with their defaults; unknown options are an error
    default_options: Dict[str, object] = {}
    #: the smallest frame (width, height) on which a run calls every kernel
    #: (and signature) that real frames call: the warm-up's synthetic pair
    #: (vqa_core.warmup) is the largest of the run's extractors'
    warm_size: Tuple[int, int] = (512, 384)
    #: reads the chroma planes (False: only ``ref[0]``, ``dis[0]``); must
    #: match :data:`registry.LUMA_ONLY`, which answers without importing
    #: the extractor's module
    reads_chroma: bool = True

    def __init__(self, **options):
        unknown = set(options) - set(self.default_options)
        if unknown:
            raise ValueError(
                f"feature {self.name!r} has no option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.default_options)) or 'none'}")
        self.options = {**self.default_options, **options}
        self.fmt: FrameFormat | None = None

    def setup(self, fmt: FrameFormat) -> None:
        self.fmt = fmt

    def extract(self, index: int, ref: Sequence[np.ndarray],
                dis: Sequence[np.ndarray]) -> Result:
        raise NotImplementedError

    def flush(self) -> Result:
        return []

    def warm_rare(self, ref: Sequence[np.ndarray], dis: Sequence[np.ndarray]) -> None:
        """For the warm-up (vqa_core.warmup), after a few frames of ``ref``
        and ``dis``: run the branches that such random frames miss, so that a
        real run meeting them compiles nothing (CAMBI's binned pooling).
        Nothing by default."""

    @property
    def ordered(self) -> bool:
        """Must see the frames one after the other, on one instance (state
        kept between frames, or files written): when frames are computed in
        parallel (``Scorer(lanes=...)``) such an extractor is not copied per
        lane and runs in frame order."""
        return self.temporal

    def __repr__(self):
        return f"{type(self).__name__}({self.options})"


def as_planes(x, fmt: FrameFormat | None = None) -> Tuple[np.ndarray, ...]:
    """Accept a single 2-D array (luma) or a sequence of planes."""
    if isinstance(x, np.ndarray) and x.ndim == 2:
        return (x,)
    return tuple(x)


def check_planes(fmt: FrameFormat, planes: Iterable[np.ndarray], what: str) -> None:
    for i, (p, shape) in enumerate(zip(planes, fmt.plane_shapes())):
        if p.shape != shape:
            raise ValueError(f"{what} plane {i} has shape {p.shape}, expected {shape}")
