"""What every segmenter returns: per-class probability maps and, for detectors, the boxes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

CLASSES = ("people", "vehicles")


@dataclass(frozen=True)
class Detection:
    """A box in full-image pixels; x1 may exceed the width for a box across a panorama's seam."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    cls: str       # "people" or "vehicles"
    label: str     # the model's own class name
    threshold: float = 0.5  # the score from which it counts as a detection

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Segmentation:
    """Per-class probability maps (float32 in [0, 1], any resolution, same aspect as the image)."""

    maps: dict[str, np.ndarray]
    detections: list[Detection] = field(default_factory=list)


def maps_from_detections(detections: list[Detection], size: tuple[int, int], map_width: int,
                         margin: float = 0.1) -> dict[str, np.ndarray]:
    """Soft maps: each box, grown by ``margin`` of its size on every side (detectors draw boxes
    tight, and limbs stick out), filled with its score rescaled so that its threshold reads 0.5
    (scores below it stay below 0.5); the maximum over boxes. Boxes across the seam wrap."""
    width, height = size
    scale = map_width / width
    shape = (max(1, round(height * scale)), map_width)
    maps = {cls: np.zeros(shape, np.float32) for cls in CLASSES}
    for d in sorted(detections, key=lambda d: d.score):
        value = calibrated(d.score, d.threshold)
        grow_x, grow_y = margin * (d.x1 - d.x0), margin * (d.y1 - d.y0)
        y0, y1 = max(d.y0 - grow_y, 0), min(d.y1 + grow_y, height)
        for shift in (0, -width):  # the part beyond the right edge continues at the left
            x0, x1 = (d.x0 - grow_x + shift) * scale, (d.x1 + grow_x + shift) * scale
            if x1 <= 0 or x0 >= map_width:
                continue
            pt0 = (int(np.floor(max(x0, 0))), int(np.floor(y0 * scale)))
            pt1 = (int(np.ceil(min(x1, map_width))) - 1, int(np.ceil(y1 * scale)) - 1)
            target = maps[d.cls]
            region = target[pt0[1]:pt1[1] + 1, pt0[0]:pt1[0] + 1]
            np.maximum(region, value, out=region)
    return maps


def calibrated(score: float, threshold: float) -> float:
    """Score → map value, with the detection threshold at 0.5."""
    if score >= threshold:
        return 0.5 + 0.5 * (score - threshold) / max(1.0 - threshold, 1e-6)
    return 0.5 * score / threshold

