"""Report polygons on the sphere, rasterized into equirectangular pixel grids.

A polygon is a list of (pitch, yaw) corners in the feed's convention (pitch 0 at the top to π,
yaw 0 at the left edge to 2π). Its edges are great-circle arcs, as the viewer draws them, so a
polygon may cross the yaw seam or enclose a pole: the test is done in 3D, in the gnomonic
(tangent-plane) projection centred on the polygon, where great circles are straight lines.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: Polygons must fit in a cap of this radius (radians) around their centre: the gnomonic
#: projection needs a hemisphere, with a margin for precision.
MAX_CAP = np.radians(80.0)


def directions(pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3); z points to pitch 0 (the top)."""
    pitch, yaw = np.broadcast_arrays(np.asarray(pitch, np.float64), np.asarray(yaw, np.float64))
    return np.stack([np.sin(pitch) * np.cos(yaw), np.sin(pitch) * np.sin(yaw), np.cos(pitch)], axis=-1)


def angles_of(vectors: np.ndarray) -> np.ndarray:
    """(pitch, yaw) of unit vectors, yaw in [0, 2π)."""
    v = np.atleast_2d(vectors)
    pitch = np.arccos(np.clip(v[:, 2], -1.0, 1.0))
    return np.column_stack([pitch, np.mod(np.arctan2(v[:, 1], v[:, 0]), 2 * np.pi)])


def camera_rays(angles: np.ndarray) -> np.ndarray:
    """Camera-frame unit rays (x right, y down, z forward) of (pitch, yaw) angles, as openMVG's
    spherical camera relates them to its panorama's pixels: pitch 0 points up, yaw π forward.
    Reports on photos (pinhole views) use the same convention."""
    angles = np.atleast_2d(np.asarray(angles, np.float64))
    pitch, yaw = angles[:, 0], angles[:, 1]
    return np.column_stack([-np.sin(pitch) * np.sin(yaw), -np.cos(pitch), -np.sin(pitch) * np.cos(yaw)])


def angles_of_rays(rays: np.ndarray) -> np.ndarray:
    """(pitch, yaw) of camera-frame rays (any length), yaw in [0, 2π): the inverse of ``camera_rays``."""
    rays = np.atleast_2d(np.asarray(rays, np.float64))
    rays = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    pitch = np.arccos(np.clip(-rays[:, 1], -1.0, 1.0))
    return np.column_stack([pitch, np.mod(np.arctan2(-rays[:, 0], -rays[:, 2]), 2 * np.pi)])


def pixels_to_angles(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel positions (x, y) → (pitch, yaw): x = W·yaw/2π, y = H·pitch/π."""
    xy = np.atleast_2d(np.asarray(xy, np.float64))
    return np.column_stack([xy[:, 1] * np.pi / height, xy[:, 0] * 2 * np.pi / width])


def cap(polygon: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (unit vector) and angular radius of a cap holding the polygon's corners; great-circle
    edges between corners stay inside it."""
    corners = directions(polygon[:, 0], polygon[:, 1])
    centre = corners.sum(axis=0)
    norm = np.linalg.norm(centre)
    if norm < 1e-9:
        raise InputError("the polygon's corners are spread over the whole sphere")
    centre /= norm
    return centre, float(np.arccos(np.clip(corners @ centre, -1.0, 1.0)).max())


def placeable_cap(polygon) -> tuple[np.ndarray, float]:
    """``cap`` of a polygon small enough to rasterize; a larger one is refused in one line."""
    centre, radius = cap(np.asarray(polygon, np.float64).reshape(-1, 2))
    if radius > MAX_CAP:
        raise InputError(f"the polygon spans {np.degrees(2 * radius):.0f}°, more than "
                         f"{np.degrees(2 * MAX_CAP):.0f}° across")
    return centre, radius


def rasterize(polygon, width: int, height: int) -> np.ndarray:
    """Boolean mask (height, width) of the equirectangular pixels whose centre lies inside."""
    polygon = np.asarray(polygon, np.float64).reshape(-1, 2)
    centre, radius = placeable_cap(polygon)
    mask = np.zeros((height, width), bool)
    rows = _rows_in_cap(centre, radius, height)
    if rows.size == 0:
        return mask
    e1 = np.cross(centre, [0.0, 0.0, 1.0] if abs(centre[2]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    plane = _gnomonic(directions(polygon[:, 0], polygon[:, 1]), centre, e1, e2)
    yaw = (np.arange(width) + 0.5) * 2 * np.pi / width
    for start in range(0, rows.size, 64):  # bounded memory on large panoramas
        block = rows[start:start + 64]
        pitch = (block + 0.5) * np.pi / height
        d = directions(pitch[:, None], yaw[None, :])
        front = d @ centre > np.cos(radius + 2 * np.pi / width)
        points = _gnomonic(d[front], centre, e1, e2)
        inside = np.zeros(front.shape, bool)
        inside[front] = _inside(points, plane)
        mask[block] = inside
    return mask


def _rows_in_cap(centre: np.ndarray, radius: float, height: int) -> np.ndarray:
    polar = np.arccos(np.clip(centre[2], -1.0, 1.0))
    pixel = np.pi / height
    top, bottom = max(0.0, polar - radius - pixel), min(np.pi, polar + radius + pixel)
    return np.arange(int(np.floor(top / pixel)), min(height, int(np.ceil(bottom / pixel)) + 1))


def _gnomonic(d: np.ndarray, centre: np.ndarray, e1: np.ndarray, e2: np.ndarray) -> np.ndarray:
    depth = d @ centre
    return np.column_stack([d @ e1 / depth, d @ e2 / depth])


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorized over the points."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < at)
    return inside
