"""Steps 1–4 of the original pipeline, one image at a time, on a main folder: each is load (from
the ``Dataset``) → core (``view``) → save."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .camera_blur import CameraMasks, camera_blur
from .dataset import Dataset, check_layouts
from .errors import InputError
from .images import output_suffix, read_image
from .masks import LAYERS, GuardedSettings
from .settings import check_choice
from .sfm.validate import image_size
from .view import render, segment, view_mask


@dataclass
class MaskOptions:
    mode: str = "guarded"
    guarded: GuardedSettings = GuardedSettings()
    camera_mask: Path | None = None          # merged into guarded masks
    original_convention: bool = False        # write 3-channel 0 = fill, as ScanVan did
    feature_layouts: tuple[str, ...] = ()    # also write masks for these SfM tools
    _cameras: CameraMasks | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_choice("mask_mode", self.mode)
        check_layouts(self.feature_layouts)
        self._cameras = CameraMasks(self.camera_mask) if self.camera_mask else None

    def camera(self, size: tuple[int, int]) -> np.ndarray | None:
        return self._cameras(size) if self._cameras else None


def segment_image(dataset: Dataset, rel: str, segmenter, panorama: bool | None = None,
                  cameras: CameraMasks | None = None) -> dict[str, float]:
    """Image → its probability maps and detections under ``segmentation/``."""
    picture = read_image(dataset.source(rel))
    camera = cameras(picture.size) if cameras else None
    segmented = segment(picture.pixels, segmenter, camera, panorama)
    dataset.save_segmentation(dataset.key(rel), segmented.probmaps, {
        "image": rel, "width": picture.size[0], "height": picture.size[1], "model": segmenter.name,
        "detections": [d.as_dict() for d in segmented.segmentation.detections]})
    maps = segmented.segmentation.maps
    return {"masked": float((np.maximum(maps["people"], maps["vehicles"]) >= 0.5).mean())}


def make_mask(dataset: Dataset, rel: str, options: MaskOptions) -> dict[str, float]:
    """Probability maps of one image → ``masks/<key>-mask.png`` (and feature masks)."""
    width, height = image_size(dataset.source(rel))
    key = dataset.key(rel)
    layers = dataset.load_layers(key, LAYERS)
    automatic, mask = view_mask(dataset.load_probmaps(key), (height, width), options.mode, options.guarded,
                                options.camera((width, height)), layers)
    dataset.keep_automatic(key, automatic, layers)
    dataset.save_mask(key, mask, options.original_convention)
    dataset.save_feature_masks(options.feature_layouts, rel, mask)
    return {"masked": float(mask.mean())}


def fill_image(dataset: Dataset, rel: str, mode: str = "fast", out_format: str = "same",
               original_convention: bool = False, panorama: bool | None = None) -> dict[str, float]:
    """Source image + its mask → ``blur/<key>.<ext>``; JPEG output keeps EXIF, XMP and ICC."""
    picture = read_image(dataset.source(rel))
    mask = dataset.load_mask(dataset.key(rel), original_convention)
    try:
        rendered = render(picture.pixels, mask, mode, None, wrap=panorama)
    except InputError as exc:
        raise InputError(f"{dataset.source(rel)}: {exc}") from None
    dataset.save_published(dataset.blurred(dataset.key(rel), output_suffix(rel, out_format)), rendered.filled, picture)
    return {"masked": float(mask.mean())}


def camera_blur_image(dataset: Dataset, rel: str, cameras: CameraMasks, feather: int = 0) -> dict[str, float]:
    """``blur/<key>.<ext>`` → ``gaussian_blur/<key>.<ext>`` with the car/camera area blurred."""
    source = dataset.filled_image(rel)
    picture = read_image(source)
    car = cameras(picture.size)
    dataset.save_published(dataset.camera_blurred(dataset.key(rel), source.suffix),
                           camera_blur(picture.pixels, car, feather), picture)
    return {"masked": float(car.mean())}
