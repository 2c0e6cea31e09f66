"""Report polygons rasterized on the sphere: great-circle edges, the yaw seam, the poles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanvan_sfm.errors import InputError
from scanvan_sfm.reports.spherical import directions, rasterize

W, H = 400, 200


def reference(polygon: np.ndarray, centre: np.ndarray, radius: float, width: int, height: int) -> np.ndarray:
    """Independent test: the winding angle of the polygon seen from each pixel, summed in the
    tangent plane at that pixel (±2π inside, 0 outside; points near the antipode of the polygon's
    cap see ±2π as well, so the cap the polygon was drawn in decides)."""
    pitch = (np.arange(height) + 0.5) * math.pi / height
    yaw = (np.arange(width) + 0.5) * 2 * math.pi / width
    p = directions(pitch[:, None], yaw[None, :]).reshape(-1, 3)
    corners = directions(polygon[:, 0], polygon[:, 1])
    total = np.zeros(len(p))
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        ta = a - (p @ a)[:, None] * p  # directions of the arcs p→a, p→b at p
        tb = b - (p @ b)[:, None] * p
        total += np.arctan2(np.einsum("ij,ij->i", np.cross(ta, tb), p), np.einsum("ij,ij->i", ta, tb))
    return ((np.abs(total) > math.pi) & (p @ centre > math.cos(radius + 0.05))).reshape(height, width)


def agreement(a: np.ndarray, b: np.ndarray) -> int:
    """Pixels that differ, not counting those on the boundary of either mask."""
    import cv2
    edge = cv2.dilate((a ^ cv2.erode(a.astype(np.uint8), np.ones((3, 3))).astype(bool)).astype(np.uint8),
                      np.ones((3, 3))).astype(bool)
    return int(((a != b) & ~edge).sum())


@settings(max_examples=60, deadline=None)
@given(centre_pitch=st.floats(0.0, math.pi), centre_yaw=st.floats(0.0, 2 * math.pi),
       radius=st.floats(0.05, 1.2), corners=st.integers(3, 12), twist=st.floats(0.0, 1.0))
def test_matches_an_independent_winding_test(centre_pitch, centre_yaw, radius, corners, twist):
    # a convex-ish polygon around a centre anywhere (seam and poles included)
    c = directions(np.array([centre_pitch]), np.array([centre_yaw]))[0]
    e1 = np.cross(c, [0.0, 0.0, 1.0] if abs(c[2]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c, e1)
    angles = np.linspace(0, 2 * math.pi, corners, endpoint=False) + twist
    points = np.cos(radius) * c + np.sin(radius) * (np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2)
    polygon = np.column_stack([np.arccos(np.clip(points[:, 2], -1, 1)),
                               np.mod(np.arctan2(points[:, 1], points[:, 0]), 2 * math.pi)])
    ours = rasterize(polygon, W, H)
    assert agreement(ours, reference(polygon, c, radius, W, H)) == 0


def test_seam_crossing_polygon_is_one_region_across_the_edges():
    polygon = [[1.4, 6.0], [1.4, 0.3], [1.8, 0.3], [1.8, 6.0]]
    mask = rasterize(polygon, W, H)
    row = int(1.6 / math.pi * H)
    assert mask[row, 0] and mask[row, W - 1] and not mask[row, W // 2]
    shifted = [[p, (y + math.pi) % (2 * math.pi)] for p, y in polygon]  # the same shape half a turn away
    assert np.array_equal(rasterize(shifted, W, H), np.roll(mask, W // 2, axis=1))


def test_polygon_around_a_pole_covers_the_cap():
    north = [[0.3, a] for a in np.linspace(0, 2 * math.pi, 9, endpoint=False)]
    mask = rasterize(north, W, H)
    assert mask[: int(0.25 / math.pi * H)].all() and not mask[int(0.35 / math.pi * H):].any()
    south = [[math.pi - 0.3, a] for a in np.linspace(0, 2 * math.pi, 9, endpoint=False)]
    assert np.array_equal(rasterize(south, W, H), mask[::-1])


def test_edges_are_great_circles():
    # a "box" in pitch/yaw above the horizon: its top edge, an arc, bulges towards the pole
    top, bottom, left, right = 0.8, 1.2, 1.0, 2.0
    mask = rasterize([[top, left], [top, right], [bottom, right], [bottom, left]], 2000, 1000)
    column = int((left + right) / 2 / (2 * math.pi) * 2000)
    first_row = np.argmax(mask[:, column])
    assert first_row < top / math.pi * 1000 - 20


def test_too_large_a_polygon_is_refused():
    with pytest.raises(InputError, match="across"):
        rasterize([[0.2, 0.0], [1.5, 2.0], [2.9, 4.0]], W, H)
