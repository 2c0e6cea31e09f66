"""Probability maps → masks: the original bit for bit, the guarded mode, conventions, feature masks."""

import cv2
import numpy as np
import pytest

from scanvan_sfm.dataset import feature_mask_path, write_feature_mask
from scanvan_sfm.images import read_image, read_mask, write_mask
from scanvan_sfm.masks import GuardedSettings, block_upscale, guarded_mask, probmap_to_uint8, seed_mask


def original_custom_masks(people: np.ndarray, vehicles: np.ndarray, height: int, width: int) -> np.ndarray:
    """ScanVan's custom_masks.py transcribed (its 3-channel output, 0 = fill), NumPy-1 semantics:
    the kernel's -1 entries are uint8 and wrap to 255."""
    _, mp = cv2.threshold(people, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    kernel = np.array([[0, 0, 255, 0, 0], [0, 0, 255, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 0, 0]],
                      dtype=np.uint8)
    mp = cv2.filter2D(cv2.filter2D(mp, -1, kernel), -1, kernel)
    _, mv = cv2.threshold(vehicles, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    inv = cv2.bitwise_not(cv2.bitwise_or(mp, mv))
    out = np.zeros((height, width, 3), np.uint8)
    h, w = inv.shape
    width_scaled, height_scaled = width / w, height / h  # the original's (swapped) names
    for i in range(h):
        for j in range(w):
            out[int(i * width_scaled):int((i + 1) * width_scaled),
                int(j * height_scaled):int((j + 1) * height_scaled)] = inv[i, j]
    return out


def probability_maps(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs of high probability on low noise, like a segmentation network's output."""
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(2):
        p = rng.uniform(0, 0.04, (h, w)).astype(np.float32)
        for _ in range(rng.integers(3, 9)):
            cx, cy = rng.integers(0, w), rng.integers(h // 3, h)
            axes = (int(rng.integers(2, w // 40 + 3)), int(rng.integers(3, h // 15 + 4)))
            cv2.ellipse(p, (int(cx), int(cy)), axes, 0, 0, 360, float(rng.uniform(0.5, 1.0)), -1)
        maps.append(probmap_to_uint8(cv2.GaussianBlur(p, (5, 5), 0)))
    return maps[0], maps[1]


@pytest.mark.parametrize("h,w,H,W,seed", [(600, 1200, 3008, 6016, 1), (150, 300, 752, 1504, 2),
                                          (150, 300, 752, 1504, 3)])
def test_seed_mode_reproduces_the_original_bit_for_bit(h, w, H, W, seed):
    people, vehicles = probability_maps(h, w, seed)
    expected = original_custom_masks(people, vehicles, H, W)
    ours = seed_mask(people, vehicles, (H, W))
    assert np.array_equal(expected[:, :, 0] == 0, ours)
    assert 0.001 < ours.mean() < 0.5


def test_block_upscale_is_not_cv2_resize():
    people, _ = probability_maps(600, 1200, 4)
    small = people > 128
    ours = block_upscale(small, (3008, 6016))
    nearest = cv2.resize(small.view(np.uint8), (6016, 3008), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert ours.sum() > 0 and not np.array_equal(ours, nearest)


def test_seed_flags_noise_where_guarded_flags_nothing():
    """The original's Otsu splits even an empty map; the guarded mode does not."""
    noise = probmap_to_uint8(np.random.default_rng(5).uniform(0, 0.025, (600, 1200)))
    empty = np.zeros_like(noise)
    assert seed_mask(noise, empty, (3008, 6016)).mean() > 0.2
    assert not guarded_mask(noise, empty, (3008, 6016)).any()


def test_guarded_floor_dilation_min_area_and_camera():
    shape = (1000, 2000)
    people = np.zeros((200, 400), np.uint8)
    people[100:110, 50:54] = 200       # a person, ~0.78 probability
    people[50, 300] = 200              # a single hot pixel: 5×5 px at full size, below min_area
    weak = np.zeros_like(people)
    weak[20:40, 20:40] = 60             # 0.24 < floor 0.3: no detection
    settings = GuardedSettings(floor=(0.3, 0.3), dilation=(0, 0), min_area=64)
    base = guarded_mask(people, weak, shape, settings)
    ys, xs = np.nonzero(base)
    assert base[502:548, 252:268].all()  # the person, its edges softened by the bilinear upsampling
    assert 495 <= ys.min() <= 502 and 268 <= xs.max() <= 275
    assert not base[240:260, 1490:1510].any() and not base[100:200, 100:200].any()
    grown = guarded_mask(people, weak, shape, GuardedSettings(floor=(0.3, 0.3), dilation=(20, 0), min_area=64))
    assert grown.sum() > base.sum()
    assert grown[ys.min() - 20, xs.mean().astype(int)] and not grown[ys.min() - 22, xs.mean().astype(int)]
    camera = np.zeros(shape, bool)
    camera[520:] = True  # the rig is camera-blurred, never filled: the person's part there is left out
    beside_rig = guarded_mask(people, weak, shape, settings, camera)
    assert not beside_rig[520:].any() and np.array_equal(beside_rig[:520], base[:520])


def test_mask_conventions_round_trip(tmp_path):
    mask = np.zeros((30, 40), bool)
    mask[5:10, 7:20] = True
    write_mask(tmp_path / "ours.png", mask)
    write_mask(tmp_path / "orig.png", mask, original_convention=True)
    assert read_image(tmp_path / "ours.png").pixels.ndim == 2
    original = read_image(tmp_path / "orig.png").pixels
    assert original.shape == (30, 40, 3) and np.array_equal(original[:, :, 0] == 0, mask)
    assert np.array_equal(read_mask(tmp_path / "ours.png"), mask)
    assert np.array_equal(read_mask(tmp_path / "orig.png", original_convention=True), mask)


def test_feature_mask_layouts(tmp_path):
    mask = np.zeros((20, 30), bool)
    mask[2:5, 3:9] = True
    paths = {layout: write_feature_mask(layout, mask, tmp_path / layout, "street/0001.jpg")
             for layout in ("openmvg", "colmap", "opensfm")}
    assert paths["openmvg"] == tmp_path / "openmvg/street/0001_mask.png"
    assert paths["colmap"] == tmp_path / "colmap/street/0001.jpg.png"
    assert paths["opensfm"] == tmp_path / "opensfm/masks/street/0001.jpg.png"
    for path in paths.values():  # every tool: 0 = do not use, non-zero = use
        pixels = read_image(path).pixels
        assert np.array_equal(pixels == 0, mask) and pixels.max() == 255
    with pytest.raises(ValueError):
        feature_mask_path("meshroom", tmp_path, "a.jpg")
