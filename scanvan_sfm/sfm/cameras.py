"""openMVG camera models, vectorized: projection of world points and bearings of pixels.

Formulas follow openMVG's ``Camera_Spherical``, ``Camera_Pinhole*`` (radial K1/K3, Brown T2,
fisheye). Poses map world to camera as ``X_cam = R · (X − C)``; camera axes x right, y down,
z forward.
"""

import numpy as np

from .models import Fisheye, Pinhole, PinholeBrownT2, Pose, Spherical

TWO_PI = 2.0 * np.pi


def world_to_camera(pose: Pose, X: np.ndarray) -> np.ndarray:
    return (np.asarray(X, np.float64) - pose.C) @ pose.R.T


def camera_to_world(pose: Pose, Xc: np.ndarray) -> np.ndarray:
    return np.asarray(Xc, np.float64) @ pose.R + pose.C


def project(intrinsic: Pinhole | Spherical, pose: Pose, X: np.ndarray) -> np.ndarray:
    """Pixel coordinates (n, 2) of world points (n, 3) in a posed camera."""
    return project_camera(intrinsic, world_to_camera(pose, X))


def project_camera(intrinsic: Pinhole | Spherical, Xc: np.ndarray) -> np.ndarray:
    """Pixel coordinates of camera-frame points."""
    Xc = np.atleast_2d(np.asarray(Xc, np.float64))
    if isinstance(intrinsic, Spherical):
        size = max(intrinsic.width, intrinsic.height)
        lon = np.arctan2(Xc[:, 0], Xc[:, 2])
        lat = np.arctan2(-Xc[:, 1], np.hypot(Xc[:, 0], Xc[:, 2]))
        return np.column_stack([lon / TWO_PI * size + intrinsic.width / 2.0,
                                -lat / TWO_PI * size + intrinsic.height / 2.0])
    normalized = Xc[:, :2] / Xc[:, 2:3]
    return intrinsic.focal_length * add_distortion(intrinsic, normalized) + intrinsic.principal_point


def bearings(intrinsic: Pinhole | Spherical, uv: np.ndarray) -> np.ndarray:
    """Unit camera-frame rays (n, 3) through pixels (n, 2)."""
    uv = np.atleast_2d(np.asarray(uv, np.float64))
    if isinstance(intrinsic, Spherical):
        size = max(intrinsic.width, intrinsic.height)
        lon = TWO_PI * (uv[:, 0] - intrinsic.width / 2.0) / size
        lat = -TWO_PI * (uv[:, 1] - intrinsic.height / 2.0) / size
        return np.column_stack([np.cos(lat) * np.sin(lon), -np.sin(lat), np.cos(lat) * np.cos(lon)])
    distorted = (uv - intrinsic.principal_point) / intrinsic.focal_length
    rays = np.column_stack([remove_distortion(intrinsic, distorted), np.ones(len(uv))])
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _distortion_offset(intrinsic: Pinhole, p: np.ndarray) -> np.ndarray:
    """openMVG's ``distoFunction``: the offset added to normalized point ``p``."""
    k = intrinsic.distortion
    r2 = np.sum(p * p, axis=1, keepdims=True)
    radial = k[0] * r2
    if len(k) >= 3:
        radial = radial + k[1] * r2**2 + k[2] * r2**3
    offset = p * radial
    if isinstance(intrinsic, PinholeBrownT2):
        t1, t2 = k[3], k[4]
        x, y = p[:, :1], p[:, 1:]
        offset = offset + np.hstack([t2 * (r2 + 2 * x * x) + 2 * t1 * x * y,
                                     t1 * (r2 + 2 * y * y) + 2 * t2 * x * y])
    return offset


def add_distortion(intrinsic: Pinhole, p: np.ndarray) -> np.ndarray:
    if not intrinsic.distortion:
        return p
    if isinstance(intrinsic, Fisheye):
        k1, k2, k3, k4 = intrinsic.fisheye
        r = np.hypot(p[:, 0], p[:, 1])
        t = np.arctan(r)
        t_dist = t * (1 + k1 * t**2 + k2 * t**4 + k3 * t**6 + k4 * t**8)
        scale = np.where(r > 1e-8, t_dist / np.where(r > 1e-8, r, 1.0), 1.0)
        return p * scale[:, None]
    return p + _distortion_offset(intrinsic, p)


def remove_distortion(intrinsic: Pinhole, p: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Inverse of :func:`add_distortion` by fixed-point iteration (openMVG's Brown scheme)."""
    if not intrinsic.distortion:
        return p
    if isinstance(intrinsic, Fisheye):
        k = intrinsic.fisheye
        t_dist = np.hypot(p[:, 0], p[:, 1])
        t = t_dist.copy()
        for _ in range(10):
            t2 = t * t
            t = t_dist / (1 + k[0] * t2 + k[1] * t2**2 + k[2] * t2**3 + k[3] * t2**4)
        scale = np.where(t_dist > 1e-8, np.tan(t) / np.where(t_dist > 1e-8, t_dist, 1.0), 1.0)
        return p * scale[:, None]
    undistorted = p.copy()
    for _ in range(iterations):
        undistorted = p - _distortion_offset(intrinsic, undistorted)
    return undistorted
