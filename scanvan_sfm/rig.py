"""The camera rig of a panorama scene, found from the scene's own images (arrays in, arrays out).

Mobile-mapping panoramas show the car's roof and rack at the bottom, handheld 360° cameras a
tripod, monopod or hand at the nadir: the same thing in every view while the street changes.
The views are compared small (``SIZE``), in their lower half (the rig is below the camera):

1. Panoramas turned to the north show the rig turned by the car's heading. Each view's turn is
   the circular shift that best matches its horizontal gradients to the first view's, then to
   the median view's; the turns are kept when more of the views agree turned than as they are.
2. A textured patch of the median view agrees when the same patch of all views but a few
   (``OUTLIERS``) correlates with it, each view moved by up to ``REACH`` pixels (levelled
   panoramas tilt a little with the road). Street textures differ from view to view; the rig's
   outline, rack and mount do not. Plain patches tell nothing: a plain road looks the same in
   every view, and a white roof mirrors the sky.
3. The rig reaches, in each column, up to the highest agreeing pattern wider than ``SPAN``;
   spikes narrower than ``SPIKE`` columns are cut (an antenna), notches narrower than ``NOTCH``
   filled, the rest grown by ``GROW``. Rows without data in every view are left out: there is
   nothing to hide there.

When the street just below the horizon agrees too (``ALIKE``), the views are too alike to tell
the rig from the scene (a camera that hardly moved) and there is no estimate. A vehicle that
follows the car is no rig: it is missing from most views.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIZE = (1024, 512)    # working width, height: about 0.35° per pixel
MIN_VIEWS = 4         # fewer agree by chance on the street (see tests/test_rig.py)
MAX_VIEWS = 24
OUTLIERS = 1 / 8      # share of the views that may disagree (a glare, a passing car)
PATCH = 7             # pixels: the patches compared
TEXTURE = 6.0         # 8-bit levels: a patch of the median view with this standard deviation is textured
MATCH = 0.8           # normalized cross-correlation of a patch that agrees
REACH = (1, 4)        # pixels a view may be moved by to agree, across and up or down
PAD = max(REACH) + PATCH // 2
SPAN = 24             # pixels: narrower agreeing patterns are chance
NOTCH = 81            # columns: narrower notches in the rig's outline are filled
SPIKE = 7             # columns: narrower spikes are cut
GROW = 2              # pixels the rig is grown by (turns are found to the pixel)
NO_DATA = 8           # darker is no data
HORIZON = 0.1         # the street: the band this share of the height below the horizon
#: The most of that band's textured pixels that may agree. Measured: the 4 Amsterdam panoramas
#: 0.023, 3 of them 0.035–0.063, the 8 shots of 360_flat_gps (one small flat) 0.17.
ALIKE = 0.03


class NoRig(Exception):
    """Why a scene's rig cannot be told."""


@dataclass
class Rig:
    """The rig in the first view's frame, at ``SIZE``, and how each sampled view is turned."""

    mask: np.ndarray          # bool, the rig
    look: np.ndarray          # grey lower half, the median of the views turned alike: turns are matched to it
    turns: list[int]          # per view, the columns (at ``SIZE``) its rig lies right of the first's

    @property
    def turned(self) -> bool:
        """Whether the rig moves between views (panoramas turned to the north)."""
        return any(self.turns)

    @property
    def share(self) -> float:
        return float(self.mask.mean())


@dataclass
class _Agreement:
    agreeing: np.ndarray      # the lower half's textured patches where the views agree
    textured: np.ndarray      # all its textured patches
    look: np.ndarray          # the median view's lower half

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.agreeing))


