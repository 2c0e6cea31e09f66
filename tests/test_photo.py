"""Report polygons on photos: pixels ↔ report angles through every pinhole camera model, straight
drawn edges kept straight, rasterization, and the checks on what is drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import PROJECT, inside_polygon, off_edges
from scanvan_sfm.errors import InputError
from scanvan_sfm.reports.photo import (
    TOLERANCE,
    angles_of_pixels,
    check_in_view,
    outline,
    polygon_of_pixels,
    rasterize,
)
from scanvan_sfm.reports.spherical import angles_of_rays, camera_rays, pixels_to_angles
from scanvan_sfm.sfm import Fisheye, Pinhole, PinholeBrownT2, PinholeRadialK1, PinholeRadialK3, Spherical, read_scene
from scanvan_sfm.sfm.cameras import bearings, project_camera

W, H = 1024, 768
LUND = read_scene(PROJECT / "fixtures" / "lund" / "sfm_data_bin.json", structure=False).intrinsics[0]


def camera_of(kind: str, focal: float, shift: tuple[float, float], k: list[float]) -> Pinhole:
    """A camera of each openMVG pinhole model, with realistic distortion."""
    base = {"width": W, "height": H, "focal_length": focal, "principal_point": (W / 2 + shift[0], H / 2 + shift[1])}
    return {
        "pinhole": lambda: Pinhole(**base),
        "pinhole_radial_k1": lambda: PinholeRadialK1(**base, disto_k1=(k[0],)),
        "pinhole_radial_k3": lambda: PinholeRadialK3(**base, disto_k3=(k[0], k[1] * 0.7, k[2] * 0.3)),
        "pinhole_brown_t2": lambda: PinholeBrownT2(**base, disto_t2=(k[0], k[1] * 0.7, k[2] * 0.3, k[3] * 0.01,
                                                                   k[4] * 0.01)),
        "fisheye": lambda: Fisheye(**base, fisheye=(k[0] * 0.2, k[1] * 0.1, k[2] * 0.05, k[3] * 0.02)),
    }[kind]()


cameras = st.builds(camera_of, st.sampled_from(["pinhole", "pinhole_radial_k1", "pinhole_radial_k3",
                                                 "pinhole_brown_t2", "fisheye"]),
                    st.floats(0.9 * W, 2.0 * W), st.tuples(st.floats(-30, 30), st.floats(-30, 30)),
                    st.lists(st.floats(-0.25, 0.25), min_size=5, max_size=5))


def ray_in_view(off_axis: float, around: float) -> np.ndarray:
    return np.array([[math.sin(off_axis) * math.cos(around), math.sin(off_axis) * math.sin(around),
                      math.cos(off_axis)]])


@settings(max_examples=200, deadline=None)
@given(camera=cameras, off_axis=st.floats(0.0, math.radians(25)), around=st.floats(0, 2 * math.pi))
def test_direction_to_pixel_and_back(camera, off_axis, around):
    """A direction in view, through the lens to its pixel, and back to the same report angles."""
    ray = ray_in_view(off_axis, around)
    pixel = project_camera(camera, ray)
    assert np.allclose(angles_of_pixels(camera, pixel), angles_of_rays(ray), atol=1e-9)
    assert np.allclose(project_camera(camera, camera_rays(angles_of_pixels(camera, pixel))), pixel, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(camera=cameras, x=st.floats(0, W), y=st.floats(0, H))
def test_pixel_to_direction_and_back(camera, x, y):
    """A pixel of the photo, undistorted into its report angles, and distorted back onto itself."""
    angles = angles_of_pixels(camera, np.array([[x, y]]))
    assert np.allclose(project_camera(camera, camera_rays(angles)), [[x, y]], atol=1e-6)


def test_angles_are_the_panoramas_convention():
    """The same (pitch, yaw) for a ray whether a panorama or a photo sees it: on a panorama the
    angles are x = W·yaw/2π, y = H·pitch/π; on a photo the centre looks at (π/2, π)."""
    xy = np.random.default_rng(1).uniform([0, 0], [2048, 1024], (50, 2))
    assert np.allclose(camera_rays(pixels_to_angles(xy, 2048, 1024)), bearings(Spherical(width=2048, height=1024), xy))
    photo = Pinhole(width=W, height=H, focal_length=800.0, principal_point=(W / 2, H / 2))
    centre, above, right = angles_of_pixels(photo, np.array([[W / 2, H / 2], [W / 2, 0.0], [W, H / 2]]))
    assert np.allclose(centre, [math.pi / 2, math.pi])
    assert above[0] < math.pi / 2 and above[1] == pytest.approx(math.pi)
    assert right[0] == pytest.approx(math.pi / 2) and right[1] == pytest.approx(math.pi + math.atan(W / 2 / 800))


quads = st.lists(st.tuples(st.floats(0, W), st.floats(0, H)), min_size=3, max_size=8).map(np.array).filter(
    lambda q: np.linalg.svd(q - q.mean(axis=0), compute_uv=False)[-1] > 5)


@settings(max_examples=100, deadline=None)
@given(camera=cameras, drawn=quads)
def test_straight_drawn_edges_come_back_straight(camera, drawn):
    """Stored as directions and drawn again through the lens, the outline keeps the corners and
    stays within TOLERANCE of the straight edges the visitor drew."""
    back = outline(camera, polygon_of_pixels(camera, drawn, W, H))
    assert np.linalg.norm(back[:, None] - drawn, axis=2).min(axis=0).max() < 1e-6
    assert off_edges(back, drawn).max() <= TOLERANCE + 1e-9


def test_corners_alone_would_bend_the_edges():
    """Why edges are sampled: on the lund camera, the great-circle arcs between the corners of a
    frame along the image border run pixels away from the drawn edges."""
    drawn = np.array([[10.0, 10.0], [1014.0, 10.0], [1014.0, 758.0], [10.0, 758.0]])
    corners_only = outline(LUND, angles_of_pixels(LUND, drawn))
    assert off_edges(corners_only, drawn).max() > 5
    sampled = polygon_of_pixels(LUND, drawn, W, H)
    assert len(sampled) > 4 and off_edges(outline(LUND, sampled), drawn).max() <= TOLERANCE


@pytest.mark.parametrize("drawn", [
    [[100.0, 80.0], [700.0, 40.0], [980.0, 700.0], [60.0, 740.0]],   # most of the frame, near its border
    [[300.0, 300.0], [340.0, 300.0], [320.0, 330.0]],                # a small triangle
    [[0.0, 0.0], [1024.0, 0.0], [1024.0, 768.0], [0.0, 768.0]],      # the whole photo
    [[200.0, 200.0], [800.0, 600.0], [800.0, 200.0], [200.0, 600.0]],  # crossing itself
])
def test_rasterized_where_drawn(drawn):
    """On the lund camera, the mask of the stored polygon is the drawn pixel polygon: every pixel
    whose centre is inside, none outside, except within a pixel of the drawn edges."""
    drawn = np.array(drawn)
    mask = rasterize(LUND, polygon_of_pixels(LUND, drawn, W, H), W, H)
    rows, cols = np.mgrid[0:H, 0:W]
    centres = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])
    far = (off_edges(centres, drawn) > 1.0).reshape(H, W)
    expected = inside_polygon(drawn, centres).reshape(H, W)
    assert np.array_equal(mask[far], expected[far])


@pytest.mark.parametrize("drawn, message", [
    ([[10, 10], [1025, 10], [500, 400]], "corner 1 lies outside the photo"),
    ([[10, 10], [500, -0.5], [500, 400]], "corner 1 lies outside the photo"),
    ([[10, 10], [100, 100], [300, 300]], "no area"),
    ([[10, 10], [10, 10], [10, 10.05]], "no area"),
])
def test_drawn_polygons_that_do_not_fit_are_refused(drawn, message):
    with pytest.raises(ValueError, match=message):
        polygon_of_pixels(LUND, np.array(drawn, float), W, H)


def test_corners_where_the_lens_cannot_be_undone_are_refused():
    """A strong barrel distortion folds back before the image corners: no ray reaches them."""
    barrel = PinholeRadialK1(width=W, height=H, focal_length=500.0, principal_point=(W / 2, H / 2), disto_k1=(-0.4,))
    with pytest.raises(ValueError, match="corner 2 lies where the camera model cannot be undistorted"):
        polygon_of_pixels(barrel, np.array([[500.0, 380.0], [520.0, 380.0], [1020.0, 760.0]]), W, H)


def test_stored_polygons_must_lie_on_the_photo():
    on_photo = angles_of_pixels(LUND, np.array([[100.0, 100.0], [300.0, 100.0], [200.0, 300.0]]))
    check_in_view(LUND, on_photo, W, H)
    behind = on_photo.copy()
    behind[:, 1] = np.mod(behind[:, 1] + math.pi, 2 * math.pi)  # the same angles seen backwards
    with pytest.raises(InputError, match="behind the camera"):
        check_in_view(LUND, behind, W, H)
    aside = on_photo.copy()
    aside[:, 1] += 0.9  # 50° to the right: beyond the photo's edge
    with pytest.raises(InputError, match="outside the photo"):
        check_in_view(LUND, aside, W, H)
