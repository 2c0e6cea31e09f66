"""Report polygons on photos (pinhole views): drawn in pixels, stored as directions.

A photo's pixels and the report angles (``spherical.camera_rays``: the panoramas' convention)
meet through the view's camera model (``sfm.cameras``, every distortion openMVG has): pixels are
undistorted into rays on the way in, rays distorted into pixels on the way out. A polygon's edges
are sampled until they stray no more than ``TOLERANCE`` pixels: a straight edge drawn on the photo
is stored as the run of short great-circle arcs that follows it, and a stored great-circle edge is
drawn as the curve the lens makes of it.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError
from ..sfm.cameras import bearings, project_camera
from ..sfm.models import Pinhole
from .models import MAX_STORED_VERTICES
from .spherical import angles_of_rays, camera_rays

TOLERANCE = 0.1        # pixels: how far a sampled edge may stray from the true one
MAX_HALVINGS = 10      # an edge is cut in at most 2**10 pieces
ROUND_TRIP = 0.01      # pixels: how far a corner may move through its ray and back
MIN_SPREAD = 0.1       # pixels: corners closer than this to one line enclose no area
MAX_OUTLINE = 100_000  # points of a drawn outline (a bound on the work, never reached in practice)


def angles_of_pixels(intrinsic: Pinhole, xy: np.ndarray) -> np.ndarray:
    """Report angles (pitch, yaw) of the rays through pixels (x, y) of a photo."""
    return angles_of_rays(bearings(intrinsic, xy))


def polygon_of_pixels(intrinsic: Pinhole, corners: np.ndarray, width: int, height: int) -> np.ndarray:
    """The stored polygon (pitch, yaw) of a polygon drawn on a ``width`` × ``height`` photo: its
    corners, and as many points along each straight edge as keep the great-circle arcs between
    them within ``TOLERANCE`` pixels of that edge. ``ValueError`` (one line, no coordinates) when
    a corner lies outside the photo or where the lens cannot be undone, or when the corners
    enclose no area."""
    corners = np.asarray(corners, np.float64).reshape(-1, 2)
    outside = (corners < 0).any(axis=1) | (corners[:, 0] > width) | (corners[:, 1] > height)
    if outside.any():
        raise ValueError(f"corner {int(np.argmax(outside))} lies outside the photo ({width}×{height} pixels)")
    if np.linalg.svd(corners - corners.mean(axis=0), compute_uv=False)[-1] < MIN_SPREAD:
        raise ValueError("the polygon has no area (its corners coincide or lie on one line)")
    with np.errstate(all="ignore"):  # where the lens cannot be undone the rays are NaN
        rays = bearings(intrinsic, corners)
        moved = ~(np.linalg.norm(project_camera(intrinsic, rays) - corners, axis=1) <= ROUND_TRIP)
    if moved.any():
        raise ValueError(f"corner {int(np.argmax(moved))} lies where the camera model cannot be undistorted")
    _, rays = _refine(intrinsic, corners, rays, straight=True, limit=MAX_STORED_VERTICES)
    if len(rays) > MAX_STORED_VERTICES:
        raise ValueError(f"the polygon would need more than {MAX_STORED_VERTICES} points to follow the lens")
    return angles_of_rays(rays)


def outline(intrinsic: Pinhole, polygon: np.ndarray) -> np.ndarray:
    """Pixel outline (n, 2) of a stored polygon whose corners are all in front of the camera: its
    great-circle edges sampled as the lens bends them."""
    rays = camera_rays(polygon)
    pixels, _ = _refine(intrinsic, project_camera(intrinsic, rays), rays, straight=False, limit=MAX_OUTLINE)
    return pixels


def rasterize(intrinsic: Pinhole, polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boolean mask (height, width) of the photo's pixels inside the polygon (their centres, and
    those its outline runs through)."""
    mask = np.zeros((height, width), np.uint8)
    points = np.clip(outline(intrinsic, polygon) - 0.5, -1e5, 1e5)  # OpenCV puts pixel centres on integers
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return mask.astype(bool)


def check_in_view(intrinsic: Pinhole, polygon: np.ndarray, width: int, height: int) -> None:
    """``InputError`` unless every corner of a stored polygon lies in front of the camera and on
    the photo (within a pixel), where the lens model holds."""
    rays = camera_rays(polygon)
    if (rays[:, 2] <= 0).any():
        raise InputError("the polygon reaches behind the camera")
    xy = project_camera(intrinsic, rays)
    if not ((xy >= -1).all() and (xy[:, 0] <= width + 1).all() and (xy[:, 1] <= height + 1).all()):
        raise InputError(f"the polygon reaches outside the photo ({width}×{height} pixels)")
    with np.errstate(all="ignore"):
        back = np.linalg.norm(bearings(intrinsic, xy) - rays, axis=1)
    if not (back <= ROUND_TRIP / intrinsic.focal_length).all():
        raise InputError("the polygon reaches where the camera model cannot be undistorted")


def _refine(intrinsic: Pinhole, pixels: np.ndarray, rays: np.ndarray, straight: bool,
            limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Halve the closed polygon's edges (corners as pixels and as rays) until the great-circle arc
    between the ends of each runs within ``TOLERANCE`` pixels of the straight segment between
    them, or there are more than ``limit`` points. A cut point lies on the segment (``straight``:
    what was drawn in pixels) or on the arc."""
    for _ in range(MAX_HALVINGS):
        if len(pixels) > limit:
            break
        next_pixels, next_rays = np.roll(pixels, -1, axis=0), np.roll(rays, -1, axis=0)
        arc_middle = rays + next_rays
        arc_pixels = project_camera(intrinsic, arc_middle)
        cut = _off_segment(arc_pixels, pixels, next_pixels) > TOLERANCE
        if not cut.any():
            break
        if straight:
            new_pixels = (pixels[cut] + next_pixels[cut]) / 2
            new_rays = bearings(intrinsic, new_pixels)
        else:
            new_pixels = arc_pixels[cut]
            new_rays = arc_middle[cut] / np.linalg.norm(arc_middle[cut], axis=1, keepdims=True)
        where = np.flatnonzero(cut) + 1
        pixels, rays = np.insert(pixels, where, new_pixels, axis=0), np.insert(rays, where, new_rays, axis=0)
    return pixels, rays


def _off_segment(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point to the segment from ``a`` to ``b`` (row by row)."""
    ab = b - a
    length2 = np.einsum("ij,ij->i", ab, ab)
    t = np.clip(np.einsum("ij,ij->i", points - a, ab) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)
