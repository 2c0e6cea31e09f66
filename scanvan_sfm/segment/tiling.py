"""Where a detector looks: square tiles at native resolution that wrap across a panorama's seam,
a coarser pass for large close objects, and perspective (gnomonic) views below the horizon band
where the equirectangular projection stretches things. Each view renders the detector's input
and maps boxes back to image pixels. The pitch of a view is positive downwards (image y)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..sfm.cameras import bearings, project_camera
from ..sfm.models import Pinhole, Spherical


@dataclass(frozen=True)
class TilePlan:
    band: tuple[float, float] = (0.3, 0.8)   # rows of a panorama to tile, as fractions of its height
    tile: float = 0.1                        # fine tile side, as a fraction of the panorama width
    coarse: float = 2.0                      # coarse tiles are this many times larger
    horizon: tuple[float, float] = (0.47, 0.55)  # rows where far road users are: one more pass …
    horizon_tile: float = 0.05               # … with tiles this small (about native scale)
    overlap: float = 0.15
    down_pitch: float = 50.0                 # gnomonic views looking down, degrees below the horizon
    down_views: int = 4                      # how many around (0: none)
    up_pitch: float = 50.0                   # and looking up (balconies, upper floors)
    up_views: int = 0
    view_fov: float = 90.0
    photo_tile: int = 512                    # pinhole images: tile side, plus one whole-image pass
    min_valid: float = 0.2                   # skip views with less image data (no-data rows, camera mask)


class CropView:
    """A square crop of the image scaled by ``scale`` (input pixels per image pixel), the crop
    wrapping horizontally for panoramas."""

    def __init__(self, x0: int, y0: int, side: int, wrap: bool, scale: float = 1.0):
        self.x0, self.y0, self.side, self.wrap, self.scale = x0, y0, side, wrap, scale

    def valid_fraction(self, valid: np.ndarray) -> float:
        """Share of image data under the crop (``valid`` at full resolution)."""
        x0, y0, side = (round(v / self.scale) for v in (self.x0, self.y0, self.side))
        rows = valid[y0:y0 + side]
        cols = np.arange(x0, x0 + side) % valid.shape[1] if self.wrap else slice(x0, x0 + side)
        return float(rows[:, cols].mean()) if rows.size else 0.0

    def render(self, scaled: np.ndarray, size: int) -> np.ndarray:
        """The size×size input from the image already scaled by ``scale``; short crops padded black."""
        rows = scaled[self.y0:self.y0 + self.side]
        width = scaled.shape[1]
        if self.wrap and self.x0 + self.side > width:
            crop = np.concatenate([rows[:, self.x0:], rows[:, :self.x0 + self.side - width]], axis=1)
        else:
            crop = rows[:, self.x0:self.x0 + self.side]
        if crop.shape[:2] == (size, size):
            return crop
        out = np.zeros((size, size) + scaled.shape[2:], scaled.dtype)
        out[:crop.shape[0], :crop.shape[1]] = crop
        return out

    def to_image(self, box: np.ndarray) -> np.ndarray:
        return (np.asarray(box) + [self.x0, self.y0, self.x0, self.y0]) / self.scale


class GnomonicView:
    """A pinhole view of a panorama, looking at (yaw, pitch) with the given field of view."""

    def __init__(self, yaw: float, pitch: float, fov: float, width: int, height: int, size: int):
        self.size = size
        self.camera = Pinhole(width=size, height=size, focal_length=size / 2 / np.tan(np.radians(fov) / 2),
                              principal_point=(size / 2, size / 2))
        self.panorama = Spherical(width=width, height=height)
        yaw_r, pitch_r = np.radians(yaw), np.radians(pitch)
        forward = np.array([np.sin(yaw_r) * np.cos(pitch_r), np.sin(pitch_r), np.cos(yaw_r) * np.cos(pitch_r)])
        right = np.array([np.cos(yaw_r), 0.0, -np.sin(yaw_r)])
        self.rotation = np.column_stack([right, np.cross(forward, right), forward])  # view → panorama frame
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
        uv = self._to_panorama(np.column_stack([xs.ravel(), ys.ravel()]))
        self.map_x = (uv[:, 0].reshape(size, size) - 0.5).astype(np.float32)
        self.map_y = (uv[:, 1].reshape(size, size) - 0.5).astype(np.float32)

    def _to_panorama(self, pixels: np.ndarray) -> np.ndarray:
        rays = bearings(self.camera, pixels) @ self.rotation.T
        return project_camera(self.panorama, rays)

    def valid_fraction(self, valid: np.ndarray) -> float:
        return float(self._remap(valid.view(np.uint8)).mean())

    def _remap(self, image: np.ndarray) -> np.ndarray:
        return cv2.remap(image, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)

    scale = 1.0  # renders from the full-resolution panorama

    def render(self, image: np.ndarray, size: int) -> np.ndarray:
        return self._remap(image)

    def to_image(self, box: np.ndarray) -> np.ndarray:
        """The panorama box around the view box's outline (x unwrapped, may pass the right edge)."""
        t = np.linspace(0, 1, 9)
        x0, y0, x1, y1 = np.clip(box, 0, self.size)
        outline = np.concatenate([np.column_stack([x0 + (x1 - x0) * t, np.full(9, y0)]),
                                  np.column_stack([x0 + (x1 - x0) * t, np.full(9, y1)]),
                                  np.column_stack([np.full(9, x0), y0 + (y1 - y0) * t]),
                                  np.column_stack([np.full(9, x1), y0 + (y1 - y0) * t])])
        uv = self._to_panorama(outline)
        width = self.panorama.width
        u = uv[:, 0]
        u = u + width * np.round((u[0] - u) / width)  # unwrap around the first point
        if u.min() < 0:
            u += width
        return np.array([u.min(), uv[:, 1].min(), u.max(), uv[:, 1].max()])


