"""Fill: Telea identical to full-frame cv2.inpaint, fast fill smooth, both irreversible and wrapping."""

import cv2
import numpy as np
import pytest

from helpers import SHARED, needs_shared
from scanvan_sfm.fill import FillError, fill
from scanvan_sfm.images import read_image

PANORAMA = SHARED / "images" / "ams_TMX7315120208-000105_pano_0001_002965.jpg"


@pytest.fixture(scope="module")
def panorama():
    """A real street panorama at 3008×1504."""
    return cv2.resize(read_image(PANORAMA).pixels, (3008, 1504), interpolation=cv2.INTER_AREA)


def hard_mask(shape, seed, top_left=False):
    """Many blobs: separate, overlapping, 5 px apart, tiny, touching the bottom and right borders
    (and, with ``top_left``, the top and left ones)."""
    h, w = shape
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    for _ in range(40):
        cv2.ellipse(mask, (int(rng.integers(40, w)), int(rng.integers(40, h))),
                    (int(rng.integers(3, 60)), int(rng.integers(3, 90))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    mask[:20, :] = 0
    mask[:, :20] = 0   # nothing within Telea's reach of the top and left edges unless asked
    cx, cy = w // 3, h // 2
    cv2.circle(mask, (cx, cy), 40, 1, -1)
    cv2.circle(mask, (cx + 75, cy), 30, 1, -1)      # 5 px from the previous one
    cv2.circle(mask, (cx + 200, cy), 30, 1, -1)     # 95 px away: its own group
    mask[h - 30:h, w // 4:w // 4 + 100] = 1         # bottom border
    mask[h // 5:h // 5 + 40, w - 15:w] = 1          # right border
    mask[[h // 2 + 100, h // 2 + 101, h - 5], [w // 2, w // 2 + 300, w - 5]] = 1  # single pixels
    if top_left:
        mask[0:25, w // 6:w // 6 + 60] = 1
        mask[h // 2:h // 2 + 60, 0:20] = 1
    return mask.astype(bool)


@pytest.mark.parametrize("seed,radius", [(1, 16), (2, 16), (3, 5)])
@needs_shared
def test_telea_is_identical_to_full_frame_inpaint(panorama, seed, radius):
    mask = hard_mask(panorama.shape[:2], seed)
    expected = cv2.inpaint(panorama, mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    assert np.array_equal(fill(panorama, mask, "telea", radius=radius), expected)


@needs_shared
def test_telea_is_identical_on_grayscale():
    gray = read_image(SHARED / "images" / "opensfm_lund_01.jpg").pixels.mean(axis=2).astype(np.uint8)
    mask = hard_mask(gray.shape, 4)
    assert np.array_equal(fill(gray, mask, "telea"), cv2.inpaint(gray, mask.astype(np.uint8), 16, cv2.INPAINT_TELEA))


@needs_shared
def test_telea_does_not_leak_at_the_top_and_left_edges(panorama):
    """OpenCV lets masked content into fills near the first row and column; ours does not,
    and stays identical to OpenCV away from those edges."""
    mask = hard_mask(panorama.shape[:2], 7, top_left=True)
    other = panorama.copy()
    other[mask] = 255 - other[mask]
    opencv = [cv2.inpaint(im, mask.astype(np.uint8), 16, cv2.INPAINT_TELEA) for im in (panorama, other)]
    ours = [fill(im, mask, "telea") for im in (panorama, other)]
    assert not np.array_equal(opencv[0], opencv[1])
    assert np.array_equal(ours[0], ours[1])
    away = np.s_[60:, 60:]
    assert np.array_equal(ours[0][away], opencv[0][away])


@pytest.mark.parametrize("mode", ["fast", "telea"])
@needs_shared
def test_fill_is_irreversible_and_leaves_the_rest_alone(panorama, mode):
    """Different content under the mask, same surroundings → the same output: nothing leaks."""
    mask = hard_mask(panorama.shape[:2], 5)
    other = panorama.copy()
    other[mask] = np.random.default_rng(0).integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    first, second = fill(panorama, mask, mode), fill(other, mask, mode)
    assert np.array_equal(first, second)
    assert np.array_equal(first[~mask], panorama[~mask])
    assert not np.array_equal(first[mask], panorama[mask])


def test_fast_fill_is_a_smooth_extrapolation():
    """On a smooth ramp the fill continues the ramp: no seams, no blocks."""
    y, x = np.mgrid[0:600, 0:900]
    ramp = np.dstack([x * 0.25, y * 0.3, 100 + 0 * x]).astype(np.uint8)
    mask = np.zeros((600, 900), bool)
    cv2.circle(mask.view(np.uint8), (450, 300), 120, 1, -1)
    filled = fill(ramp, mask, "fast").astype(int)
    error = np.abs(filled - ramp)[mask]
    assert np.median(error) <= 3 and error.max() <= 16  # the hole spans 60 levels of the ramp
    # no step at the mask border: the largest jump between neighbours stays that of the ramp
    assert np.abs(np.diff(filled, axis=1)).max() <= 3 and np.abs(np.diff(filled, axis=0)).max() <= 3


@pytest.mark.parametrize("mode", ["fast", "telea"])
def test_panorama_blob_across_the_seam_sees_both_sides(mode):
    """Left edge red, right edge blue: with wrap the seam blob is filled with both."""
    image = np.zeros((400, 800, 3), np.uint8)
    image[:, :400] = (200, 0, 0)
    image[:, 400:] = (0, 0, 200)
    mask = np.zeros((400, 800), bool)
    mask[150:250, :30] = True
    mask[150:250, 770:] = True
    flat = fill(image, mask, mode, wrap=False)
    wrapped = fill(image, mask, mode, wrap=True)
    left_flat, left_wrapped = flat[150:250, :30].astype(int), wrapped[150:250, :30].astype(int)
    assert left_flat[:, :, 2].max() == 0                       # without wrap only red reaches x = 0
    assert left_wrapped[:, :5, 2].mean() > 40                  # with wrap blue comes across the seam
    assert wrapped[150:250, 795:, 0].mean() > 40               # and red reaches the right edge
    far = np.zeros_like(mask)
    far[150:250, 300:350] = True                               # far from the seam: wrap changes nothing
    assert np.array_equal(fill(image, far | mask, mode, wrap=True)[:, 100:700],
                          fill(image, far | mask, mode, wrap=False)[:, 100:700])


@needs_shared
def test_edge_cases():
    image = read_image(SHARED / "images" / "opensfm_lund_25.jpg").pixels
    empty = np.zeros(image.shape[:2], bool)
    assert np.array_equal(fill(image, empty), image)
    everything = fill(image, ~empty, "fast")
    assert (everything == 128).all()
    with pytest.raises(FillError, match="mask is 10×10"):
        fill(image, np.zeros((10, 10), bool))
    with pytest.raises(FillError, match="unknown fill mode"):
        fill(image, empty, "blur")
    mask = hard_mask(image.shape[:2], 6)
    rgba = np.dstack([image, np.full(image.shape[:2], 77, np.uint8)])
    filled = fill(rgba, mask, "telea")
    assert (filled[:, :, 3] == 77).all() and np.array_equal(filled[:, :, :3], fill(image, mask, "telea"))
    deep = image.astype(np.uint16) * 257
    with pytest.raises(FillError, match="8-bit"):
        fill(deep, mask, "telea")
    deep_filled = fill(deep, mask, "fast")
    assert deep_filled.dtype == np.uint16 and np.array_equal(deep_filled[~mask], deep[~mask])
    assert np.abs(deep_filled[mask] / 257 - fill(image, mask, "fast")[mask]).max() <= 2
