"""Which silhouette model: selfie against RVM on the labelled persons of the shared panoramas.

For each labelled person (the source's labels.json and tests/labels/amsterdam_full.json, 8000×4000
panoramas) the silhouette of its labelled box, as ``segment.silhouette`` makes it. Printed per
model: how many persons get a silhouette (the others keep their box), how many of those cover
the person's core (middle 40 % × 90 % of the box) to 85 % on their own, the silhouette's area
against the box's, and milliseconds per person. The box (``none``) is the baseline: it covers
every core with the whole box's area.

Usage: python benchmarks/silhouettes.py
"""

from __future__ import annotations

import time

import numpy as np
from utility import SHARED, core_share, load_labels, paint

from scanvan_sfm.images import read_image
from scanvan_sfm.segment.base import Detection
from scanvan_sfm.segment.silhouette import Matting, silhouette


def main() -> None:
    persons = {name: [box for box in labels.boxes if box[4] == "person"] for name, labels in load_labels().items()}
    pictures = {name: read_image(SHARED / name).pixels for name in persons}
    print(f"{sum(map(len, persons.values()))} labelled persons in {len(persons)} panoramas")
    print(f"{'model':8} {'silhouettes':>11} {'core ≥ 85 %':>11} {'area / box':>10} {'ms / person':>11}")
    for model in ("selfie", "rvm"):
        matting = Matting(model)
        shapes, covered, areas, seconds = 0, 0, [], 0.0
        for name, boxes in persons.items():
            pixels = pictures[name]
            for box in boxes:
                start = time.perf_counter()
                stamp = silhouette(pixels, Detection(*box[:4], 1.0, "people", "person"), matting, panorama=True)
                seconds += time.perf_counter() - start
                if stamp is None:
                    continue
                mask = np.zeros(pixels.shape[:2], bool)
                ys, xs = np.nonzero(stamp.mask)
                mask[stamp.y0 + ys, (stamp.x0 + xs) % pixels.shape[1]] = True
                box_mask = np.zeros_like(mask)
                paint(box_mask, *box[:4])
                shapes += 1
                covered += core_share(mask, box) >= 0.85
                areas.append(mask.sum() / box_mask.sum())
        total = sum(map(len, persons.values()))
        print(f"{model:8} {shapes:>5}/{total:<5} {covered:>5}/{shapes:<5} {np.mean(areas):10.2f} "
              f"{1000 * seconds / total:11.1f}")


if __name__ == "__main__":
    main()
