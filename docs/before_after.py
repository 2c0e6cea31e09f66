"""The README's before/after picture: ``scanvan-sfm anonymize`` on the bundled lund scene, then the
source and the published image of view 01 side by side (the pedestrian; the parked bicycle stays).

Usage: python docs/before_after.py   (writes docs/lund-before-after.jpg)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PROJECT = Path(__file__).resolve().parents[1]
SCENE = PROJECT / "fixtures" / "lund" / "sfm_data_bin.json"
CROP = (300, 360, 860, 640)  # x0, y0, x1, y1 in 01.jpg: the lane, the walker, the bicycle


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "scanvan_sfm.cli", "anonymize", str(SCENE), "--out", out], check=True)
        before = Image.open(PROJECT / "fixtures" / "lund" / "images" / "01.jpg").crop(CROP)
        after = Image.open(Path(out) / "anonymization" / "blur" / "01.jpg").crop(CROP)
    gap = np.full((before.height, 8, 3), 255, np.uint8)
    side_by_side = np.hstack([np.asarray(before.convert("RGB")), gap, np.asarray(after.convert("RGB"))])
    Image.fromarray(side_by_side).save(PROJECT / "docs" / "lund-before-after.jpg", quality=90)


if __name__ == "__main__":
    main()
