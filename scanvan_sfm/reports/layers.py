"""Report regions drawn into a view's mask layer (``masks.LAYERS``): spherical polygons for
panoramas, pixel outlines (grown by a margin, wrapped at a panorama's seam) for the regions
carried to other views."""

from __future__ import annotations

import cv2
import numpy as np

from ..dataset import Region
from .spherical import rasterize


def render(regions: list[Region], width: int, height: int, panorama: bool) -> np.ndarray:
    """One layer from its regions."""
    layer = np.zeros((height, width), np.uint8)
    for region in regions:
        if region.angles is not None:
            layer |= rasterize(region.angles, width, height).astype(np.uint8)
            continue
        outline = np.round(np.asarray(region.pixels, np.float64) * 16).astype(np.int32)  # 4 fractional bits
        for shift in (-width, 0, width) if panorama else (0,):
            moved = outline + np.array([shift * 16, 0], np.int32)
            cv2.fillPoly(layer, [moved], 1, cv2.LINE_8, shift=4)
            if region.margin:
                cv2.polylines(layer, [moved], True, 1, 2 * region.margin + 1, cv2.LINE_8, shift=4)
    return layer.astype(bool)