def sample(items: list, count: int = MAX_VIEWS) -> list:
    """At most ``count`` of ``items``, evenly spread from the first to the last."""
    if len(items) <= count:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def small(pixels: np.ndarray) -> np.ndarray:
    """An 8-bit RGB image at ``SIZE``."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    rgb = pixels[:, :, :3]
    if rgb.dtype != np.uint8:
        rgb = (rgb >> 8).astype(np.uint8)
    return rgb if rgb.shape[1::-1] == SIZE else cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA)


def estimate(views: list[np.ndarray]) -> Rig:
    """The rig of a scene's views (any size), in the first one's frame; ``NoRig`` says why not."""
    if len(views) < MIN_VIEWS:
        raise NoRig(f"{len(views)} panoramas, fewer than the {MIN_VIEWS} it takes")
    views = [small(v) for v in views]
    lower = [_grey_lower(v) for v in views]
    turns, agreement = [0] * len(views), _agreement(lower)
    found = _turns(lower)
    if any(found):
        turned = _agreement([np.roll(g, -t, axis=1) for g, t in zip(lower, found, strict=True)])
        if turned.count > agreement.count:  # the rig turns with the heading
            turns, agreement = found, turned
    band = slice(0, round(HORIZON * SIZE[1]))
    if np.count_nonzero(agreement.agreeing[band]) > ALIKE * max(int(np.count_nonzero(agreement.textured[band])), 1):
        raise NoRig("the views are too alike to tell the rig from the scene (the camera hardly moved)")
    mask = _region(agreement.agreeing, np.all([no_data_rows(v) for v in views], axis=0))
    if not mask.any():
        raise NoRig("no part of the views' bottom stays the same")
    return Rig(mask, agreement.look, turns)


def turn_of(view: np.ndarray, look: np.ndarray, mask: np.ndarray) -> int:
    """The columns (at ``SIZE``) a view's rig lies right of the rig that has this ``look`` and
    ``mask`` (at ``SIZE``)."""
    near = _lower(_grown(mask, REACH[1]))
    return _best_shift(_features(look) * near, _features(_grey_lower(small(view))))


def working_size(mask: np.ndarray) -> np.ndarray:
    """A mask of any size at ``SIZE``."""
    return cv2.resize(mask.astype(np.uint8) * np.uint8(255), SIZE, interpolation=cv2.INTER_AREA) > 127


def no_data_rows(pixels: np.ndarray) -> np.ndarray:
    """Per row of an image, whether it is black end to end: no data (the detector does not look
    there, and a camera mask leaves it out)."""
    black = NO_DATA * (np.iinfo(pixels.dtype).max // 255)
    return pixels.reshape(pixels.shape[0], -1).max(axis=1) < black


def full_size(mask: np.ndarray, size: tuple[int, int], turn: int = 0) -> np.ndarray:
    """A mask at ``SIZE`` at an image's ``size`` (width, height), turned by ``turn`` columns."""
    turned = np.roll(mask, turn, axis=1) if turn else mask
    return cv2.resize(turned.astype(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_LINEAR) > 127


# ------------------------------------------------------------------------------------ details

def _lower(image: np.ndarray) -> np.ndarray:
    return image[image.shape[0] // 2:]


def _grey_lower(view: np.ndarray) -> np.ndarray:
    """The lower half in grey, slightly smoothed (JPEG noise)."""
    return cv2.GaussianBlur(cv2.cvtColor(_lower(view), cv2.COLOR_RGB2GRAY), (3, 3), 0)


def _features(grey: np.ndarray) -> np.ndarray:
    """Horizontal gradients: what turns are matched on."""
    return cv2.Sobel(grey.astype(np.float32), cv2.CV_32F, 1, 0)


def _best_shift(reference: np.ndarray, features: np.ndarray) -> int:
    """The circular shift of ``features`` that best matches ``reference`` (rows summed)."""
    spectrum = np.conj(np.fft.rfft(reference, axis=1)) * np.fft.rfft(features, axis=1)
    return int(np.argmax(np.fft.irfft(spectrum.sum(axis=0), n=reference.shape[1])))


def _median(stack: np.ndarray) -> np.ndarray:
    """The median over the first axis, of 8-bit images, as 8-bit."""
    return np.median(stack, axis=0).astype(np.uint8)


def _turns(lower: list[np.ndarray]) -> list[int]:
    """Each view's turn against the first, then against the median of the views so aligned."""
    features = [_features(g) for g in lower]
    turns = [_best_shift(features[0], f) for f in features]
    reference = _features(_median(np.stack([np.roll(g, -t, axis=1) for g, t in zip(lower, turns, strict=True)])))
    first = _best_shift(reference, features[0])  # keep the first view's frame
    return [(_best_shift(reference, f) - first) % SIZE[0] for f in features]


def _agreement(lower: list[np.ndarray]) -> _Agreement:
    """Where all views but ``OUTLIERS`` agree with the median view (see the module docstring)."""
    outliers = int(len(lower) * OUTLIERS)
    look = _median(np.stack(lower))
    grey = [_padded(g).astype(np.float32) for g in lower]
    reference = _padded(look).astype(np.float32)
    reference_mean, reference_var = _local(reference)
    match = np.stack([_best_match(g, reference, reference_mean, reference_var) for g in grey])
    inside = (slice(PAD, -PAD), slice(PAD, -PAD))
    reached = match.min(axis=0) if outliers == 0 else np.partition(match, outliers, axis=0)[outliers]
    textured = reference_var[inside] > TEXTURE ** 2
    return _Agreement(textured & (reached[inside] > MATCH), textured, look)  # all views but the outliers


def _padded(image: np.ndarray) -> np.ndarray:
    """Padded by ``PAD``: across the seam, and with the edge rows repeated."""
    return np.pad(np.pad(image, ((0, 0), (PAD, PAD)), mode="wrap"), ((PAD, PAD), (0, 0)), mode="edge")


def _local(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance over each pixel's ``PATCH``."""
    mean = cv2.blur(image, (PATCH, PATCH))
    return mean, np.maximum(cv2.blur(image * image, (PATCH, PATCH)) - mean * mean, 0)


def _best_match(grey: np.ndarray, look: np.ndarray, look_mean: np.ndarray, look_var: np.ndarray) -> np.ndarray:
    """Per pixel, the best normalized cross-correlation of ``grey``'s patch with ``look``'s, the
    view moved by up to ``REACH`` pixels (a moved view's patch statistics are its own, moved;
    the ``PAD`` takes what rolls around)."""
    best = np.full(grey.shape, -1.0, np.float32)
    mean, var = _local(grey)
    for dy in range(-REACH[1], REACH[1] + 1):
        for dx in range(-REACH[0], REACH[0] + 1):
            shift = ((dy, dx), (0, 1))
            covariance = cv2.blur(np.roll(grey, *shift) * look, (PATCH, PATCH)) - np.roll(mean, *shift) * look_mean
            np.maximum(best, covariance / np.sqrt(np.roll(var, *shift) * look_var + 1e-3), out=best)
    return best


def _wrapped(operation, image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A morphological ``operation`` across the panorama's left/right seam."""
    pad = kernel.shape[1] // 2
    padded = np.pad(image, ((0, 0), (pad, pad)), mode="wrap")
    return operation(padded, kernel)[:, pad:pad + image.shape[1]]


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    return _wrapped(cv2.dilate, mask.astype(np.uint8), disc) > 0


def _closed(profile: np.ndarray, width: int) -> np.ndarray:
    line = np.ones((1, width), np.uint8)
    return _wrapped(cv2.erode, _wrapped(cv2.dilate, profile, line), line)


def _opened(profile: np.ndarray, width: int) -> np.ndarray:
    line = np.ones((1, width), np.uint8)
    return _wrapped(cv2.dilate, _wrapped(cv2.erode, profile, line), line)


def _region(agreeing: np.ndarray, no_data: np.ndarray) -> np.ndarray:
    """The whole image's rig from the lower half's agreeing patterns (see the module docstring);
    ``no_data``: the rows black in every view."""
    height, width = agreeing.shape
    linked = cv2.morphologyEx(agreeing.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(linked, connectivity=8)
    wide = stats[:, cv2.CC_STAT_WIDTH] >= SPAN
    wide[0] = False
    kept = wide[labels]
    # a patch agrees up to its half-width above what it sees
    top = np.where(kept.any(axis=0), kept.argmax(axis=0) + PATCH // 2, height)
    tall = _closed(_opened(np.maximum(height - top, 0).astype(np.float32)[None], SPIKE), NOTCH)[0]
    rig = np.zeros((2 * height, width), bool)
    rig[height:] = np.arange(height)[:, None] >= height - tall[None, :]
    rig = _grown(rig, GROW)
    rig[no_data] = False
    return rig
