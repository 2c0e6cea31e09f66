"""Segmentation cost and quality of a detector (default: NanoDet) on the default tile plan.

Speed: CPU seconds per 6016×3008 panorama (the four shared Amsterdam panoramas resized), after one
warm-up image; peak RSS of the process. Targets: ≤ 2.5 CPU-s per panorama and ≤ 1.5 GB.
Quality: per labelled panorama (native 8000×4000), persons covered ≥ 50 % by the people map at
0.5, and detections above threshold that match no labelled person (a bound on false positives:
far persons and all vehicles are unlabelled in the source).

Usage: python benchmarks/segment.py [--model centernet|nanodet]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from scanvan_sfm.images import read_image
from scanvan_sfm.segment import get_segmenter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="nanodet", choices=("nanodet", "centernet"))
    args = parser.parse_args()
    labels = json.loads((SHARED / "labels.json").read_text())["images"]
    segmenter = get_segmenter(args.model)
    print(f"{'panorama':46} {'CPU s':>6} {'wall s':>6} {'persons':>8} {'covered':>8} {'unmatched':>9}")
    cpu_times, total_covered, total_persons = [], 0, 0
    for i, name in enumerate(sorted(labels)):
        native = read_image(SHARED / name).pixels
        pano = cv2.resize(native, (6016, 3008), interpolation=cv2.INTER_AREA)
        if i == 0:
            segmenter.segment(pano, panorama=True)  # warm-up: TensorFlow's first call
        cpu, wall = time.process_time(), time.perf_counter()
        segmenter.segment(pano, panorama=True)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu_times.append(cpu)
        result = segmenter.segment(native, panorama=True)
        people = result.maps["people"]
        scale = people.shape[1] / native.shape[1]
        persons = [b[:4] for b in labels[name] if b[4] == "person"]
        covered = sum((people[int(y0 * scale):int(np.ceil(y1 * scale)), int(x0 * scale):int(np.ceil(x1 * scale))]
                       >= 0.5).mean() >= 0.5 for x0, y0, x1, y1 in persons)
        kept = [d for d in result.detections if d.cls == "people" and d.score >= d.threshold]
        unmatched = sum(not any(d.x0 < x1 and x0 < d.x1 and d.y0 < y1 and y0 < d.y1 for x0, y0, x1, y1 in persons)
                        for d in kept)
        total_covered, total_persons = total_covered + covered, total_persons + len(persons)
        print(f"{name:46} {cpu:6.2f} {wall:6.2f} {len(persons):8d} {covered:8d} {unmatched:9d}")
    print(f"{args.model}: persons covered {total_covered}/{total_persons} "
          f"({total_covered / total_persons:.1%}, gate ≥ 95 %)")
    print(f"median CPU s per 6016×3008 panorama: {np.median(cpu_times):.2f} (target ≤ 2.5); "
          f"peak RSS {peak_rss_mb():.0f} MB (target ≤ 1500)")


if __name__ == "__main__":
    main()
