"""Compare two files from Python: python3 examples/compare_files.py REF DIS"""
import sys

import vqa_filter

session = vqa_filter.compare(sys.argv[1], sys.argv[2], metrics=["psnr", "ssim"])
for rec in session:
    print(rec["frame"], round(rec["psnr_y"], 3), round(rec["ssim"], 5))
print(session.result.summary)
