"""The masks, fill and camera-blur commands on a main folder laid out like the original."""

import json
import shutil

import cv2
import numpy as np
import pytest

from helpers import SHARED, cli, needs_shared, tree_hashes
from scanvan_sfm.images import read_image, read_mask
from scanvan_sfm.masks import probmap_to_uint8

pytestmark = needs_shared

PANO = "ams_TMX7315120208-000105_pano_0001_002965.jpg"
CAR_MASK = SHARED / "fixtures" / "scanvan" / "car_mask.png"


def _probmaps(folder, key, size, boxes, scale):
    """People maps at 1/5 resolution drawn from labelled boxes, as a segmenter would give."""
    w, h = size[0] // 5, size[1] // 5
    people = np.zeros((h, w), np.float32)
    for x0, y0, x1, y1 in boxes:
        corners = [(int(x * scale / 5), int(y * scale / 5)) for x, y in ((x0, y0), (x1, y1))]
        cv2.rectangle(people, *corners, 0.9, -1)
    seg = folder / "anonymization" / "segmentation"
    (seg / key).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(seg / f"{key}-probmap-people.png"), probmap_to_uint8(cv2.GaussianBlur(people, (5, 5), 0)))
    cv2.imwrite(str(seg / f"{key}-probmap-vehicle.png"), np.zeros((h, w), np.uint8))


