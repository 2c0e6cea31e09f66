"""Exported dhSegment models (the original ScanVan step 1), run on TensorFlow 2.

A dhSegment export is a TF1 SavedModel (``export/<timestamp>/saved_model.pb``, tag ``serve``) with
nine signatures. ``tf.saved_model.load`` fails on its ``from_resized_images:*`` ones, so it is
loaded with the ``tf.compat.v1`` loader into a session. The graph resizes the image itself and
returns ``probs`` [1, h, w, classes]; the ScanVan model's classes were 0 sky, 1 building,
2 vehicle, 3 people.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..images import Picture, write_image
from .base import Segmentation

SCANVAN_CHANNELS = {"people": 3, "vehicles": 2}
IMAGE_SIGNATURE, FILENAME_SIGNATURE = "from_image:serving_default", "serving_default"


def find_export(model_dir: Path) -> Path:
    """The folder with ``saved_model.pb``: ``model_dir`` itself, or the newest export under it."""
    model_dir = Path(model_dir)
    for folder in (model_dir, model_dir / "export"):
        if (folder / "saved_model.pb").is_file():
            return folder
        stamps = sorted((p for p in folder.glob("*") if (p / "saved_model.pb").is_file()), key=lambda p: p.name)
        if stamps:
            return stamps[-1]
    raise InputError(f"{model_dir}: no exported dhSegment model (saved_model.pb) here or in export/<timestamp>/")


class DhSegmentSegmenter:
    name = "dhsegment"

    def __init__(self, model_dir: Path, channels: dict[str, int] | None = None):
        import tensorflow as tf

        self.channels = channels or SCANVAN_CHANNELS
        export = find_export(model_dir)
        self._session = tf.compat.v1.Session(graph=tf.Graph())
        try:
            meta = tf.compat.v1.saved_model.loader.load(self._session, ["serve"], str(export))
        except Exception as exc:  # TensorFlow raises many kinds for a broken model
            raise InputError(f"{export}: cannot load the SavedModel ({str(exc).splitlines()[0]})") from None
        signatures = meta.signature_def
        if IMAGE_SIGNATURE in signatures and "image" in signatures[IMAGE_SIGNATURE].inputs:
            self._signature, self._input = signatures[IMAGE_SIGNATURE], "image"
        elif FILENAME_SIGNATURE in signatures and "filename" in signatures[FILENAME_SIGNATURE].inputs:
            self._signature, self._input = signatures[FILENAME_SIGNATURE], "filename"
        else:
            raise InputError(f"{export}: not a dhSegment export (no {IMAGE_SIGNATURE!r} signature with input "
                             f"'image', nor {FILENAME_SIGNATURE!r} with input 'filename')")
        if "probs" not in self._signature.outputs:
            raise InputError(f"{export}: the signature has no 'probs' output")

    def segment(self, image: np.ndarray, panorama: bool, camera: np.ndarray | None = None) -> Segmentation:
        """The model sees the whole image, as the original did; ``panorama`` changes nothing."""
        rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image[:, :, :3]
        if rgb.dtype != np.uint8:
            rgb = (rgb // 257).astype(np.uint8)
        probs = self._run(rgb)[0]
        if probs.shape[-1] <= max(self.channels.values()):
            raise InputError(f"the model gives {probs.shape[-1]} classes; channels {self.channels} do not fit")
        maps = {cls: probs[:, :, channel].astype(np.float32) for cls, channel in self.channels.items()}
        if camera is not None:
            import cv2
            outside = cv2.resize((~camera).view(np.uint8), maps["people"].shape[::-1], interpolation=cv2.INTER_NEAREST)
            maps = {cls: m * outside for cls, m in maps.items()}
        return Segmentation(maps)

    def _run(self, rgb: np.ndarray) -> np.ndarray:
        graph = self._session.graph
        feed_name = self._signature.inputs[self._input].name
        probs = graph.get_tensor_by_name(self._signature.outputs["probs"].name)
        if self._input == "image":
            return self._session.run(probs, {graph.get_tensor_by_name(feed_name): rgb.astype(np.float32)})
        with tempfile.TemporaryDirectory() as tmp:  # a filename-only export decodes the file itself
            path = Path(tmp) / "image.png"
            write_image(path, Picture(rgb))
            return self._session.run(probs, {graph.get_tensor_by_name(feed_name): str(path).encode()})
