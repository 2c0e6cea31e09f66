"""Probability maps → anonymization masks (True / 255 = anonymize), and the report layers.

``seed`` reproduces the original ScanVan ``custom_masks.py`` bit for bit. ``guarded`` (default)
adds what it lacks: no Otsu on an empty map, a floor threshold per class, dilation in
full-resolution pixels, a minimum component area. Neither fills the static camera/car area: as in
the original, that area gets the camera blur (step 4) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MASK_MODES = ("guarded", "seed")
#: Per-view layers beside the automatic mask: ``manual`` (areas reports add) and ``excess``
#: (areas reports release).
LAYERS = ("manual", "excess")


def probmap_to_uint8(p: np.ndarray) -> np.ndarray:
    """The original's encoding: ``uint8(p·255)``, truncated."""
    return (np.clip(p, 0.0, 1.0) * 255).astype(np.uint8)


def _otsu(gray: np.ndarray) -> tuple[float, np.ndarray]:
    return cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)


def block_upscale(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The original's nearest-block upscale: source row ``i`` covers rows ⌊i·s⌋ … ⌊(i+1)·s⌋−1.

    Rows (and columns) no block reaches stay True, as the original's zero-filled (= fill)
    output does.
    """
    def source_index(n_src: int, n_dst: int) -> np.ndarray:
        starts = np.floor(np.arange(n_src + 1) * (n_dst / n_src)).astype(np.int64)
        index = np.searchsorted(starts, np.arange(n_dst), side="right") - 1
        return np.where(index < n_src, index, -1)

    rows, cols = source_index(mask.shape[0], shape[0]), source_index(mask.shape[1], shape[1])
    out = mask[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))]
    out[rows < 0, :] = True
    out[:, cols < 0] = True
    return out


def seed_mask(people: np.ndarray, vehicles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """ScanVan's ``custom_masks.py``: Otsu per class, people dilated 9×1 vertically at model
    resolution (what its wrapped uint8 kernel computes), OR, block upscale to ``shape``."""
    _, mp = _otsu(people)
    mp = cv2.dilate(mp, np.ones((9, 1), np.uint8))
    _, mv = _otsu(vehicles)
    return block_upscale((mp | mv) > 0, shape)


@dataclass(frozen=True)
class GuardedSettings:
    """Thresholds in probability, sizes in full-resolution pixels. The default dilation is for
    maps that carry no growth of their own (dhSegment's); the box detectors' maps carry theirs
    (``settings.DETECTOR_GUARDED``)."""

    floor: tuple[float, float] = (0.5, 0.5)            # people, vehicles: never threshold below
    dilation: tuple[int, int] = (16, 8)                # grow people more (hair, limbs, shadows)
    min_area: int = 64                                 # drop smaller components before dilation


def guarded_mask(people: np.ndarray, vehicles: np.ndarray, shape: tuple[int, int],
                 settings: GuardedSettings = GuardedSettings(),
                 camera: np.ndarray | None = None) -> np.ndarray:
    """Per class: Otsu only where something was detected, never below the floor; small
    components dropped and the rest dilated — at the maps' resolution, with the sizes converted
    from full-resolution pixels — then upscaled to ``shape`` with smooth edges. The ``camera``
    area is left out."""
    scale = people.shape[1] / shape[1]  # map pixels per image pixel
    small = np.zeros(people.shape, np.uint8)
    for gray, floor, radius in zip((people, vehicles), settings.floor, settings.dilation, strict=True):
        if gray.max() < floor * 255:
            continue
        otsu, _ = _otsu(gray)
        cls = _drop_small((gray > max(otsu, floor * 255)).astype(np.uint8), settings.min_area * scale * scale)
        if radius:
            r = max(1, round(radius * scale))
            cls = cv2.dilate(cls, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
        small |= cls
    if scale == 1:
        mask = small > 0
    else:
        mask = cv2.resize(small * np.uint8(255), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) > 127
    if camera is not None:
        mask &= ~camera
    return mask


def _drop_small(binary: np.ndarray, min_area: float) -> np.ndarray:
    if min_area <= 1:
        return binary
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels].astype(np.uint8)


def mask_from_maps(mode: str, people: np.ndarray, vehicles: np.ndarray, shape: tuple[int, int],
                   guarded: GuardedSettings, camera: np.ndarray | None) -> np.ndarray:
    """The automatic mask from the 8-bit probability maps, in either mode (``MASK_MODES``)."""
    if mode == "seed":
        return seed_mask(people, vehicles, shape)
    return guarded_mask(people, vehicles, shape, guarded, camera)


def publishable(automatic: np.ndarray, layers: dict[str, np.ndarray]) -> np.ndarray:
    """The mask a view is filled with: (automatic − excess) ∪ manual, so a false positive can be
    released but a manual addition never is."""
    mask = automatic.copy()
    if "excess" in layers:
        mask &= ~layers["excess"]
    if "manual" in layers:
        mask |= layers["manual"]
    return mask
