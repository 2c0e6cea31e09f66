"""Report regions drawn into a view's mask layer (``masks.LAYERS``): report polygons on the
sphere for panoramas and through the lens for photos, pixel outlines (grown by a margin, wrapped
at a panorama's seam) for the regions carried to other views."""

from __future__ import annotations

import cv2
import numpy as np

from ..dataset import Region
from ..errors import InputError
from ..sfm.models import Pinhole, Spherical, is_panorama
from . import photo
from .spherical import placeable_cap, rasterize


def check_drawable(intrinsic: Pinhole | Spherical, polygon, width: int, height: int) -> None:
    """``InputError`` unless a report polygon (pitch, yaw) can be drawn in a view of this camera."""
    polygon = np.asarray(polygon, np.float64).reshape(-1, 2)
    if not isinstance(intrinsic, Spherical):
        photo.check_in_view(intrinsic, polygon, width, height)
    elif is_panorama((width, height)):
        placeable_cap(polygon)
    else:
        raise InputError(f"a spherical camera on a {width}×{height} image, not an equirectangular panorama")


def polygon_mask(intrinsic: Pinhole | Spherical, polygon, width: int, height: int) -> np.ndarray:
    """Boolean mask (height, width) of a report polygon (pitch, yaw) in a view of this camera."""
    if isinstance(intrinsic, Spherical):
        return rasterize(polygon, width, height)
    return photo.rasterize(intrinsic, np.asarray(polygon, np.float64).reshape(-1, 2), width, height)


def render(regions: list[Region], intrinsic: Pinhole | Spherical, width: int, height: int) -> np.ndarray:
    """One layer from its regions."""
    layer = np.zeros((height, width), np.uint8)
    panorama = isinstance(intrinsic, Spherical)
    for region in regions:
        if region.angles is not None:
            layer |= polygon_mask(intrinsic, region.angles, width, height).astype(np.uint8)
            continue
        outline = np.round(np.asarray(region.pixels, np.float64) * 16).astype(np.int32)  # 4 fractional bits
        for shift in (-width, 0, width) if panorama else (0,):
            moved = outline + np.array([shift * 16, 0], np.int32)
            cv2.fillPoly(layer, [moved], 1, cv2.LINE_8, shift=4)
            if region.margin:
                cv2.polylines(layer, [moved], True, 1, 2 * region.margin + 1, cv2.LINE_8, shift=4)
    return layer.astype(bool)
