"""What every segmenter returns: per-class probability maps and, for detectors, the boxes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
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


#: Boxes grow by this share of their size per side (a person's limbs stick out of the box; a
#: vehicle's box holds its plates), and by at least ``MIN_MARGIN`` pixels: a far, small road
#: user's box is rough.
MARGINS = {"people": 0.1, "vehicles": 0.02}
MIN_MARGIN = 8
#: A car's box loses a triangle at each top corner, this share of its width and of its height: the
#: sky or street beside the roof. Its middle 60 % × 60 %, its occupants and its plates (low in
#: the box) stay inside. Smaller boxes are too rough to trim.
CAR_CORNERS = (0.3, 0.45)
CAR_TRIM_HEIGHT = 80


@dataclass(frozen=True)
class Stamp:
    """A shape in full-image pixels: ``mask`` placed at column ``x0`` (which may be negative or
    run past the width on a panorama) and row ``y0``."""

    x0: int
    y0: int
    mask: np.ndarray


def maps_from_detections(detections: list[Detection], size: tuple[int, int], map_width: int,
                         margin: float | None = None, shapes: list[Stamp | None] | None = None,
                         wrap: bool = True) -> dict[str, np.ndarray]:
    """Soft maps: each box, grown by ``margin`` of its size on every side (default ``MARGINS``
    per class), or its shape where ``shapes`` gives one, filled with its score rescaled so that
    its threshold reads 0.5 (scores below it stay below 0.5); the maximum over detections. With
    ``wrap`` (panoramas) what crosses the seam continues on the other side."""
    width, height = size
    scale = map_width / width
    maps = {cls: np.zeros((max(1, round(height * scale)), map_width), np.float32) for cls in CLASSES}
    shapes = shapes or [None] * len(detections)
    for d, shape in zip(detections, shapes, strict=True):
        grow = MARGINS[d.cls] if margin is None else margin
        value = calibrated(d.score, d.threshold)
        if shape is None:
            _paint_box(maps[d.cls], d, _grown(d, grow, height), scale, value, wrap)
        else:
            _paint(maps[d.cls], shape, scale, value, wrap)
    return maps


def _grown(d: Detection, margin: float, height: int) -> tuple[int, int, int, int]:
    """The box grown by ``margin`` of its size per side (at least ``MIN_MARGIN``), in whole pixels."""
    grow_x, grow_y = (max(margin * side, MIN_MARGIN if margin else 0) for side in (d.x1 - d.x0, d.y1 - d.y0))
    x0, y0 = int(np.floor(d.x0 - grow_x)), int(np.floor(max(d.y0 - grow_y, 0)))
    x1, y1 = int(np.ceil(d.x1 + grow_x)), int(np.ceil(min(d.y1 + grow_y, height)))
    return x0, y0, x0 + max(x1 - x0, 1), y0 + max(y1 - y0, 1)


def _paint_box(target: np.ndarray, d: Detection, box: tuple[int, int, int, int], scale: float, value: float,
               wrap: bool) -> None:
    """``target = max(target, value)`` on every map pixel the grown ``box`` touches (as ``_paint``
    does with a stamp); a large car's box without its top corners (``CAR_CORNERS``)."""
    extent = _extent(target.shape, *box, scale, wrap)
    if extent is None:
        return
    top, bottom, left, right = extent
    width = target.shape[1]
    if d.label == "car" and d.y1 - d.y0 >= CAR_TRIM_HEIGHT:
        rows, cols = np.arange(top, bottom), np.arange(left, right)
        _paint_where(target, rows, cols, _car_hits(d, box, rows, cols, scale), value)
        return
    if right - left >= width:
        left, right = 0, width
    left, right = left % width, left % width + right - left
    for start, end in ((left, min(right, width)), (0, right - width)):
        if start < end:
            span = target[top:bottom, start:end]
            np.maximum(span, value, out=span)


