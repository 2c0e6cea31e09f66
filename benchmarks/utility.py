"""What the default anonymization costs the picture and buys in privacy (issue #13's measures).

On the shared labelled Amsterdam panoramas (8000×4000), ``view.anonymize_frame`` with the default
settings, per image in memory:
- waste: the share of masked pixels outside every labelled box, each box grown 15 % per side
  (only on the two completely labelled panoramas, tests/labels/amsterdam_full.json), per panorama
  and of both panoramas' masked pixels together (how the issue gave today's 0.51);
- core recall: a person's core (middle 40 % of the width × 90 % of the height) ≥ 85 % masked, a
  vehicle's or ridden bicycle's core (middle 60 % × 60 %) ≥ 90 %, a plate ≥ 90 %; full labels for
  the two, the source's person and plate labels (../shared/images/labels.json) for the others;
- the masked share of each panorama, and seconds per panorama (one process), beside the JPEG
  decode + encode of the same panorama measured in the same run.
Targets: waste ≤ 0.20, every core covered. The test (tests/test_utility.py) uses these functions.

Usage: python benchmarks/utility.py
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scanvan_sfm import rig
from scanvan_sfm.auto_mask import DECODE_WIDTH
from scanvan_sfm.camera_blur import CameraMasks
from scanvan_sfm.dataset import Dataset
from scanvan_sfm.images import read_image, read_reduced, write_image
from scanvan_sfm.segment import get_segmenter
from scanvan_sfm.settings import AUTO, Settings
from scanvan_sfm.view import anonymize_frame

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "images"
FULL_LABELS = PROJECT / "tests" / "labels" / "amsterdam_full.json"
GROW = 0.15          # each labelled box grows this share of its size per side before waste is counted
TARGET_WASTE = 0.20
#: class → (core width share, core height share, share of the core that must be masked)
CORES = {"person": (0.4, 0.9, 0.85), "vehicle": (0.6, 0.6, 0.90), "bicycle": (0.6, 0.6, 0.90),
         "plate": (1.0, 1.0, 0.90)}

Box = list  # [x0, y0, x1, y1, class]; x1 may pass the width on a panorama's seam


@dataclass
class Labels:
    """One image's labels: the recall set, what else may be masked without waste, and (complete
    labels only) the parked bicycles, which are in neither."""

    boxes: list[Box]
    complete: bool
    uncertain: list[Box] = field(default_factory=list)
    parked_bicycles: list[Box] = field(default_factory=list)


def load_labels() -> dict[str, Labels]:
    """Every labelled shared panorama: complete labels where the fixture has them, else the
    source's person and plate boxes."""
    full = json.loads(FULL_LABELS.read_text())["images"]
    partial = json.loads((SHARED / "labels.json").read_text())["images"]
    labels = {name: Labels(entry["boxes"], True, entry["uncertain"], entry["parked_bicycles"])
              for name, entry in full.items()}
    for name, boxes in partial.items():
        labels.setdefault(name, Labels([b for b in boxes if b[4] in ("person", "plate")], False))
    return dict(sorted(labels.items()))


