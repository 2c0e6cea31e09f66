"""NanoDet-m per tile, through the TensorFlow graph against TensorFlow Lite (XNNPACK, float32, the
default), on real 416×416 tiles across the horizon of a shared panorama, one thread, each tile
through both in turn (the machine's load hits both alike); and how far the outputs differ.
Issue #14's first lever.

Usage: python benchmarks/detector_runtime.py [--tiles 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from scanvan_sfm.images import read_image
from scanvan_sfm.segment.detector import NanoDet
from scanvan_sfm.segment.install import model_path
from scanvan_sfm.segment.lite import LiteModel
from scanvan_sfm.segment.tfjs import TfjsGraphModel

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    detector = NanoDet(silhouette="none")
    graph = TfjsGraphModel(model_path("nanodet"))
    lite = LiteModel(graph, [(1, 3, detector.input_size, detector.input_size)])
    pixels = read_image(sorted(SHARED.glob("ams_*.jpg"))[0]).pixels
    height, width = pixels.shape[:2]
    size = detector.input_size
    tiles = [pixels[height // 2 - size // 2:][:size, x:x + size] for x in range(0, width - size, width // args.tiles)]
    inputs = [NanoDet.prepare(t) for t in tiles]
    models = {"tensorflow graph": graph, "tflite float32": lite}
    seconds = dict.fromkeys(models, 0.0)
    for model in models.values():
        model(inputs[0])
    for _ in range(args.rounds):
        for x in inputs:  # the two one after the other on each tile: the machine's load hits both alike
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                seconds[name] += (time.perf_counter() - start) / len(inputs) / args.rounds
    worst = max(float(np.abs(graph(x)[k] - lite(x)[k]).max()) for x in inputs[:5] for k in lite.outputs)
    print(f"{len(inputs)} tiles of {SHARED.name}/{sorted(SHARED.glob('ams_*.jpg'))[0].name}, one thread")
    for name, value in seconds.items():
        print(f"{name:18} {value * 1000:6.1f} ms a tile")
    print(f"ratio: {seconds['tensorflow graph'] / seconds['tflite float32']:.2f}× faster; "
          f"largest output difference {worst:.1e}")


if __name__ == "__main__":
    main()
