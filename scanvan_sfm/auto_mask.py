"""``anonymize --camera-mask auto`` (the default): the scene's camera rig found in its own
panoramas (``rig``), saved as ``anonymization/camera_mask.png`` (and ``camera_rig.png`` when the
rig turns with the heading), then used as a given ``--camera-mask`` is. Pinhole scenes have no
rig mask; so has a panorama scene where the rig cannot be told, with the reason in the summary.
The estimate is deterministic: a rerun writes nothing new and redoes no view.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import rig
from .dataset import Dataset, sha256_file
from .images import read_reduced
from .runner import run_each
from .settings import AUTO, Settings
from .sfm import SfMData, is_panorama

#: JPEG panoramas are decoded at a reduced scale at least this wide (1/8 of an 8000 px panorama).
DECODE_WIDTH = rig.SIZE[0] * 3 // 4
FIELDS = ("camera_mask", "camera_mask_sha256", "camera_look", "camera_look_sha256")


@dataclass
class AutoMask:
    """What the estimate did, for the summary."""

    seconds: float = 0.0
    views: int = 0            # panoramas compared
    share: float = 0.0        # of each image that is rig
    turned: bool = False      # the rig turns with the heading (panoramas turned to the north)
    path: Path | None = None  # camera_mask.png
    reason: str = ""          # why there is none


def resolve(settings: Settings, scene: SfMData, selected: dict, root: Path, dataset: Dataset,
            workers: int | None = None) -> tuple[Settings, AutoMask | None]:
    """``settings`` with ``camera_mask`` AUTO replaced by the file found (or none), and what was
    done (``None``: nothing to do)."""
    if settings.camera_mask != AUTO:
        if settings.camera_mask is None:
            dataset.remove_camera_mask()  # an earlier run's rig is not this run's
        return settings, None
    none = settings.model_copy(update=dict.fromkeys(FIELDS))
    panoramas = sorted(k for k, view in selected.items() if is_panorama((view.width, view.height)))
    if not panoramas:
        return none, None
    started, note = time.perf_counter(), AutoMask()
    try:
        if len(panoramas) < len(selected):
            raise rig.NoRig(f"{len(selected) - len(panoramas)} of the {len(selected)} views are not panoramas")
        sampled = rig.sample(panoramas)
        paths = [scene.image_path(selected[k], root) for k in sampled]
        decoded = {o.item: o.value for o in run_each(paths, lambda path: read_reduced(path, DECODE_WIDTH), workers)
                   if o.ok}  # an unreadable view fails on its own
        found = rig.estimate([decoded[path] for path in paths if path in decoded])  # in the scene's order
        size = Counter((selected[k].width, selected[k].height) for k in panoramas).most_common(1)[0][0]
        mask, look = dataset.save_camera_mask(rig.full_size(found.mask, size), found.look if found.turned else None)
        note = AutoMask(views=len(sampled), share=found.share, turned=found.turned, path=mask)
        settings = settings.model_copy(update={
            "camera_mask": str(mask.absolute()), "camera_mask_sha256": sha256_file(mask),
            "camera_look": str(look.absolute()) if look else None,
            "camera_look_sha256": sha256_file(look) if look else None})
    except rig.NoRig as exc:
        dataset.remove_camera_mask()
        note.reason, settings = str(exc), none
    note.seconds = time.perf_counter() - started
    return settings, note
