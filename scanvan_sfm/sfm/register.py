"""Registration of anonymized images back into the scene."""

from __future__ import annotations

from pathlib import PurePosixPath

from .models import SfMData


def anonymized_scene(scene: SfMData, outputs: dict[int, str], root_path: str) -> SfMData:
    """The same scene with ``root_path`` and each kept view's path pointing at its anonymized
    image (``outputs``: view id → path relative to ``root_path``). Other views go, with the poses
    and intrinsics nothing else uses (openMVG refuses orphans) and their observations."""
    views = {}
    for key, view in scene.views.items():
        if key in outputs:
            path = PurePosixPath(outputs[key])
            local = "" if str(path.parent) == "." else str(path.parent)
            views[key] = view.model_copy(update={"local_path": local, "filename": path.name})
    poses = {v.id_pose for v in views.values()}
    intrinsics = {v.id_intrinsic for v in views.values()}
    removed = set(scene.views) - set(views)
    return SfMData(
        version=scene.version, root_path=root_path, views=views,
        intrinsics={k: v for k, v in scene.intrinsics.items() if k in intrinsics},
        extrinsics={k: v for k, v in scene.extrinsics.items() if k in poses},
        structure=scene.structure.without_views(removed) if removed else scene.structure,
        control_points=scene.control_points.without_views(removed) if removed else scene.control_points,
    )