def _extent(shape: tuple[int, ...], x0: int, y0: int, x1: int, y1: int, scale: float,
            wrap: bool) -> tuple[int, int, int, int] | None:
    """The map rows (top, bottom) and columns (left, right) that the image pixels x0…x1, y0…y1
    touch: rows inside the map, columns too unless ``wrap`` (they then continue at the other edge);
    None when there are none."""
    top, bottom = max(int(np.floor(y0 * scale)), 0), min(int(np.ceil(y1 * scale)), shape[0])
    left, right = int(np.floor(x0 * scale)), int(np.ceil(x1 * scale))
    if not wrap:
        left, right = max(left, 0), min(right, shape[1])
    return (top, bottom, left, right) if top < bottom and left < right else None


def _paint_where(target: np.ndarray, rows: np.ndarray, cols: np.ndarray, hits: np.ndarray, value: float) -> None:
    """``target = max(target, value)`` at the ``hits`` of ``rows`` × ``cols`` (columns wrapped)."""
    region = np.ix_(rows, cols % target.shape[1])
    target[region] = np.where(hits, np.maximum(target[region], value), target[region])


def _car_hits(d: Detection, box: tuple[int, int, int, int], rows: np.ndarray, cols: np.ndarray,
              scale: float) -> np.ndarray:
    """Which map pixels (``rows`` × ``cols``) hold an image pixel of the car's box without the
    triangles at its top corners: the test at each map pixel's image pixel lowest and nearest the
    middle, where a corner cut is least likely (it grows with the distance from the middle and up)."""
    x0, y0, x1, y1 = box
    row_start, row_end = _spans(rows, scale, y0, y1 - y0)
    col_start, col_end = _spans(cols, scale, x0, x1 - x0)
    middle = (d.x0 + d.x1) / 2
    nearest = np.floor(middle - x0 - 0.5)
    side = np.minimum(*(np.abs(np.clip(nearest + k, col_start, col_end - 1) + x0 + 0.5 - middle) / (d.x1 - d.x0)
                        for k in (0, 1)))  # 0 middle, 0.5 side
    lowest = (row_end - 1 + y0 + 0.5 - d.y0) / (d.y1 - d.y0)  # 0 top, 1 bottom
    corner_w, corner_h = CAR_CORNERS
    inside = (side[None, :] - (0.5 - corner_w)) / corner_w + (corner_h - lowest[:, None]) / corner_h <= 1
    return inside & (row_end > row_start)[:, None] & (col_end > col_start)[None, :]


def _paint(target: np.ndarray, shape: Stamp, scale: float, value: float, wrap: bool) -> None:
    """``target = max(target, value)`` where the shape, brought to the map's scale, touches a map
    pixel; with ``wrap``, columns past one edge continue at the other, else they are dropped."""
    height, width = shape.mask.shape
    extent = _extent(target.shape, shape.x0, shape.y0, shape.x0 + width, shape.y0 + height, scale, wrap)
    if extent is None:
        return
    top, bottom, left, right = extent
    rows, cols = np.arange(top, bottom), np.arange(left, right)
    # a map pixel is set when any shape pixel falls inside it: counted with an integral image
    src_rows = _spans(rows, scale, shape.y0, height)
    src_cols = _spans(cols, scale, shape.x0, width)
    integral = cv2.integral(shape.mask.astype(np.uint8))
    hits = (integral[np.ix_(src_rows[1], src_cols[1])] - integral[np.ix_(src_rows[0], src_cols[1])]
            - integral[np.ix_(src_rows[1], src_cols[0])] + integral[np.ix_(src_rows[0], src_cols[0])]) > 0
    _paint_where(target, rows, cols, hits, value)


def _spans(index: np.ndarray, scale: float, origin: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The shape pixels [start, end) under each map pixel of ``index``."""
    start = np.clip(np.floor(index / scale - origin), 0, size).astype(int)
    end = np.clip(np.ceil((index + 1) / scale - origin), 0, size).astype(int)
    return start, end


def calibrated(score: float, threshold: float) -> float:
    """Score → map value, with the detection threshold at 0.5."""
    if score >= threshold:
        return 0.5 + 0.5 * (score - threshold) / max(1.0 - threshold, 1e-6)
    return 0.5 * score / threshold