def panorama_views(width: int, height: int, valid: np.ndarray, plan: TilePlan, size: int) -> list:
    """Band tiles (fine and coarse, and finer at the horizon) wrapping the seam, and gnomonic views
    below (and above) the band."""
    rows = np.flatnonzero(valid.any(axis=1))
    views: list = []
    for side, band in ((plan.tile * width, plan.band), (plan.tile * plan.coarse * width, plan.band),
                       (plan.horizon_tile * width, plan.horizon)):
        top = max(int(band[0] * height), int(rows.min()) if len(rows) else 0)
        bottom = min(int(band[1] * height), int(rows.max()) + 1 if len(rows) else height)
        scale = size / side
        scaled_width = round(width * scale)
        y_top, y_bottom = round(top * scale), max(round(bottom * scale), round(top * scale) + 1)
        views += _grid(scaled_width, y_top, y_bottom, size, plan.overlap, scale, wrap=True)
    for count, pitch in ((plan.down_views, plan.down_pitch), (plan.up_views, -plan.up_pitch)):
        views += [_gnomonic(360.0 * i / count, pitch, plan.view_fov, width, height, size) for i in range(count)]
    return [v for v in views if v.valid_fraction(valid) >= plan.min_valid]


def photo_views(width: int, height: int, valid: np.ndarray, plan: TilePlan, size: int) -> list:
    """One pass over the whole image and overlapping tiles for small objects."""
    whole = size / max(width, height)
    views: list = [CropView(0, 0, size, wrap=False, scale=whole)]
    if min(width, height) > plan.photo_tile:
        scale = size / plan.photo_tile
        views += _grid(round(width * scale), 0, round(height * scale), size, plan.overlap, scale, wrap=False)
    return [v for v in views if v.valid_fraction(valid) >= plan.min_valid]


def _grid(width: int, top: int, bottom: int, size: int, overlap: float, scale: float, wrap: bool) -> list:
    """size×size crops with at least ``overlap`` between neighbours, covering rows top…bottom
    (and every column; around the seam when wrapping)."""
    def starts(begin: int, end: int, closed: bool) -> list[int]:
        span = end - begin
        if span <= size and not closed:
            return [begin]
        step = size * (1 - overlap)
        n = int(np.ceil(span / step)) if closed else int(np.ceil((span - size) / step)) + 1
        spacing = span / n if closed else (span - size) / max(n - 1, 1)
        return [begin + round(i * spacing) for i in range(n)]
    return [CropView(x, y, size, wrap, scale) for y in starts(top, bottom, False)
            for x in starts(0, width, wrap)]


@functools.lru_cache(maxsize=32)
def _gnomonic(yaw: float, pitch: float, fov: float, width: int, height: int, size: int) -> GnomonicView:
    return GnomonicView(yaw, pitch, fov, width, height, size)
