"""The cost of a view's review thumbnail (``view.thumbnail``: the published image shrunk to 320 px,
the mask outlined, plus its JPEG encode) on the shared images, against OpenCV's ``INTER_AREA``
resize in one go and against a plain copy of the image (memory bandwidth), measured in the same
run. Median and fastest of ``--repeat`` runs, one thread.

Usage: python benchmarks/thumbnail.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from scanvan_sfm.images import read_image
from scanvan_sfm.view import THUMBNAIL_WIDTH, thumbnail

SHARED = Path(__file__).resolve().parents[2] / "shared"
IMAGES = [SHARED / "images" / "ams_TMX7315120208-000059_pano_0006_000037.jpg",           # 8000×4000
          SHARED / "fixtures" / "openmvg" / "360_flat_gps" / "images" / "R0010213.JPG",  # 5376×2688
          SHARED / "images" / "opensfm_lund_01.jpg"]                                     # 1024×768


def timed(work, repeat: int) -> str:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return f"{np.median(seconds) * 1000:5.1f} / {min(seconds) * 1000:5.1f}"


def encoded(small: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(small).save(out, "JPEG", quality=85)
    return out.getvalue()


def street_mask(height: int, width: int) -> np.ndarray:
    """About 3 % masked in 20 person-sized blobs on the street band."""
    mask = np.zeros((height, width), bool)
    rng = np.random.default_rng(1)
    for x, y in zip(rng.integers(0, width - width // 60, 20), rng.integers(height // 2, height * 3 // 4, 20),
                    strict=True):
        mask[y:y + height // 12, x:x + width // 60] = True
    return mask


def costs(pixels: np.ndarray, mask: np.ndarray, repeat: int) -> list[str]:
    """Ours, INTER_AREA in one go (image and mask), a copy of the image."""
    size = (THUMBNAIL_WIDTH, round(pixels.shape[0] * THUMBNAIL_WIDTH / pixels.shape[1]))
    return [timed(lambda: encoded(thumbnail(pixels, mask)), repeat),
            timed(lambda: (cv2.resize(pixels, size, interpolation=cv2.INTER_AREA),
                           cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_AREA)), repeat),
            timed(pixels.copy, repeat)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as in a worker: one view per process
    print("image     | thumbnail + JPEG | INTER_AREA image + mask | copy of the image  (ms, median / fastest)")
    for path in IMAGES:
        pixels = read_image(path).pixels
        height, width = pixels.shape[:2]
        ours, area, copy = costs(pixels, street_mask(height, width), args.repeat)
        print(f"{width}×{height:<4} | {ours:>16} | {area:>23} | {copy:>17}")


if __name__ == "__main__":
    main()
