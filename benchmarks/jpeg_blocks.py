"""Writing an anonymized panorama as JPEG: block by block from its source against today's whole re-encode.

Inputs: the shared 8000×4000 Amsterdam panoramas (progressive JPEG, 4:2:0) or the given images
(e.g. the baseline Ricoh panoramas of ../shared/fixtures/openmvg/360_flat_gps), each filled
(``fill``, fast mode) in person- and car-sized boxes along the street band covering the chosen share.

Baseline, measured in the same run: decode the source with Pillow + encode the filled image whole
with Pillow at quality 95 with its metadata (the path before block-wise writing). Block-wise: the
source read (``jpeg_blocks.read_source``: a baseline scan indexed by MCU, any other source's DCT
coefficients read), then ``jpeg_blocks.write`` of the
filled pixels; and a second image from the same source (the camera-blurred one a view also
publishes), which reads nothing again. Also printed: the Pillow encode alone, which is what the
pipeline paid per image before (it decodes the source anyway), the file sizes and the share of
MCUs re-encoded.
Median of 3 after one untimed warm-up.

Usage: python benchmarks/jpeg_blocks.py [--share 0.08] [images ...]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from scanvan_sfm import jpeg_blocks
from scanvan_sfm.fill import fill
from scanvan_sfm.images import read_image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def street_mask(width: int, height: int, share: float) -> np.ndarray:
    """Alternating person- and car-sized boxes in the band y ≈ 40–65 % until ``share`` is covered."""
    rng = np.random.default_rng(5)
    mask = np.zeros((height, width), bool)
    tall = True
    while mask.mean() < share:
        w, h = (rng.uniform(0.01, 0.02) * width, rng.uniform(0.05, 0.1) * height) if tall else \
            (rng.uniform(0.03, 0.06) * width, rng.uniform(0.03, 0.05) * height)
        x, y = int(rng.uniform(0, width - w)), int(rng.uniform(0.4, 0.65) * height)
        mask[y:y + int(h), x:x + int(w)] = True
        tall = not tall
    return mask


def median_seconds(run) -> float:
    run()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


def pillow_encode(pixels: np.ndarray, metadata: dict) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, **metadata)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", nargs="*", type=Path, default=sorted(SHARED.glob("ams_*.jpg")))
    parser.add_argument("--share", type=float, default=0.08, help="masked share of each panorama")
    args = parser.parse_args()
    print(f"{len(args.images)} panoramas, {args.share:.0%} masked in street-band boxes, {os.cpu_count()} cores; "
          "seconds are medians of 3")
    print(f"{'image':14} {'decode+encode':>13} {'block-wise':>10} {'ratio':>6} {'2nd image':>9} {'encode only':>11} "
          f"{'source MB':>9} {'whole MB':>8} {'blocks MB':>9} {'re-encoded':>10}")
    totals = np.zeros(4)
    for path in args.images:
        picture = read_image(path)
        height, width = picture.pixels.shape[:2]
        filled = fill(picture.pixels, street_mask(width, height, args.share), "fast", wrap=True)
        baseline = median_seconds(lambda: pillow_encode(np.asarray(Image.open(path)), picture.metadata))  # noqa: B023
        blockwise = median_seconds(lambda: jpeg_blocks.write(jpeg_blocks.read_source(path), picture.pixels,  # noqa: B023
                                                             filled, picture.metadata))  # noqa: B023
        source = jpeg_blocks.read_source(path)
        second = median_seconds(lambda: jpeg_blocks.write(source, picture.pixels, filled, picture.metadata))  # noqa: B023
        encode = median_seconds(lambda: pillow_encode(filled, picture.metadata))  # noqa: B023
        written = jpeg_blocks.write(source, picture.pixels, filled, picture.metadata)
        whole = pillow_encode(filled, picture.metadata)
        totals += baseline, blockwise, second, encode
        print(f"{path.name[-10:-4]:14} {baseline:13.3f} {blockwise:10.3f} {baseline / blockwise:5.2f}× {second:9.3f} "
              f"{encode:11.3f} {path.stat().st_size / 1e6:9.2f} {len(whole) / 1e6:8.2f} "
              f"{len(written.data) / 1e6:9.2f} {written.reencoded.mean():10.1%}")
    print(f"{'total':14} {totals[0]:13.3f} {totals[1]:10.3f} {totals[0] / totals[1]:5.2f}× {totals[2]:9.3f} "
          f"{totals[3]:11.3f}")


if __name__ == "__main__":
    main()
