"""Carry a report on one view to the other views that see the same thing, through the SfM scene.

For a report polygon on view A: the landmarks whose observations in A fall inside it are looked
up in every other reconstructed view B; B gets the convex hull of their observations there,
grown by a margin scaled with the polygon's angular size. When too few landmarks fall inside,
the polygon's rays are cast from A's centre at the depth of the landmarks nearest to it, and the
resulting 3D outline is projected into the views that observe those landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..dataset import Region
from ..sfm import SfMData
from ..sfm.cameras import camera_to_world, project, world_to_camera
from ..sfm.models import Pinhole, Spherical
from .photo import angles_of_pixels
from .spherical import angles_of, camera_rays, cap, directions, pixels_to_angles

MIN_LANDMARKS = 3          # fewer inside the polygon: cast rays instead
NEAREST_LANDMARKS = 10     # the landmarks whose depth the rays take
MARGIN_SCALE = 0.25        # hull margin = this × the polygon's angular radius, in the view's pixels
MIN_MARGIN_PX = 8
EDGE_STEPS = 8             # points per polygon edge when casting rays (edges are arcs)


@dataclass
class Propagation:
    regions: list[Region] = field(default_factory=list)
    method: str = "none"
    landmarks_inside: int = 0


def propagate(scene: SfMData, view_id: int, polygon: np.ndarray, inside: np.ndarray) -> Propagation:
    """Regions in the other views for a polygon (pitch, yaw corners) on ``view_id`` (a panorama
    or a photo) whose rasterized mask is ``inside``."""
    structure = scene.structure
    owner = structure.obs_landmark()
    in_view = np.flatnonzero(structure.obs_view == view_id)
    xy = np.floor(structure.obs_xy[in_view]).astype(np.int64)
    height, width = inside.shape
    valid = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    hit = np.zeros(len(in_view), bool)
    hit[valid] = inside[xy[valid, 1], xy[valid, 0]]
    landmarks = np.unique(owner[in_view[hit]])
    result = Propagation(landmarks_inside=len(landmarks))
    _, radius = cap(polygon)
    if len(landmarks) >= MIN_LANDMARKS:
        result.method = "landmarks"
        result.regions = _hulls(scene, view_id, landmarks, owner, radius)
    else:
        result.method = "rays"
        result.regions = _rays(scene, view_id, polygon, owner, in_view)
    return result


def _others(scene: SfMData, view_id: int) -> dict:
    return {k: v for k, v in sorted(scene.reconstructed_views().items()) if k != view_id}


def _hulls(scene: SfMData, view_id: int, landmarks: np.ndarray, owner: np.ndarray, radius: float) -> list[Region]:
    structure = scene.structure
    chosen = np.isin(owner, landmarks)
    regions = []
    for other, view in _others(scene, view_id).items():
        seen = chosen & (structure.obs_view == other)
        points = structure.obs_xy[seen]
        if len(points) == 0:
            continue
        intrinsic = scene.intrinsics[view.id_intrinsic]
        if isinstance(intrinsic, Spherical):
            points = _unwrap(points, view.width)
            margin = max(MIN_MARGIN_PX, int(np.ceil(MARGIN_SCALE * radius * view.width / (2 * np.pi))))
        else:
            margin = max(MIN_MARGIN_PX, int(np.ceil(MARGIN_SCALE * np.tan(radius) * intrinsic.focal_length)))
        regions.append(Region(view_id=other, kind="landmarks", pixels=_hull(points).tolist(), margin=margin,
                              landmarks=len(np.unique(owner[seen]))))
    return regions


def _unwrap(points: np.ndarray, width: int) -> np.ndarray:
    """x moved by ±width so that points around the seam stay together (centred on their mean yaw)."""
    yaw = points[:, 0] * 2 * np.pi / width
    mean = np.arctan2(np.sin(yaw).mean(), np.cos(yaw).mean()) % (2 * np.pi)
    shift = (yaw - mean + np.pi) % (2 * np.pi) - np.pi
    return np.column_stack([(mean + shift) * width / (2 * np.pi), points[:, 1]])


def _hull(points: np.ndarray) -> np.ndarray:
    import cv2

    if len(points) < 3:
        return points
    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _rays(scene: SfMData, view_id: int, polygon: np.ndarray, owner: np.ndarray, in_view: np.ndarray) -> list[Region]:
    """Cast the polygon's outline at the depth of the landmarks nearest to it in direction."""
    structure = scene.structure
    if len(in_view) == 0:
        return []
    view = scene.views[view_id]
    intrinsic, pose = scene.intrinsics[view.id_intrinsic], scene.extrinsics[view.id_pose]
    centre, _ = cap(polygon)
    seen = owner[in_view]
    observed = _angles_of_pixels(intrinsic, structure.obs_xy[in_view], view.width, view.height)
    closeness = directions(observed[:, 0], observed[:, 1]) @ centre
    nearest = np.unique(seen[np.argsort(-closeness)[:NEAREST_LANDMARKS]])
    depth = float(np.median(np.linalg.norm(structure.X[nearest] - pose.C, axis=1)))
    points = camera_to_world(pose, camera_rays(_densify(polygon)) * depth)
    chosen = np.isin(owner, nearest)
    regions = []
    for other, other_view in _others(scene, view_id).items():
        if not np.any(chosen & (structure.obs_view == other)):
            continue
        other_intrinsic, other_pose = scene.intrinsics[other_view.id_intrinsic], scene.extrinsics[other_view.id_pose]
        if isinstance(other_intrinsic, Spherical):
            xy = project(other_intrinsic, other_pose, points)
            regions.append(Region(view_id=other, kind="rays", angles=pixels_to_angles(xy, other_view.width,
                                                                          other_view.height).tolist()))
        else:
            front = world_to_camera(other_pose, points)[:, 2] > 0
            if front.sum() >= 3:
                xy = project(other_intrinsic, other_pose, points[front])
                regions.append(Region(view_id=other, kind="rays", pixels=_hull(xy).tolist(), margin=MIN_MARGIN_PX))
    return regions


def _angles_of_pixels(intrinsic: Pinhole | Spherical, xy: np.ndarray, width: int, height: int) -> np.ndarray:
    if isinstance(intrinsic, Spherical):
        return pixels_to_angles(xy, width, height)
    return angles_of_pixels(intrinsic, xy)


def _densify(polygon: np.ndarray) -> np.ndarray:
    """Corners plus points along each great-circle edge, as (pitch, yaw)."""
    corners = directions(polygon[:, 0], polygon[:, 1])
    points = []
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        for t in np.linspace(0.0, 1.0, EDGE_STEPS, endpoint=False):
            p = (1 - t) * a + t * b
            points.append(p / np.linalg.norm(p))
    return angles_of(np.array(points))
