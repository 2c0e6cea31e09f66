"""Per-view mask layers beside the automatic mask: ``manual`` (areas reports add) and ``excess``
(areas reports release). The published mask is (automatic − excess) ∪ manual.

Files, in ``anonymization/masks/``: ``<key>-mask.png`` is always the mask the image was filled
with. While a view has layers, its automatic mask is kept as ``<key>-automatic.png`` and the
layers as ``<key>-manual.png`` / ``<key>-excess.png``; without layers, ``<key>-mask.png`` is the
automatic mask, as the pipeline wrote it.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..atomic import remove
from ..dataset import MainFolder
from ..images import read_mask, write_mask
from .spherical import rasterize

LAYERS = ("manual", "excess")


def render(regions: list[dict], width: int, height: int, panorama: bool) -> np.ndarray:
    """One layer from its regions (see ``propagate.Region``)."""
    layer = np.zeros((height, width), np.uint8)
    for region in regions:
        if "angles" in region:
            layer |= rasterize(region["angles"], width, height).astype(np.uint8)
            continue
        outline = np.round(np.asarray(region["pixels"], np.float64) * 16).astype(np.int32)  # 4 fractional bits
        for shift in (-width, 0, width) if panorama else (0,):
            moved = outline + np.array([shift * 16, 0], np.int32)
            cv2.fillPoly(layer, [moved], 1, cv2.LINE_8, shift=4)
            if region.get("margin"):
                cv2.polylines(layer, [moved], True, 1, 2 * region["margin"] + 1, cv2.LINE_8, shift=4)
    return layer.astype(bool)


def combine(automatic: np.ndarray, manual: np.ndarray | None, excess: np.ndarray | None) -> np.ndarray:
    mask = automatic.copy()
    if excess is not None:
        mask &= ~excess
    if manual is not None:
        mask |= manual
    return mask


def read_layers(folder: MainFolder, key: str) -> dict[str, np.ndarray]:
    """The view's layers that exist."""
    return {name: read_mask(folder.mask_layer(key, name)) for name in LAYERS
            if folder.mask_layer(key, name).is_file()}


def read_automatic(folder: MainFolder, key: str, published: np.ndarray) -> np.ndarray:
    """The view's automatic mask: the kept one, or (no layers yet) the ``published`` mask."""
    kept = folder.mask_layer(key, "automatic")
    return read_mask(kept) if kept.is_file() else published


def merge_layers(folder: MainFolder, key: str, automatic: np.ndarray) -> np.ndarray:
    """For the pipeline: keep the automatic mask and return the published one (the layers of
    earlier reports applied), so a rerun never brings a reported person back."""
    layers = read_layers(folder, key)
    if not layers:  # an automatic mask kept by an apply killed before its layers is stale now
        remove(folder.mask_layer(key, "automatic"))
        return automatic
    write_mask(folder.mask_layer(key, "automatic"), automatic)
    return combine(automatic, layers.get("manual"), layers.get("excess"))


def write_layers(folder: MainFolder, key: str, automatic: np.ndarray, layers: dict[str, np.ndarray]) -> None:
    """Store a view's non-empty layers, and its automatic mask beside them, before the published
    mask changes: a kill in between leaves what the next run needs to finish."""
    kept = {name: layer for name, layer in layers.items() if layer.any()}
    if kept:
        write_mask(folder.mask_layer(key, "automatic"), automatic)
    for name, layer in kept.items():
        write_mask(folder.mask_layer(key, name), layer)


def prune_layers(folder: MainFolder, key: str, layers: dict[str, np.ndarray]) -> None:
    """After the published mask is written: remove the empty layers, and with none left the kept
    automatic mask (``<key>-mask.png`` is the automatic mask again)."""
    for name in LAYERS:
        if name not in layers or not layers[name].any():
            remove(folder.mask_layer(key, name))
    if not any(layer.any() for layer in layers.values()):
        remove(folder.mask_layer(key, "automatic"))
