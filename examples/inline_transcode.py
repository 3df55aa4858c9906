"""Score an inline x264 transcode of a generated 2-second sample.

    python3 examples/inline_transcode.py
"""
import os
import subprocess
import sys
import tempfile

import imageio_ffmpeg

from vqa_filter.cli import main

tmp = tempfile.mkdtemp(prefix="vqa-example-")
src = os.path.join(tmp, "source.y4m")
subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                "mandelbrot=size=640x360:rate=25,trim=duration=2", "-pix_fmt", "yuv420p", src],
               check=True)
log = os.path.join(tmp, "scores.jsonl")
rc = main(["--metrics", "vmaf,psnr,ssim", "--log", log, "ffmpeg", "-hide_banner", "-loglevel", "warning",
           "-y", "-i", src, "-c:v", "libx264", "-preset", "fast", "-crf", "28",
           os.path.join(tmp, "out.mp4")])
print(f"per-frame scores in {log}:")
with open(log) as f:
    for line in list(f)[:3]:
        print(" ", line.rstrip())
sys.exit(rc)
