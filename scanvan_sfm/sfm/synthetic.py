"""Geometrically consistent synthetic scenes of any size, for tests and benchmarks.

Cameras drive along a street; every landmark is seen by 3–6 neighbouring cameras and its
observations are its exact projections, so camera-model checks can be run on them.
"""

from __future__ import annotations

import numpy as np

from .cameras import bearings, project_camera
from .models import Landmarks, PinholeRadialK3, Pose, SfMData, Spherical, ViewPriors

#: ECEF of a street in Lausanne, the origin of the synthetic GPS priors.
ECEF_ORIGIN = np.array([4_365_000.0, 502_000.0, 4_602_000.0])


def _rotation(yaw: float) -> tuple:
    """World→camera rotation of a camera looking along +x turned by ``yaw`` (z world up)."""
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    right = np.cross(down, forward)
    return tuple(tuple(row) for row in np.array([right, down, forward]))


def synthetic_scene(n_views: int = 20, n_landmarks: int = 1000, *, camera: str = "spherical",
                    width: int = 5376, height: int = 2688, seed: int = 0,
                    root_path: str = "images") -> SfMData:
    """A posed scene: ``camera`` is ``spherical`` or ``pinhole`` (radial K3)."""
    rng = np.random.default_rng(seed)
    intrinsic: Spherical | PinholeRadialK3
    if camera == "spherical":
        intrinsic = Spherical(width=width, height=height)
    else:
        intrinsic = PinholeRadialK3(width=width, height=height, focal_length=0.8 * width,
                                    principal_point=(width / 2 + 3.5, height / 2 - 2.25),
                                    disto_k3=(-0.05, 0.01, -0.001))
    spacing = 3.0
    centres = np.column_stack([np.arange(n_views) * spacing, rng.normal(0, 0.2, n_views),
                               2.5 + rng.normal(0, 0.05, n_views)])
    yaws = rng.normal(0, 0.05, n_views)
    scene = SfMData(root_path=root_path, intrinsics={0: intrinsic})
    for i in range(n_views):
        pose = Pose(rotation=_rotation(yaws[i]), center=tuple(centres[i]))
        scene.extrinsics[i] = pose
        scene.views[i] = ViewPriors(
            local_path="", filename=f"pano_{i:06d}.jpg", width=width, height=height, id_view=i,
            id_intrinsic=0, id_pose=i, use_pose_center_prior=True, center_weight=(1.0, 1.0, 1.0),
            center=tuple(ECEF_ORIGIN + centres[i] + rng.normal(0, 0.5, 3)))
    scene.structure = _landmarks(scene, n_landmarks, rng)
    return scene


def _landmarks(scene: SfMData, n: int, rng: np.random.Generator) -> Landmarks:
    """Landmarks seen from a reference view, observed by it and the views that follow it."""
    intrinsic = scene.intrinsics[0]
    poses = list(scene.extrinsics.values())
    n_views = len(poses)
    R = np.stack([p.R for p in poses])
    C = np.stack([p.C for p in poses])
    track = rng.integers(3, 7, n)
    track = np.minimum(track, n_views)
    first = rng.integers(0, np.maximum(n_views - track + 1, 1))
    margin = np.array([intrinsic.width, intrinsic.height]) * 0.1
    ref_uv = margin + rng.random((n, 2)) * (np.array([intrinsic.width, intrinsic.height]) - 2 * margin)
    ref = first + rng.integers(0, track)
    depth = rng.uniform(20.0, 40.0, n)
    rays = bearings(intrinsic, ref_uv)
    if isinstance(intrinsic, Spherical):
        X = C[ref] + np.einsum("nij,ni->nj", R[ref], rays) * depth[:, None]
    else:  # look far ahead so that the following cameras see the point too
        ref = first
        X = C[ref] + np.einsum("nij,ni->nj", R[ref], rays / rays[:, 2:3]) * (depth + 3.0 * track)[:, None]
    view = np.repeat(first, track) + np.arange(track.sum()) - np.repeat(np.cumsum(track) - track, track)
    owner = np.repeat(np.arange(n), track)
    Xc = np.einsum("nij,nj->ni", R[view], X[owner] - C[view])
    xy = project_camera(intrinsic, Xc)
    inside = (xy >= 0).all(axis=1) & (xy[:, 0] < intrinsic.width) & (xy[:, 1] < intrinsic.height)
    if not isinstance(intrinsic, Spherical):
        inside &= Xc[:, 2] > 0
    counts = np.bincount(owner[inside], minlength=n)
    keep = counts >= 2
    inside &= keep[owner]
    ids = np.cumsum(rng.integers(1, 4, n)).astype(np.uint32)[keep]
    offsets = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
    return Landmarks(ids=ids, X=X[keep], obs_offsets=offsets,
                     obs_view=view[inside].astype(np.uint32),
                     obs_feat=rng.integers(0, 20000, int(inside.sum())).astype(np.uint32),
                     obs_xy=xy[inside])
