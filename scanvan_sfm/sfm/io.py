"""Scene files by extension (``.json`` or ``.bin``, as openMVG chooses), with part selection."""

from __future__ import annotations

from collections import Counter
from enum import IntFlag
from pathlib import Path

from ..errors import InputError
from .bin_io import read_bin, read_bin_counts, write_bin
from .json_io import read_json, write_json
from .models import Landmarks, SfMData


class Parts(IntFlag):
    """openMVG's ``ESfM_Data`` flags."""

    VIEWS = 1
    EXTRINSICS = 2
    INTRINSICS = 4
    STRUCTURE = 8
    CONTROL_POINTS = 16
    ALL = 31


_READERS = {".json": read_json, ".bin": read_bin}
_WRITERS = {".json": write_json, ".bin": write_bin}


def _format(path: Path, table: dict) -> str:
    if path.suffix not in table:
        raise InputError(f"{path}: unknown scene format {path.suffix!r} (use .json or .bin)")
    return path.suffix


def images_root(scene: SfMData, scene_path: str | Path, override: str | Path | None = None) -> Path:
    """The folder the views' paths are relative to.

    ``override`` wins; a relative ``root_path`` is taken from the current directory as openMVG
    does, or, when no such folder exists there, from the scene file's folder.
    """
    if override is not None:
        return Path(override)
    root = Path(scene.root_path)
    if root.is_absolute() or root.is_dir():
        return root
    beside = Path(scene_path).parent / root
    return beside if beside.is_dir() else root


def read_scene(path: str | Path, *, structure: bool = True) -> SfMData:
    """Read a scene; ``structure=False`` skips the landmarks (a ``.bin`` stops reading early)."""
    path = Path(path)
    return _READERS[_format(path, _READERS)](path, structure=structure)


def select_parts(scene: SfMData, parts: Parts) -> SfMData:
    """The scene with unselected parts emptied, as openMVG's ``Save(…, flags)`` writes it."""
    return SfMData(
        version=scene.version, root_path=scene.root_path,
        views=scene.views if Parts.VIEWS in parts else {},
        intrinsics=scene.intrinsics if Parts.INTRINSICS in parts else {},
        extrinsics=scene.extrinsics if Parts.EXTRINSICS in parts else {},
        structure=scene.structure if Parts.STRUCTURE in parts else Landmarks(),
        control_points=scene.control_points if Parts.CONTROL_POINTS in parts else Landmarks(),
    )


def write_scene(scene: SfMData, path: str | Path, parts: Parts = Parts.ALL) -> None:
    """Write a scene atomically in the format of the extension."""
    path = Path(path)
    _WRITERS[_format(path, _WRITERS)](select_parts(scene, parts), path)


def convert_scene(src: str | Path, dst: str | Path, parts: Parts = Parts.ALL,
                  root: str | None = None) -> SfMData:
    """``ConvertSfM_DataFormat``: read ``src``, write the selected parts to ``dst``."""
    needs_structure = bool(parts & (Parts.STRUCTURE | Parts.CONTROL_POINTS))
    scene = read_scene(src, structure=needs_structure)
    if root is not None:
        scene.root_path = root
    write_scene(scene, dst, parts)
    return scene


def scene_info(path: str | Path) -> dict:
    """What ``scene info`` shows: the counts of views, reconstructed views, intrinsics by type,
    poses, landmarks and observations. A ``.bin``'s landmarks are walked, not read."""
    path = Path(path)
    if path.suffix == ".bin":
        scene, counts = read_bin_counts(path)
    else:
        scene = read_scene(path)
        counts = {name: len(getattr(scene, name)) for name in ("structure", "control_points")}
        counts |= {f"{name}_observations": getattr(scene, name).n_observations
                   for name in ("structure", "control_points")}
    unposed = [k for k, v in scene.views.items() if not scene.is_reconstructed(v)]
    return {
        "file": str(path), "version": scene.version, "root_path": scene.root_path,
        "views": len(scene.views), "reconstructed_views": len(scene.views) - len(unposed),
        "unreconstructed_view_ids": unposed,
        "intrinsics": dict(Counter(i.type for i in scene.intrinsics.values())),
        "poses": len(scene.extrinsics),
        "landmarks": counts["structure"], "observations": counts["structure_observations"],
        "control_points": counts["control_points"],
    }
