"""End-to-end ``anonymize`` throughput on 6016×3008 street panoramas, 2 cores, default model.

The scene is synthetic (spherical views along a street, scanvan_sfm.sfm.synthetic); its images are
the four shared Amsterdam panoramas resized to 6016×3008 and repeated under distinct names.
Prints panoramas per minute (overall, and from the first finished view on, i.e. without the
workers' start-up), time per stage, peak RSS per worker, the JPEG decode + encode floor, and the
recall of the masks written for the four labelled panoramas (``utility.py``'s core measure on
their labels scaled to 6016×3008), so that speed and quality are read side by side.
Targets (issue #14): ≥ 60 panoramas/min and ≤ 1.5 GB per worker, every labelled core masked.

Usage: python benchmarks/pipeline.py [--panoramas 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
from utility import Labels, load_labels, missed

from scanvan_sfm.dataset import Dataset
from scanvan_sfm.images import Picture, read_image, read_mask, write_image
from scanvan_sfm.pipeline import STAGES, anonymize
from scanvan_sfm.settings import Settings
from scanvan_sfm.sfm.io import write_scene
from scanvan_sfm.sfm.synthetic import synthetic_scene

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def street_scene(folder: Path, panoramas: int) -> Path:
    """``folder/sfm_data.json``: ``panoramas`` spherical views along a street, their images the
    shared Amsterdam panoramas at 6016×3008 (``folder/src<i>.jpg``) under distinct names."""
    (folder / "images").mkdir()
    sources = sorted(SHARED.glob("ams_*.jpg"))
    for i, source in enumerate(sources):
        pano = cv2.resize(read_image(source).pixels, (6016, 3008), interpolation=cv2.INTER_AREA)
        write_image(folder / f"src{i}.jpg", Picture(pano))
    scene = synthetic_scene(panoramas, 2000, width=6016, height=3008)
    for view in scene.views.values():
        source = folder / f"src{view.id_view % len(sources)}.jpg"
        (folder / "images" / view.filename).write_bytes(source.read_bytes())
    write_scene(scene, folder / "sfm_data.json")
    return folder / "sfm_data.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--panoramas", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        street_scene(folder, args.panoramas)
        start = time.perf_counter()
        decoded = read_image(folder / "src0.jpg")
        write_image(folder / "floor.jpg", decoded)
        floor = time.perf_counter() - start
        run = anonymize(folder / "sfm_data.json", folder / "out", Settings(), workers=args.workers)
        misses = recall_misses(folder / "out", sorted(SHARED.glob("ams_*.jpg")))
    done = len(run.done)
    steady = run.wall - (run.first_done or 0.0)
    print(f"{done} panoramas 6016×3008, {args.workers} workers; failed: {len(run.failed)}")
    print(f"overall: {run.wall:.1f} s, {done / run.wall * 60:.1f} panoramas/min (target ≥ 40)")
    print(f"after the first view (workers started): {(done - 1) / steady * 60:.1f} panoramas/min")
    print("seconds per panorama by stage: " + ", ".join(f"{s} {run.seconds.get(s, 0) / done:.2f}" for s in STAGES))
    print(f"peak RSS per worker: {run.worker_peak_mb:.0f} MB (target ≤ 1500)")
    print(f"JPEG decode + encode floor: {floor:.2f} s per panorama")
    print(f"recall at 6016×3008: {misses[1] - len(misses[0])}/{misses[1]} labelled cores masked"
          + "".join(f"\n  missed {box} in {name}: core {share:.0%} masked" for name, box, share in misses[0]))


def recall_misses(out: Path, sources: list[Path]) -> tuple[list[tuple[str, list, float]], int]:
    """The labelled cores the masks of views 0…3 (one per source panorama) leave visible, and how
    many cores there are."""
    labels, scale = load_labels(), 6016 / 8000
    dataset = Dataset(out)
    views = dataset.load_manifest().views
    misses, total = [], 0
    for view_id, source in enumerate(sources):
        boxes = [[v * scale for v in box[:4]] + [box[4]] for box in labels[source.name].boxes]
        mask = read_mask(dataset.anonymization / views[str(view_id)].outputs["mask"])
        misses += [(source.name, [round(v) for v in box[:4]], share)
                   for box, share in missed(mask, Labels(boxes, False))]
        total += len(boxes)
    return misses, total


if __name__ == "__main__":
    main()