@pytest.fixture(scope="module")
def main_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("main")
    images = folder / "images"
    (images / "street").mkdir(parents=True)
    pano = cv2.resize(cv2.imread(str(SHARED / "images" / PANO)), (3008, 1504), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(images / "pano.jpg"), pano)
    labels = json.loads((SHARED / "images" / "labels.json").read_text())["images"][PANO]
    _probmaps(folder, "pano", (3008, 1504), [b[:4] for b in labels if b[4] == "person"], 3008 / 8000)
    shutil.copy(SHARED / "images" / "opensfm_lund_01.jpg", images / "street" / "01.jpg")
    _probmaps(folder, "street/01", (1024, 768), [(425, 440, 475, 550)], 1.0)
    truncated = (SHARED / "images" / "opensfm_lund_25.jpg").read_bytes()
    (images / "cut.jpg").write_bytes(truncated[:len(truncated) // 2])
    _probmaps(folder, "cut", (1024, 768), [], 1.0)
    shutil.copy(SHARED / "images" / "darknet_person.jpg", images / "noprobs.jpg")
    shutil.copy(SHARED / "images" / "darknet_person.jpg", images / "twin.jpg")
    cv2.imwrite(str(images / "twin.png"), cv2.imread(str(SHARED / "images" / "darknet_person.jpg")))
    return folder


def test_steps_process_good_images_and_report_bad_ones(main_folder):
    originals = tree_hashes(main_folder / "images")
    anon = main_folder / "anonymization"

    masks = cli("masks", main_folder, "--feature-masks", "openmvg")
    assert masks.returncode == 1
    for name in ("noprobs.jpg", "twin.jpg", "twin.png"):
        assert f"failed: {name}" in masks.stderr
    assert (anon / "masks" / "pano-mask.png").is_file() and (anon / "masks" / "street" / "01-mask.png").is_file()
    person = read_mask(anon / "masks" / "street" / "01-mask.png")
    assert person[440:550, 425:475].all() and 0.005 < person.mean() < 0.05
    assert (anon / "feature_masks" / "openmvg" / "street" / "01_mask.png").is_file()

    fill = cli("fill", main_folder)
    assert fill.returncode == 1 and "failed: cut.jpg" in fill.stderr and "truncated" in fill.stderr
    filled = read_image(anon / "blur" / "street" / "01.jpg")
    source = read_image(main_folder / "images" / "street" / "01.jpg")
    assert filled.metadata == source.metadata
    assert set(source.metadata) == {"exif", "xmp", "icc_profile"}
    assert (anon / "blur" / "pano.jpg").is_file() and not (anon / "blur" / "cut.jpg").exists()

    blur = cli("camera-blur", main_folder, "--camera-mask", CAR_MASK)
    assert blur.returncode == 1
    assert (anon / "gaussian_blur" / "pano.jpg").is_file()     # 2:1 like the mask: rescaled
    assert "failed: street/01.jpg" in blur.stderr                # 4:3: refused
    assert tree_hashes(main_folder / "images") == originals


def test_lossless_output_changes_only_masked_pixels(main_folder):
    assert cli("fill", main_folder, "--format", "png", "--mode", "telea").returncode == 1  # cut.jpg still fails
    mask = read_mask(main_folder / "anonymization" / "masks" / "pano-mask.png")
    source = read_image(main_folder / "images" / "pano.jpg").pixels
    filled = read_image(main_folder / "anonymization" / "blur" / "pano.png").pixels
    assert mask.any() and np.array_equal(filled[~mask], source[~mask])
    assert not np.array_equal(filled[mask], source[mask])


def test_seed_masks_in_the_original_convention(tmp_path):
    folder = tmp_path / "main"
    (folder / "images").mkdir(parents=True)
    shutil.copy(SHARED / "images" / "opensfm_lund_01.jpg", folder / "images" / "01.jpg")
    _probmaps(folder, "01", (1024, 768), [(425, 440, 475, 550)], 1.0)
    assert cli("masks", folder, "--mode", "seed", "--original-convention").returncode == 0
    written = read_image(folder / "anonymization" / "masks" / "01-mask.png").pixels
    assert written.shape == (768, 1024, 3) and written[500, 450].max() == 0 and written[100, 100].min() == 255
    result = cli("fill", folder, "--original-convention", "--format", "png")
    assert result.returncode == 0, result.stderr
    assert "fill" in result.stderr and "done" in result.stderr  # the summary table


def test_bad_arguments_exit_2(tmp_path):
    result = cli("masks", tmp_path, "--mode", "otsu")
    assert result.returncode == 2 and "unknown mask mode" in result.stderr
    result = cli("camera-blur", tmp_path, "--camera-mask", tmp_path / "nope.png")
    assert result.returncode == 2 and "camera mask not found" in result.stderr
    result = cli("masks", tmp_path, "--feature-masks", "meshroom")
    assert result.returncode == 2 and "unknown feature-mask layout" in result.stderr
    result = cli("fill", tmp_path / "nowhere")
    assert result.returncode == 2 and "no images folder" in result.stderr


def test_masks_step_keeps_reported_layers(tmp_path):
    """The folder masks step, like anonymize, merges the manual and excess layers of applied reports."""
    folder = tmp_path / "main"
    (folder / "images" / "street").mkdir(parents=True)
    shutil.copy(SHARED / "images" / "opensfm_lund_01.jpg", folder / "images" / "street" / "01.jpg")
    _probmaps(folder, "street/01", (1024, 768), [(425, 440, 475, 550)], 1.0)
    layers = folder / "anonymization" / "masks" / "street"
    layers.mkdir(parents=True)
    manual = np.zeros((768, 1024), np.uint8)
    manual[100:200, 100:300] = 255
    excess = np.zeros((768, 1024), np.uint8)
    excess[500:550, 425:475] = 255   # the lower part of the detected person
    cv2.imwrite(str(layers / "01-manual.png"), manual)
    cv2.imwrite(str(layers / "01-excess.png"), excess)
    assert cli("masks", folder).returncode == 0
    mask = read_mask(layers / "01-mask.png")
    automatic = read_mask(layers / "01-automatic.png")
    assert mask[100:200, 100:300].all() and not automatic[100:200, 100:300].any()
    assert automatic[500:550, 425:475].all() and not mask[500:550, 425:475].any()
    assert np.array_equal(mask, (automatic & ~(excess > 0)) | (manual > 0))
