"""vqa_core on numpy arrays, no ffmpeg involved."""
import numpy as np

import vqa_core

rng = np.random.default_rng(0)
ref = rng.integers(0, 256, (240, 320), dtype=np.uint8)
dis = np.clip(ref.astype(int) + rng.integers(-3, 4, ref.shape), 0, 255).astype(np.uint8)
print(vqa_core.score_pair(ref, dis, metrics=["psnr", "ssim"]))
