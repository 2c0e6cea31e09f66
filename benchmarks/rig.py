"""The cost of ``--camera-mask auto``: finding the camera rig of the four shared 8000×4000
Amsterdam panoramas (reduced decode + ``rig.estimate``), against decoding the same panoramas
whole (what ``anonymize`` does for every view anyway), measured in the same run. Also the estimate
alone on ``rig.MAX_VIEWS`` views (the four, each turned six ways: the cost does not depend on
the content).

Usage: python benchmarks/rig.py [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import numpy as np

from scanvan_sfm import rig
from scanvan_sfm.auto_mask import DECODE_WIDTH
from scanvan_sfm.images import read_image, read_reduced
from scanvan_sfm.runner import run_each

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    paths = sorted(SHARED.glob("ams_*.jpg"))

    start = time.perf_counter()
    run_each(paths, read_image, args.workers)
    whole = time.perf_counter() - start

    start = time.perf_counter()
    views = [o.value for o in run_each(paths, lambda p: read_reduced(p, DECODE_WIDTH), args.workers)]
    decoded = time.perf_counter() - start
    found = rig.estimate(views)
    total = time.perf_counter() - start
    print(f"{len(paths)} panoramas 8000×4000, {args.workers} threads: rig found in {total:.2f} s "
          f"(reduced decode {decoded:.2f} s, estimate {total - decoded:.2f} s); {found.share:.1%} of each image, "
          f"turned {found.turned}")
    print(f"baseline, decoding them whole: {whole:.2f} s; ratio rig / whole decode: {total / whole:.2f}")

    many = [np.roll(views[i % len(views)], 37 * i, axis=1) for i in range(rig.MAX_VIEWS)]
    start = time.perf_counter()
    with contextlib.suppress(rig.NoRig):  # the time is what counts here
        rig.estimate(many)
    print(f"estimate alone on {rig.MAX_VIEWS} views: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
