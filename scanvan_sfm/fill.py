"""Irreversible fill of masked pixels: only pixels outside the mask feed the result.

- ``telea``: OpenCV's Telea inpainting (the original ScanVan step 3 used radius 16), identical to
  ``cv2.inpaint`` on the full frame but run per group of nearby blobs on its bounding box plus a
  margin, groups in parallel. One deliberate difference: when the mask reaches the image's
  first two rows or columns, OpenCV lets masked content leak into the fill (up to 3 grey levels,
  through a border index shift); there we pad so that it cannot.
- ``fast`` (default): a masked push-pull pyramid — known pixels are averaged down a Gaussian
  pyramid and the coarse estimate is interpolated back up into the holes: smooth, seamless,
  and much faster.

Panoramas wrap around: with ``wrap=True`` a blob at the left or right edge gets context from
the other edge.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from .errors import InputError

FILL_MODES = ("fast", "telea")
TELEA_RADIUS = 16


class FillError(InputError):
    """A mask or image that cannot be filled."""


def fill(image: np.ndarray, mask: np.ndarray, mode: str = "fast", *, radius: int = TELEA_RADIUS,
         wrap: bool = False, workers: int | None = None) -> np.ndarray:
    """A copy of ``image`` with the pixels where ``mask`` is True replaced.

    ``image``: H×W, H×W×3 or H×W×4 (alpha is kept as it is), uint8 or uint16 (``telea`` needs
    8-bit colour). A mask that covers everything leaves no context: the fill is mid-grey.
    """
    if mode not in FILL_MODES:
        raise FillError(f"unknown fill mode {mode!r} (choose from {', '.join(FILL_MODES)})")
    if mask.shape != image.shape[:2]:
        raise FillError(f"mask is {mask.shape[1]}×{mask.shape[0]}, image is {image.shape[1]}×{image.shape[0]}")
    out = image.copy()
    colour = out if out.ndim == 2 or out.shape[2] < 4 else out[:, :, :3]
    if mode == "telea" and not (colour.dtype == np.uint8 and (colour.ndim == 2 or colour.shape[2] == 3)):
        raise FillError("telea mode needs 8-bit images; use the fast mode for 16-bit colour")
    if not mask.any():
        return out
    if mask.all():
        colour[...] = np.iinfo(colour.dtype).max // 2 + 1
        return out
    if mode == "telea":  # Telea reads known pixels up to radius + 2 away from a filled one
        fill_roi, join, margin, grow = _telea(radius), 2 * radius + 5, radius + 2, False
    else:
        fill_roi, join, margin, grow = _push_pull, 2 * FAST_MARGIN, FAST_MARGIN, True
    pad = _wrap_pad(mask, join + margin) if wrap else 0
    src_mask = _pad_columns(mask, pad)
    rois = _groups(src_mask, join, margin, grow)

    def run(roi):
        box, _ = roi
        return fill_roi(_columns(colour, box, pad), src_mask[box], box[0].start == 0, box[1].start == 0)

    with ThreadPoolExecutor(workers or os.cpu_count()) as pool:  # all computed before any is written back
        results = list(pool.map(run, rois))
    width = mask.shape[1]
    for (box, own), filled in zip(rois, results, strict=True):  # each group's box, filled
        if pad:  # keep the image's own columns; the borrowed copies were context only
            x = np.arange(box[1].start, box[1].stop) - pad
            inside = (x >= 0) & (x < width)
            if not inside.any():
                continue
            filled, own = filled[:, inside], own[:, inside]
            box = (box[0], slice(int(x[inside][0]), int(x[inside][-1]) + 1))
        np.copyto(colour[box], filled, where=own[:, :, None] if filled.ndim == 3 else own)
    return out


#: Context around each blob for the fast fill, on top of a quarter of the blob's size (at most
#: FAST_CONTEXT more).
FAST_MARGIN = 24
FAST_CONTEXT = 128
BLOCK = 8  # grouping works on 8×8 blocks of the mask


def _telea(radius: int):
    def run(colour: np.ndarray, mask: np.ndarray, top: bool, left: bool) -> np.ndarray:
        """cv2.inpaint, except where the mask reaches the image's first two rows (columns): there
        OpenCV samples the pixel below (right of) a first-row (first-column) pixel, which may be
        unfilled masked content. Two masked rows (columns) of zeros in front make those reads
        content-free."""
        pad_top = 2 if top and mask[:2].any() else 0
        pad_left = 2 if left and mask[:, :2].any() else 0
        if pad_top or pad_left:
            colour = cv2.copyMakeBorder(colour, pad_top, 0, pad_left, 0, cv2.BORDER_CONSTANT, value=0)
            mask = cv2.copyMakeBorder(mask.view(np.uint8), pad_top, 0, pad_left, 0, cv2.BORDER_CONSTANT,
                                      value=1).astype(bool)
        return cv2.inpaint(colour, mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)[pad_top:, pad_left:]
    return run


def _push_pull(colour: np.ndarray, mask: np.ndarray, top: bool = False, left: bool = False) -> np.ndarray:
    """Masked push-pull: Gaussian pyramids of (value × known, known) down to where every pixel
    has some known support, then back up, blending each level's normalized values with the
    coarser estimate by known coverage. Returns the whole box; only its masked pixels matter."""
    values = _channels(colour)
    known = ~mask
    levels: list[tuple[np.ndarray, np.ndarray]]  # pyramid levels 1, 2, …
    if values.dtype == np.uint8:  # level 1 straight from 16-bit integers: no full-size float arrays
        weight = known.astype(np.uint16)
        weight <<= 8
        down = _channels(cv2.pyrDown(values * weight[:, :, None]))  # premultiplied, in one pass
        levels = [(down.astype(np.float32) / 256, cv2.pyrDown(weight).astype(np.float32) / 256)]
        del weight, down
    else:
        weight = known.astype(np.float32)
        level0 = (values.astype(np.float32) * weight[:, :, None], weight)
        levels = [(_channels(cv2.pyrDown(level0[0])), cv2.pyrDown(level0[1]))]
    while min(levels[-1][1].shape) > 1 and levels[-1][1].min() <= 0:
        v, w = levels[-1]
        levels.append((_channels(cv2.pyrDown(v)), cv2.pyrDown(w)))
    v, w = levels[-1]
    estimate = v / np.maximum(w, 1e-12)[:, :, None]
    if w.min() <= 0:  # the region has (almost) no context even at the coarsest level
        estimate[w <= 0] = values[known].mean(axis=0)
    for v, w in reversed(levels[:-1]):
        up = _channels(cv2.pyrUp(estimate, dstsize=(w.shape[1], w.shape[0])))
        confidence = np.minimum(w, 1.0)[:, :, None]
        estimate = confidence * (v / np.maximum(w, 1e-12)[:, :, None]) + (1 - confidence) * up
    # at full resolution a masked pixel has no known coverage: it takes the coarser estimate,
    # upsampled in the image's own integer type (a quarter of the memory of floats)
    coarse = np.clip(np.rint(estimate), 0, np.iinfo(colour.dtype).max).astype(colour.dtype)
    result = _channels(cv2.pyrUp(coarse, dstsize=(mask.shape[1], mask.shape[0])))
    return result[:, :, 0] if colour.ndim == 2 else result


def _channels(a: np.ndarray) -> np.ndarray:
    return a[:, :, None] if a.ndim == 2 else a


Box = tuple[slice, slice]


def _groups(mask: np.ndarray, join: int, margin: int, grow: bool) -> list[tuple[Box, np.ndarray]]:
    """Group blobs closer than ``join`` pixels (some farther ones may join too), each group with
    its box (its blobs' bounding box plus ``margin``, plus a quarter of its size with ``grow``) and the
    mask of its own pixels in that box. Worked out on 8×8 blocks: cheap on large images."""
    h, w = mask.shape
    hb, wb = -(-h // BLOCK), -(-w // BLOCK)
    blocks = _blocks(mask)
    reach = -(-join // (2 * BLOCK)) + 1  # blocks each side: blobs < join apart overlap
    near = cv2.dilate(blocks, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    n, labels, _, _ = cv2.connectedComponentsWithStats(near, connectivity=8)
    labels[blocks == 0] = 0
    ys, xs = np.nonzero(labels)
    owner: np.ndarray = labels[ys, xs]
    top, left = np.full(n, hb), np.full(n, wb)
    bottom, right = np.zeros(n, int), np.zeros(n, int)
    np.minimum.at(top, owner, ys)
    np.minimum.at(left, owner, xs)
    np.maximum.at(bottom, owner, ys + 1)
    np.maximum.at(right, owner, xs + 1)
    groups = []
    for label in np.unique(owner):
        y0, y1 = top[label] * BLOCK, min(bottom[label] * BLOCK, h)
        x0, x1 = left[label] * BLOCK, min(right[label] * BLOCK, w)
        extra = margin + (min(max(y1 - y0, x1 - x0) // 4, FAST_CONTEXT) if grow else 0)
        box = (slice(max(y0 - extra, 0), min(y1 + extra, h)), slice(max(x0 - extra, 0), min(x1 + extra, w)))
        b0, b1 = box[0].start // BLOCK, -(-box[0].stop // BLOCK)
        c0, c1 = box[1].start // BLOCK, -(-box[1].stop // BLOCK)
        mine = (labels[b0:b1, c0:c1] == label).astype(np.uint8)
        mine = cv2.resize(mine, None, fx=BLOCK, fy=BLOCK, interpolation=cv2.INTER_NEAREST)
        own = mask[box] & mine[box[0].start - b0 * BLOCK:box[0].stop - b0 * BLOCK,
                               box[1].start - c0 * BLOCK:box[1].stop - c0 * BLOCK].astype(bool)
        groups.append((box, own))
    groups.sort(key=lambda g: -int(g[1].sum()))  # largest first: better load balance
    return groups


def _blocks(mask: np.ndarray) -> np.ndarray:
    """1 for every 8×8 block of the mask with a masked pixel."""
    h, w = mask.shape
    hb, wb = -(-h // BLOCK), -(-w // BLOCK)
    full = cv2.copyMakeBorder(mask.view(np.uint8) * np.uint8(255), 0, hb * BLOCK - h, 0, wb * BLOCK - w,
                              cv2.BORDER_CONSTANT)
    return (cv2.resize(full, (wb, hb), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)


def _wrap_pad(mask: np.ndarray, margin: int) -> int:
    """Columns to borrow from the other edge: enough for the blobs near an edge, plus margin,
    at most an eighth of the width (a mask across the whole width gains nothing from more)."""
    width = mask.shape[1]
    if not (mask[:, :margin].any() or mask[:, width - margin:].any()):
        return 0
    blocks = _blocks(mask)  # blob widths on the 8×8 block grid: rounded up, cheap
    reach = -(-margin // BLOCK)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(blocks, connectivity=8)
    at_edge = np.unique(np.concatenate([labels[:, :reach].ravel(), labels[:, -reach:].ravel()]))
    extent = max((int(stats[label, cv2.CC_STAT_WIDTH]) * BLOCK for label in at_edge if label), default=0)
    return min(width // 8, extent + 2 * margin)


def _columns(image: np.ndarray, box: Box, pad: int) -> np.ndarray:
    """The box of the image padded by ``pad`` wrapped columns, without padding the whole image."""
    start, stop = box[1].start - pad, box[1].stop - pad
    if start >= 0 and stop <= image.shape[1]:
        return image[box[0], start:stop]
    return image[box[0]][:, np.arange(start, stop) % image.shape[1]]


def _pad_columns(a: np.ndarray, pad: int) -> np.ndarray:
    if not pad:
        return a
    return np.concatenate([a[:, a.shape[1] - pad:], a, a[:, :pad]], axis=1)
