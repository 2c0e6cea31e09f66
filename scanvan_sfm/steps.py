"""Steps 2–4 of the original pipeline, one image at a time, on a main folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from .atomic import atomic_output
from .camera_blur import CameraMasks, camera_blur
from .dataset import MainFolder
from .errors import InputError
from .fill import fill
from .images import IMAGE_SUFFIXES, Picture, read_image, read_mask, write_image, write_mask
from .masks import (CLASSES, GuardedSettings, check_layouts, guarded_mask, probmap_to_uint8, seed_mask,
                    write_feature_mask)
from .reports.layers import merge_layers
from .sfm.validate import image_size

MASK_MODES = ("guarded", "seed")


@dataclass
class MaskOptions:
    mode: str = "guarded"
    guarded: GuardedSettings = GuardedSettings()
    camera_mask: Path | None = None          # merged into guarded masks
    original_convention: bool = False        # write 3-channel 0 = fill, as ScanVan did
    feature_layouts: tuple[str, ...] = ()    # also write masks for these SfM tools
    _cameras: CameraMasks | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MASK_MODES:
            raise InputError(f"unknown mask mode {self.mode!r} (choose from {', '.join(MASK_MODES)})")
        check_layouts(self.feature_layouts)
        self._cameras = CameraMasks(self.camera_mask) if self.camera_mask else None

    def camera(self, size: tuple[int, int]) -> np.ndarray | None:
        return self._cameras(size) if self._cameras else None


def write_segmentation(folder: MainFolder, key: str, result, info: dict) -> dict[str, Path]:
    """``segmentation/<key>-probmap-{people,vehicle}.png`` (the original's 8-bit format) and
    ``<key>-detections.json`` (``info`` and the boxes)."""
    paths = {}
    for cls in CLASSES:
        paths[f"probmap_{cls}"] = folder.probmap(key, cls)
        write_image(paths[f"probmap_{cls}"], Picture(probmap_to_uint8(result.maps[cls])))
    paths["detections"] = folder.detections(key)
    with atomic_output(paths["detections"]) as f:
        f.write(orjson.dumps(info | {"detections": [d.as_dict() for d in result.detections]},
                             option=orjson.OPT_INDENT_2))
    return paths


def mask_from_maps(mode: str, people: np.ndarray, vehicles: np.ndarray, shape: tuple[int, int],
                   guarded: GuardedSettings, camera: np.ndarray | None) -> np.ndarray:
    """The anonymization mask from the 8-bit probability maps, in either mode."""
    if mode == "seed":
        return seed_mask(people, vehicles, shape)
    return guarded_mask(people, vehicles, shape, guarded, camera)


def segment_image(folder: MainFolder, rel: str, segmenter, panorama: bool | None = None,
                  cameras: CameraMasks | None = None) -> dict[str, float]:
    """Image → its probability maps and detections under ``segmentation/``."""
    picture = read_image(folder.source(rel))
    wrap = is_panorama(picture.size) if panorama is None else panorama
    result = segmenter.segment(picture.pixels, wrap, cameras(picture.size) if cameras else None)
    write_segmentation(folder, folder.key(rel), result, {"image": rel, "width": picture.size[0],
                                                          "height": picture.size[1], "model": segmenter.name})
    return {"masked": float((np.maximum(*(result.maps[c] for c in CLASSES)) >= 0.5).mean())}


def _probmap(path: Path) -> np.ndarray:
    pixels = read_image(path).pixels
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise InputError(f"{path}: a probability map is an 8-bit grayscale PNG")
    return pixels


def make_mask(folder: MainFolder, rel: str, options: MaskOptions) -> dict[str, float]:
    """Probability maps of one image → ``masks/<key>-mask.png`` (and feature masks)."""
    width, height = image_size(folder.source(rel))
    key = folder.key(rel)
    people, vehicles = (_probmap(folder.probmap(key, cls)) for cls in CLASSES)
    mask = merge_layers(folder, key, mask_from_maps(options.mode, people, vehicles, (height, width),
                                                    options.guarded, options.camera((width, height))))
    write_mask(folder.mask(key), mask, options.original_convention)
    for layout in options.feature_layouts:
        write_feature_mask(layout, mask, folder.feature_masks(layout), rel)
    return {"masked": float(mask.mean())}


def output_suffix(source: str, out_format: str) -> str:
    suffix = Path(source).suffix if out_format == "same" else f".{out_format.lstrip('.')}"
    if suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"unknown output format {out_format!r}")
    return suffix


def is_panorama(size: tuple[int, int]) -> bool:
    """Equirectangular panoramas are 2:1."""
    return size[0] == 2 * size[1]


def fill_image(folder: MainFolder, rel: str, mode: str = "fast", out_format: str = "same",
               original_convention: bool = False, panorama: bool | None = None) -> dict[str, float]:
    """Source image + its mask → ``blur/<key>.<ext>``; JPEG output keeps EXIF, XMP and ICC."""
    picture = read_image(folder.source(rel))
    mask_path = folder.mask(folder.key(rel))
    if not mask_path.is_file():
        raise InputError(f"{mask_path}: mask not found")
    mask = read_mask(mask_path, original_convention)
    wrap = is_panorama(picture.size) if panorama is None else panorama
    try:
        filled = fill(picture.pixels, mask, mode, wrap=wrap, workers=1)
    except InputError as exc:
        raise InputError(f"{folder.source(rel)}: {exc}") from None
    write_image(folder.blurred(folder.key(rel), output_suffix(rel, out_format)), Picture(filled, picture.metadata))
    return {"masked": float(mask.mean())}


def filled_image(folder: MainFolder, rel: str) -> Path:
    """The filled output of an image, whatever format it was written in."""
    key = Path(folder.key(rel))
    found = sorted(p for p in (folder.blur_dir / key.parent).glob(f"{key.name}.*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.stem == key.name)
    if not found:
        raise InputError(f"{folder.blur_dir / key}.*: no filled image (run the fill step first)")
    return found[0]


def camera_blur_image(folder: MainFolder, rel: str, cameras: CameraMasks, feather: int = 0) -> dict[str, float]:
    """``blur/<key>.<ext>`` → ``gaussian_blur/<key>.<ext>`` with the car/camera area blurred."""
    source = filled_image(folder, rel)
    picture = read_image(source)
    car = cameras(picture.size)
    write_image(folder.camera_blurred(folder.key(rel), source.suffix),
                Picture(camera_blur(picture.pixels, car, feather), picture.metadata))
    return {"masked": float(car.mean())}
