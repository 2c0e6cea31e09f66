"""``scanvan-sfm regress``: run the pipeline on a sample scene and compare with golden outputs.

Golden folder: ``masks/<key>-mask.png`` per view, ``mapping.json`` (view → source and output
names) and ``sfm_data_anonymized.bin``, whose root_path is relative (``blur``): the run's own is
absolute, in a temporary folder, so it is compared as ``--relative-root`` would have written it,
after checking that it names the run's published folder. The run writes PNG, so the pixels
outside each mask must equal the source's exactly.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from .atomic import atomic_output
from .dataset import Dataset, Manifest
from .errors import InputError
from .images import read_image, read_mask
from .pipeline import anonymize
from .settings import Settings
from .sfm import SfMData, read_scene, write_scene

GOLDEN_SCENE = "sfm_data_anonymized.bin"


@dataclass
class ViewCheck:
    view: int
    iou: float
    outside_identical: bool
    mapping_equal: bool

    def passed(self, min_iou: float) -> bool:
        return self.iou >= min_iou and self.outside_identical and self.mapping_equal


def _mapping(manifest: Manifest) -> dict[str, dict]:
    return {k: {"source": v.source, "mask": v.outputs["mask"], "output": v.outputs["output"]}
            for k, v in manifest.views.items() if v.status == "done"}


def regress(scene: Path, golden: Path, update: bool = False, workers: int | None = None,
            settings: Settings | None = None) -> tuple[list[ViewCheck], bool, list[str]]:
    """(per-view checks, registered scene equal, problems); with ``update``, rewrite the golden."""
    settings = settings or Settings(out_format="png")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run = anonymize(scene, out, settings, workers=workers)
        problems = [f"view {k}: {reason}" for k, reason in sorted(run.failed.items())]
        dataset = Dataset(out)
        manifest = dataset.load_manifest()
        mapping = _mapping(manifest)
        registered = read_scene(dataset.scene_paths()[1])
        if not Path(registered.root_path).is_absolute():
            problems.append(f"the registered scene's root_path {registered.root_path!r} is not absolute")
        registered = dataset.portable(registered)
        if update:
            _write_golden(golden, out, mapping, registered)
        if not (golden / "mapping.json").is_file():
            raise InputError(f"{golden}: no golden outputs (run with --update to create them)")
        expected = orjson.loads((golden / "mapping.json").read_bytes())
        checks = []
        for view, entry in sorted(expected.items(), key=lambda kv: int(kv[0])):
            ours = mapping.get(view)
            if ours is None:
                checks.append(ViewCheck(int(view), 0.0, False, False))
                continue
            mask = read_mask(out / "anonymization" / ours["mask"])
            iou = _iou(mask, read_mask(golden / entry["mask"]))
            source = read_image(Path(manifest.views[view].source_path)).pixels
            output = read_image(out / "anonymization" / ours["output"]).pixels
            checks.append(ViewCheck(int(view), iou, bool(np.array_equal(output[~mask], source[~mask])), ours == entry))
        problems += [f"view {k}: not in the golden outputs" for k in mapping if k not in expected]
        scene_equal = registered.equal_by_id(read_scene(golden / GOLDEN_SCENE))
    return checks, scene_equal, problems


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 0.0
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _write_golden(golden: Path, out: Path, mapping: dict, registered: SfMData) -> None:
    golden.mkdir(parents=True, exist_ok=True)
    for entry in mapping.values():
        target = golden / entry["mask"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "anonymization" / entry["mask"], target)
    write_scene(registered, golden / GOLDEN_SCENE)
    with atomic_output(golden / "mapping.json") as f:
        f.write(orjson.dumps(mapping, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
