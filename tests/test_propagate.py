"""Propagation between panoramas and photos, on a small constructed scene: a panorama A and two
pinhole cameras with lund's lens distortion, one looking at a cluster of points that A sees, one
looking away."""

from __future__ import annotations

import numpy as np

from scanvan_sfm.reports.layers import polygon_mask, render
from scanvan_sfm.reports.photo import polygon_of_pixels
from scanvan_sfm.reports.propagate import propagate
from scanvan_sfm.reports.spherical import pixels_to_angles, rasterize
from scanvan_sfm.sfm.cameras import project
from scanvan_sfm.sfm.models import Landmarks, PinholeRadialK3, Pose, SfMData, Spherical, View

PANO = (2048, 1024)


def look_at(centre, target) -> Pose:
    forward = np.asarray(target, float) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return Pose(rotation=tuple(tuple(r) for r in (right, down, forward)), center=tuple(centre))


def scene_with(points: np.ndarray) -> SfMData:
    """View 0: panorama at the origin; view 1: pinhole looking at the points; view 2: pinhole
    looking the other way. Observations are the exact projections, where a camera sees them."""
    spherical = Spherical(width=PANO[0], height=PANO[1])
    pinhole = PinholeRadialK3(width=1000, height=800, focal_length=900.0, principal_point=(500.0, 400.0),
                              disto_k3=(0.21, -0.43, 0.61))
    poses = {0: look_at(np.zeros(3), np.array([1.0, 0.0, 0.0])),
             1: look_at(np.array([2.0, -3.0, 0.5]), points.mean(axis=0)),
             2: look_at(np.array([2.0, -3.0, 0.5]), np.array([-20.0, 0.0, 0.0]))}
    intrinsics = {0: spherical, 1: pinhole}
    views = {i: View(local_path="", filename=f"{i}.jpg", width=c.width, height=c.height, id_view=i,
                     id_intrinsic=0 if i == 0 else 1, id_pose=i)
             for i, c in ((0, spherical), (1, pinhole), (2, pinhole))}
    obs_view, obs_xy, counts = [], [], []
    for X in points:
        n = 0
        for i in range(3):
            camera, pose = intrinsics[views[i].id_intrinsic], poses[i]
            xy = project(camera, pose, X[None])[0]
            in_front = isinstance(camera, Spherical) or (pose.R @ (X - pose.C))[2] > 0
            if in_front and 0 <= xy[0] < camera.width and 0 <= xy[1] < camera.height:
                obs_view.append(i)
                obs_xy.append(xy)
                n += 1
        counts.append(n)
    structure = Landmarks(ids=np.arange(len(points), dtype=np.uint32), X=points,
                          obs_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                          obs_view=np.array(obs_view, np.uint32), obs_feat=np.zeros(len(obs_view), np.uint32),
                          obs_xy=np.array(obs_xy))
    return SfMData(views=views, intrinsics=intrinsics, extrinsics=poses, structure=structure)


def polygon_around(scene: SfMData, xy: np.ndarray, half: float) -> np.ndarray:
    corners = xy + np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    return pixels_to_angles(corners, *PANO)


rng = np.random.default_rng(3)
CLUSTER = np.array([10.0, 0.0, 0.0]) + rng.normal(0, 0.3, (40, 3))


def test_landmarks_reach_the_pinhole_camera_that_sees_them():
    scene = scene_with(CLUSTER)
    centre = project(scene.intrinsics[0], scene.extrinsics[0], CLUSTER.mean(axis=0)[None])[0]
    polygon = polygon_around(scene, centre, 60)
    result = propagate(scene, 0, polygon, rasterize(polygon, *PANO))
    assert result.method == "landmarks" and result.landmarks_inside >= 30
    assert [r.view_id for r in result.regions] == [1]  # view 2 looks away
    layer = render([result.regions[0]], scene.intrinsics[1], 1000, 800)
    observed = scene.structure.obs_xy[scene.structure.obs_view == 1]
    assert layer[observed[:, 1].astype(int), observed[:, 0].astype(int)].all()


def test_rays_reach_the_pinhole_camera_when_no_landmark_is_inside():
    scene = scene_with(CLUSTER)
    target = np.array([10.0, 1.6, 0.0])  # beside the cluster, at its depth: no landmark there
    xy = project(scene.intrinsics[0], scene.extrinsics[0], target[None])[0]
    polygon = polygon_around(scene, xy, 15)
    result = propagate(scene, 0, polygon, rasterize(polygon, *PANO))
    assert result.method == "rays" and result.landmarks_inside < 3
    (region,) = result.regions
    assert region.view_id == 1 and region.kind == "rays"
    layer = render([region], scene.intrinsics[1], 1000, 800)
    where = project(scene.intrinsics[1], scene.extrinsics[1], target[None])[0].astype(int)
    assert layer[where[1], where[0]]
    assert layer.mean() < 0.2  # an outline of the polygon, not the whole frame


def drawn_around(scene: SfMData, target: np.ndarray, half: float) -> np.ndarray:
    """A square drawn on the photo (view 1) around a point's pixel, stored as directions."""
    xy = project(scene.intrinsics[1], scene.extrinsics[1], target[None])[0]
    return polygon_of_pixels(scene.intrinsics[1], xy + np.array([[-half, -half], [half, -half], [half, half],
                                                                 [-half, half]]), 1000, 800)


def test_a_report_on_a_photo_reaches_the_panorama_through_the_landmarks():
    scene = scene_with(CLUSTER)
    polygon = drawn_around(scene, CLUSTER.mean(axis=0), 150)
    result = propagate(scene, 1, polygon, polygon_mask(scene.intrinsics[1], polygon, 1000, 800))
    assert result.method == "landmarks" and result.landmarks_inside >= 30
    (region,) = result.regions
    assert region.view_id == 0  # view 2 looks away
    layer = render([region], scene.intrinsics[0], *PANO)
    observed = scene.structure.obs_xy[scene.structure.obs_view == 0]
    assert layer[observed[:, 1].astype(int), observed[:, 0].astype(int)].mean() >= 0.95


def test_a_report_on_a_photo_reaches_the_panorama_by_rays():
    scene = scene_with(CLUSTER)
    centre = scene.extrinsics[1].C
    aside = CLUSTER.mean(axis=0) + [0.0, 1.6, 0.0] - centre
    target = centre + aside / np.linalg.norm(aside) * np.linalg.norm(CLUSTER.mean(axis=0) - centre)
    polygon = drawn_around(scene, target, 20)  # beside the cluster, at its depth from the photo: no landmark there
    result = propagate(scene, 1, polygon, polygon_mask(scene.intrinsics[1], polygon, 1000, 800))
    assert result.method == "rays" and result.landmarks_inside < 3
    (region,) = result.regions
    assert region.view_id == 0 and region.angles is not None
    layer = render([region], scene.intrinsics[0], *PANO)
    where = project(scene.intrinsics[0], scene.extrinsics[0], target[None])[0].astype(int)
    assert layer[where[1], where[0]]
    assert layer.mean() < 0.01  # the polygon's outline, not a band of the panorama
