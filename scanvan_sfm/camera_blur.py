"""Camera/car-roof blur (the original ScanVan step 4): a static mask marks the car and camera
head; there the image takes a 20×20 normalized box blur (exactly ``cv2.blur(img, (20, 20))``,
which the original called a "gaussian" blur). An optional feathered edge blends the two."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from . import rig
from .errors import InputError
from .images import read_image

BOX = (20, 20)
ASPECT_TOLERANCE = 0.01


def load_camera_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """The car/camera area (True) for images of ``size`` (width, height).

    The file is ScanVan's convention: white = scene, anything darker = car/camera. A mask of
    another size but the same aspect is rescaled, with a warning; another aspect is an error.
    """
    path = Path(path)
    pixels = read_image(path).pixels
    gray = pixels if pixels.ndim == 2 else pixels[:, :, :3].min(axis=2)
    car = gray < np.iinfo(gray.dtype).max
    height, width = car.shape
    if (width, height) != size:
        if abs(width / height - size[0] / size[1]) > ASPECT_TOLERANCE * size[0] / size[1]:
            raise InputError(f"{path}: camera mask is {width}×{height}, the images are {size[0]}×{size[1]}")
        warnings.warn(f"{path}: camera mask is {width}×{height}; rescaled to the images' {size[0]}×{size[1]}",
                      stacklevel=2)
        car = cv2.resize(car.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return car


def check_camera_mask(path: str | Path) -> Path:
    """Refuse a camera mask file that is not there."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: camera mask not found")
    return path


class CameraMasks:
    """One camera mask file, loaded once per image size. With the rig's look (``look``: the file
    of a ``rig.Rig.look``), each view's mask is turned to where the rig lies in that view."""

    def __init__(self, path: str | Path, look: str | Path | None = None):
        self.path = check_camera_mask(path)
        self.look = read_image(check_camera_mask(look)).pixels if look is not None else None
        self._by_size: dict[tuple[int, int], np.ndarray] = {}
        self._working: dict[tuple[int, int], np.ndarray] = {}   # at ``rig.SIZE``, to find turns

    def __call__(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._by_size:
            self._by_size[size] = load_camera_mask(self.path, size)
        return self._by_size[size]

    def for_view(self, pixels: np.ndarray) -> np.ndarray:
        """The mask for this view's pixels: turned to where its rig lies (with a ``look``), less
        the rows without data (black end to end: nothing to hide there)."""
        size = pixels.shape[1], pixels.shape[0]
        mask = self(size)
        if self.look is not None:
            if size not in self._working:
                self._working[size] = rig.working_size(mask)
            turn = rig.turn_of(pixels, self.look, self._working[size])
            mask = np.roll(mask, round(turn * size[0] / rig.SIZE[0]), axis=1)
        no_data = rig.no_data_rows(pixels)
        return mask & ~no_data[:, None] if no_data.any() else mask


def camera_blur(image: np.ndarray, car: np.ndarray, feather: int = 0) -> np.ndarray:
    """The image with the car/camera area box-blurred; ``feather`` > 0 px softens the edge
    (the blend then reaches ``feather`` pixels into the scene)."""
    if car.shape != image.shape[:2]:
        raise InputError(f"camera mask is {car.shape[1]}×{car.shape[0]}, image is {image.shape[1]}×{image.shape[0]}")
    blurred = cv2.blur(image, BOX)
    out = image.copy()
    out[car] = blurred[car]
    if feather > 0:  # blend only the band around the car where the weight is between 0 and 1
        weight = cv2.GaussianBlur(car.astype(np.float32), (0, 0), feather / 2)
        band = (weight > 1 / 512) & ~car
        w = weight[band][:, None] if image.ndim == 3 else weight[band]
        mixed = w * blurred[band] + (1 - w) * image[band]
        out[band] = np.clip(np.rint(mixed), 0, np.iinfo(image.dtype).max).astype(image.dtype)
    return out