def paint(target: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> None:
    """Set a box in a panorama-sized array, wrapping across the seam."""
    height, width = target.shape
    rows = slice(max(round(y0), 0), min(max(round(y1), round(y0) + 1), height))
    cols = np.arange(round(x0), max(round(x1), round(x0) + 1)) % width
    target[rows, cols] = True


def _region(mask: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    region = np.zeros(mask.shape, bool)
    paint(region, x0, y0, x1, y1)
    return mask[region]


def core_share(mask: np.ndarray, box: Box) -> float:
    """The masked share of a box's core (``CORES``)."""
    x0, y0, x1, y1, cls = box
    fx, fy, _ = CORES[cls]
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * fx, (y1 - y0) * fy
    return float(_region(mask, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2).mean())


def missed(mask: np.ndarray, labels: Labels) -> list[tuple[Box, float]]:
    """The recall boxes whose core is masked less than their class requires, with the share."""
    shares = [(box, core_share(mask, box)) for box in labels.boxes]
    return [(box, share) for box, share in shares if share < CORES[box[4]][2]]


def waste(mask: np.ndarray, labels: Labels) -> float:
    """The share of masked pixels outside every labelled (or uncertain) box grown by ``GROW``."""
    allowed = np.zeros(mask.shape, bool)
    for x0, y0, x1, y1, *_ in labels.boxes + labels.uncertain:
        gx, gy = GROW * (x1 - x0), GROW * (y1 - y0)
        paint(allowed, x0 - gx, y0 - gy, x1 + gx, y1 + gy)
    masked = int(mask.sum())
    return float((mask & ~allowed).sum() / masked) if masked else 0.0


def scene_cameras(names: list[str], settings: Settings, folder: Path) -> CameraMasks | None:
    """The camera masks ``anonymize`` would use with ``settings`` on a scene of these panoramas:
    with ``auto`` (the default), the rig found in them, saved in ``folder`` as the pipeline does."""
    if settings.camera_mask != AUTO:
        return CameraMasks(settings.camera_mask) if settings.camera_mask else None
    found = rig.estimate([read_reduced(SHARED / name, DECODE_WIDTH) for name in names])
    mask, look = Dataset(folder).save_camera_mask(rig.full_size(found.mask, (8000, 4000)),
                                                  found.look if found.turned else None)
    return CameraMasks(mask, look)


def default_mask(pixels: np.ndarray, segmenter, settings: Settings, cameras: CameraMasks | None) -> np.ndarray:
    """The mask the pipeline fills this panorama with under ``settings`` (no report layers)."""
    done = anonymize_frame(pixels, segmenter, mask_mode=settings.mask_mode, guarded=settings.guarded,
                           fill_mode=settings.fill, camera=cameras.for_view(pixels) if cameras else None)
    return done.mask


@dataclass
class Measured:
    name: str
    labels: Labels
    masked_share: float
    waste: float | None
    missed: list[tuple[Box, float]]
    seconds: float
    floor: float   # JPEG decode + encode of the same panorama


def measure(name: str, labels: Labels, segmenter, settings: Settings, cameras: CameraMasks | None,
            scratch: Path) -> Measured:
    start = time.perf_counter()
    picture = read_image(SHARED / name)
    write_image(scratch / name, picture)
    floor = time.perf_counter() - start
    start = time.perf_counter()
    mask = default_mask(picture.pixels, segmenter, settings, cameras)
    seconds = time.perf_counter() - start
    return Measured(name, labels, float(mask.mean()), waste(mask, labels) if labels.complete else None,
                    missed(mask, labels), seconds, floor)


def report(results: list[Measured]) -> None:
    print(f"{'panorama':46} {'labels':>9} {'masked':>7} {'waste':>6} {'missed':>7} {'s':>6} {'floor s':>8} "
          f"{'ratio':>6}")
    for r in results:
        kind = "complete" if r.labels.complete else "partial"
        waste_text = f"{r.waste:6.2f}" if r.waste is not None else f"{'-':>6}"
        print(f"{r.name:46} {kind:>9} {r.masked_share:7.1%} {waste_text} {len(r.missed):7d} "
              f"{r.seconds:6.1f} {r.floor:8.2f} {r.seconds / r.floor:6.1f}")
    complete = [r for r in results if r.waste is not None]
    pooled = sum(r.waste * r.masked_share for r in complete) / sum(r.masked_share for r in complete)  # same sizes
    print(f"\nwaste on the complete labels: {', '.join(f'{r.waste:.2f}' for r in complete)}; "
          f"of all their masked pixels {pooled:.2f} (target ≤ {TARGET_WASTE:.2f})")
    print("core recall (target: every one, 100 %):")
    for cls in CORES:
        total = sum(b[4] == cls for r in results for b in r.labels.boxes)
        misses = [(r.name, box, share) for r in results for box, share in r.missed if box[4] == cls]
        if total:
            print(f"  {cls:8} {total - len(misses):3d}/{total:<3d} {(total - len(misses)) / total:6.1%}")
        for name, box, share in misses:
            print(f"      missed {box[:4]} in {name}: core {share:.0%} masked")
    seconds = [r.seconds for r in results]
    print(f"seconds per panorama: median {np.median(seconds):.1f} "
          f"({np.median([r.seconds / r.floor for r in results]):.1f}× the JPEG decode + encode)")


def main() -> None:
    settings = Settings()
    segmenter = get_segmenter(settings.model, classes=settings.classes, silhouettes=settings.silhouettes)
    labels = load_labels()
    print(f"default settings: model {settings.model}, silhouettes {settings.silhouettes}, mask {settings.mask_mode}, "
          f"fill {settings.fill}, camera mask {settings.camera_mask or 'none'}; {len(labels)} labelled panoramas")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        cameras = scene_cameras(list(labels), settings, Path(tmp))
        print(f"camera mask estimated in {time.perf_counter() - started:.1f} s")
        default_mask(read_image(SHARED / next(iter(labels))).pixels, segmenter, settings, cameras)  # warm-up
        report([measure(name, entry, segmenter, settings, cameras, Path(tmp)) for name, entry in labels.items()])


if __name__ == "__main__":
    main()
