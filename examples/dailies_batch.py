"""A dailies-style batch: several encodes of one source, scored while they
encode, a table of results, and failures reported without stopping the batch.

    python3 examples/dailies_batch.py [--keep]

Each job is ``vqa_filter.transcode(ffmpeg_args, ...)``: a session that runs
the ffmpeg command and scores it inline.  ``.run()`` returns a Result; a job
that fails raises a ``VqaError`` subclass that carries the same exit status
the ``vqa`` command would, and ``e.result`` (what was scored before it):

- ``QualityGateFailed`` (exit status 3): the encode finished, but its pooled
  score is below ``fail_below`` (here VMAF mean 70);
- ``FfmpegFailed``: ffmpeg itself failed (its own exit status);
- any other ``VqaError``: bad input, vqa failure.

One job below is broken on purpose (an x264 profile that does not exist).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import imageio_ffmpeg

import vqa_filter
from vqa_filter.errors import FfmpegFailed, QualityGateFailed, VqaError

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
GATE = 70.0  # VMAF mean below this fails a job's quality gate

#: (name, encoder arguments, broken on purpose)
JOBS = [
    ("x264 crf 18", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"], False),
    ("x264 crf 28", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "28"], False),
    ("x264 crf 45", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "45"], False),
    ("x265 crf 30", ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "30",
                     "-x265-params", "log-level=error"], False),
    ("x264 broken", ["-c:v", "libx264", "-profile:v", "no-such-profile"], True),
]


def make_source(folder: str) -> str:
    """Two seconds of 640x360 detail and motion, generated with lavfi."""
    src = os.path.join(folder, "source.y4m")
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
                    "mandelbrot=size=640x360:rate=25,trim=duration=2,"
                    "noise=alls=6:allf=t", "-pix_fmt", "yuv420p", src], check=True)
    return src


def run_job(src: str, folder: str, name: str, enc_args) -> dict:
    out = os.path.join(folder, name.replace(" ", "_") + ".mp4")
    args = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", src, *enc_args, out]
    row = {"job": name, "status": "ok", "frames": 0, "vmaf": None, "vmaf_min": None,
           "psnr_y": None, "kbytes": None, "note": ""}
    t0 = time.monotonic()
    session = vqa_filter.transcode(args, metrics=["vmaf", "psnr"], fail_below=GATE,
                                   report=os.path.join(folder, name.replace(" ", "_") + ".json"))
    try:
        result = session.run()
    except QualityGateFailed as e:
        result = e.result
        row["status"], row["note"] = "BELOW GATE", str(e)
    except FfmpegFailed as e:
        result = e.result
        row["status"], row["note"] = f"FAILED ({e.exit_code})", str(e)
    except VqaError as e:  # bad input, vqa failure: report it and go on
        result = getattr(e, "result", None)
        row["status"], row["note"] = "FAILED", str(e)
    row["seconds"] = time.monotonic() - t0
    if result is not None:
        s = result.summary
        row["frames"] = result.report.get("frames", 0)
        row["vmaf"] = s.get("vmaf", {}).get("mean")
        row["vmaf_min"] = s.get("vmaf", {}).get("min")
        row["psnr_y"] = s.get("psnr_y", {}).get("mean")
    if os.path.exists(out) and row["status"] != "FAILED":
        row["kbytes"] = os.path.getsize(out) / 1024
    return row


def fmt(v, spec):
    return "-" if v is None or v != v else format(v, spec)


def main() -> int:
    folder = tempfile.mkdtemp(prefix="vqa-dailies-")
    try:
        src = make_source(folder)
        rows = []
        for name, enc_args, broken in JOBS:
            row = run_job(src, folder, name, enc_args)
            row["expected_failure"] = broken
            rows.append(row)
            print(f"  {name:<14} {row['status']}", file=sys.stderr)
        print(f"\n{'job':<14}{'status':<14}{'frames':>7}{'vmaf':>8}{'min':>8}{'psnr_y':>8}"
              f"{'kB':>8}{'s':>6}")
        for r in rows:
            print(f"{r['job']:<14}{r['status']:<14}{r['frames']:>7}{fmt(r['vmaf'], '.2f'):>8}"
                  f"{fmt(r['vmaf_min'], '.2f'):>8}{fmt(r['psnr_y'], '.2f'):>8}"
                  f"{fmt(r['kbytes'], '.0f'):>8}{r['seconds']:>6.1f}")
        for r in rows:
            if r["note"]:
                print(f"  {r['job']}: {r['note']}")
        unexpected = [r for r in rows if r["status"].startswith("FAILED") and not r["expected_failure"]]
        print(f"\n{len(rows)} jobs, {sum(r['status'] == 'ok' for r in rows)} passed the gate "
              f"(VMAF mean >= {GATE:g}), {sum(r['status'] != 'ok' for r in rows)} did not")
        return 1 if unexpected else 0
    finally:
        if "--keep" in sys.argv:
            print(f"files kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
