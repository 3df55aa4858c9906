"""vqa_core: video quality metrics on numpy planes, with no ffmpeg needed.

>>> import numpy as np, vqa_core
>>> ref = np.random.default_rng(0).integers(0, 256, (144, 176), dtype=np.uint8)
>>> rec = vqa_core.score_pair(ref, ref, metrics=["psnr"])
"""
from .features.base import FeatureExtractor, FrameFormat
from .engine import Scorer, score_pair, summarize
from .pooling import pool

__version__ = "0.1.0"

__all__ = ["FeatureExtractor", "FrameFormat", "Scorer", "score_pair", "summarize",
           "pool", "__version__"]
