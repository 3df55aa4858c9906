"""Compare two files from Python, with VMAF and PSNR.

    python3 examples/compare_files.py REFERENCE DISTORTED
    python3 examples/compare_files.py            # makes a sample pair first
"""
import os
import subprocess
import sys
import tempfile

import imageio_ffmpeg

import vqa_filter


def sample_pair():
    d = tempfile.mkdtemp(prefix="vqa-example-")
    ref, dis = os.path.join(d, "ref.y4m"), os.path.join(d, "dis.mp4")
    ff = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ff, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=1",
                    "-pix_fmt", "yuv420p", ref], check=True)
    subprocess.run([ff, "-v", "error", "-i", ref, "-c:v", "libx264", "-crf", "32", dis], check=True)
    return ref, dis


if len(sys.argv) == 3:
    ref, dis = sys.argv[1], sys.argv[2]
elif len(sys.argv) == 1:
    ref, dis = sample_pair()
else:
    sys.exit(__doc__)

try:
    session = vqa_filter.compare(ref, dis, metrics=["vmaf", "psnr"])
    for rec in session:
        print(rec["frame"], f"vmaf {rec['vmaf']:.2f}", f"psnr_y {rec['psnr_y']:.2f}")
except vqa_filter.VqaError as e:  # a missing file, not a video, ffmpeg failing...
    sys.exit(f"vqa: {e}")
print({k: round(v["mean"], 3) for k, v in session.result.summary.items()})
