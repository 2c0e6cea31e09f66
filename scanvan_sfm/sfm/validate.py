"""Scene checks: what openMVG enforces on load, and what anonymization needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .models import Landmarks, SfMData

ROTATION_TOLERANCE = 1e-6
NOT_FOUND = "image not found"


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def validate_scene(scene: SfMData, *, images_root: str | Path | None = None,
                   check_images: bool = True) -> list[Problem]:
    """Every problem found, in a stable order; an empty list means valid."""
    problems = _check_ids(scene) + _check_poses(scene)
    for name in ("structure", "control_points"):
        problems += _check_observations(scene, getattr(scene, name), name)
    if check_images:
        problems += _check_images(scene, images_root)
    return problems


def path_warnings(scene: SfMData) -> list[Problem]:
    """Image paths that climb out of the root (``..``) or ignore it (absolute): openMVG reads
    them, but they point outside the image folder (anonymize names its outputs safely anyway)."""
    warnings = []
    for key, view in scene.views.items():
        path = view.image_path.replace("\\", "/")
        if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
            warnings.append(Problem(f"views[key={key}]", f"absolute image path {path!r} (root_path is not used)"))
        elif ".." in path.split("/"):
            warnings.append(Problem(f"views[key={key}]", f"image path {path!r} climbs out of root_path with '..'"))
    return warnings


def relative_root_note(scene: SfMData, scene_path: str | Path, problems: list[Problem]) -> str | None:
    """When images are not found under a relative ``root_path``, which openMVG resolves against
    the current directory, but are all found relative to the scene file: says so, and what to do."""
    missing = sum(_not_found(p) for p in problems)
    beside = Path(scene_path).parent / scene.root_path
    if (not missing or Path(scene.root_path).is_absolute() or beside.absolute() == Path(scene.root_path).absolute()
            or any(_not_found(p) for p in _check_images(scene, beside))):
        return None
    return (f"root_path {scene.root_path!r} is relative: openMVG's tools resolve it against the current "
            f"directory ({Path.cwd()}), where {missing} of {len(scene.views)} images are missing; relative to "
            f"the scene file ({beside}) they are found: run openMVG's tools from {Path(scene_path).parent.absolute()}, "
            f"or write an absolute root_path (scene convert --root)")


def _not_found(problem: Problem) -> bool:
    return problem.message.startswith(NOT_FOUND)


def _check_ids(scene: SfMData) -> list[Problem]:
    problems = []
    for key, view in scene.views.items():
        if view.id_view != key:
            problems.append(Problem(f"views[key={key}]", f"id_view is {view.id_view}"))
        intrinsic = scene.intrinsics.get(view.id_intrinsic)
        if intrinsic and (intrinsic.width, intrinsic.height) != (view.width, view.height):
            problems.append(Problem(
                f"views[key={key}]", f"size {view.width}×{view.height} differs from intrinsic "
                f"{view.id_intrinsic} ({intrinsic.width}×{intrinsic.height})"))
    if scene.views:  # openMVG's ValidIds() runs only when views are loaded
        used_poses = {v.id_pose for v in scene.views.values()}
        used_intrinsics = {v.id_intrinsic for v in scene.views.values()}
        problems += [Problem(f"extrinsics[key={k}]", "no view uses this pose (openMVG refuses orphan poses)")
                     for k in scene.extrinsics if k not in used_poses]
        problems += [Problem(f"intrinsics[key={k}]", "no view uses this intrinsic (openMVG refuses orphan intrinsics)")
                     for k in scene.intrinsics if k not in used_intrinsics]
    return problems


def _check_poses(scene: SfMData) -> list[Problem]:
    problems = []
    for key, pose in scene.extrinsics.items():
        R = pose.R
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(pose.C))):
            problems.append(Problem(f"extrinsics[key={key}]", "non-finite rotation or centre"))
        elif np.abs(R @ R.T - np.eye(3)).max() > ROTATION_TOLERANCE:
            problems.append(Problem(f"extrinsics[key={key}].rotation", "not orthonormal"))
        elif np.linalg.det(R) < 0:
            problems.append(Problem(f"extrinsics[key={key}].rotation", "determinant is -1 (a reflection)"))
    return problems


def _check_observations(scene: SfMData, lm: Landmarks, name: str) -> list[Problem]:
    problems = []
    if len(np.unique(lm.ids)) != len(lm.ids):
        problems.append(Problem(name, "duplicate landmark ids"))
    if not np.all(np.isfinite(lm.X)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(lm.X), axis=1))[0])
        problems.append(Problem(f"{name}[key={lm.ids[bad]}].X", "non-finite coordinates"))
    if not lm.n_observations:
        return problems
    keys = np.array(sorted(scene.views), dtype=np.int64)
    sizes = np.array([(scene.views[k].width, scene.views[k].height) for k in keys], np.float64).reshape(-1, 2)
    posed = np.array([scene.is_reconstructed(scene.views[k]) for k in keys], bool)
    slot = np.searchsorted(keys, lm.obs_view)
    slot_ok = slot < len(keys)
    known = slot_ok.copy()
    known[slot_ok] = keys[slot[slot_ok]] == lm.obs_view[slot_ok]
    owner = lm.obs_landmark()
    first = lambda mask: int(np.flatnonzero(mask)[0])  # noqa: E731
    where = lambda i: f"{name}[key={lm.ids[owner[i]]}].observations[key={lm.obs_view[i]}]"  # noqa: E731
    if not known.all():
        i = first(~known)
        problems.append(Problem(where(i), f"no such view ({int((~known).sum())} observations like this)"))
    s = slot[known]
    unposed = ~posed[s]
    if unposed.any():
        i = np.flatnonzero(known)[first(unposed)]
        problems.append(Problem(where(i), f"view is not reconstructed ({int(unposed.sum())} observations like this)"))
    xy = lm.obs_xy[known]
    outside = ~((xy >= 0).all(axis=1) & (xy[:, 0] <= sizes[s, 0]) & (xy[:, 1] <= sizes[s, 1]))
    if outside.any():
        i = np.flatnonzero(known)[first(outside)]
        problems.append(Problem(where(i), f"point {tuple(lm.obs_xy[i])} outside the image "
                                          f"({int(outside.sum())} observations like this)"))
    return problems


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    with Image.open(path) as img:
        return img.size


def _check_images(scene: SfMData, images_root: str | Path | None) -> list[Problem]:
    problems = []
    for key, view in scene.views.items():
        path = scene.image_path(view, images_root)
        try:
            size = image_size(path)
        except FileNotFoundError:
            problems.append(Problem(f"views[key={key}]", f"{NOT_FOUND}: {path}"))
            continue
        except (OSError, UnidentifiedImageError) as exc:
            problems.append(Problem(f"views[key={key}]", f"unreadable image {path}: {exc}"))
            continue
        if size != (view.width, view.height):
            problems.append(Problem(f"views[key={key}]", f"image {path} is {size[0]}×{size[1]}, "
                                                         f"the view says {view.width}×{view.height}"))
    return problems
