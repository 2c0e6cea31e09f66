"""People as silhouettes, parked bicycles left alone (``--classes``): on the shared labelled
panoramas and photos."""

import json

import numpy as np
import pytest

from benchmarks.utility import core_share
from helpers import SHARED, cli, needs_shared
from scanvan_sfm.images import read_image
from scanvan_sfm.masks import GuardedSettings
from scanvan_sfm.segment import CLASS_NAMES, DEFAULT_CLASSES, get_segmenter
from scanvan_sfm.segment.base import Detection, maps_from_detections
from scanvan_sfm.segment.classes import chosen
from scanvan_sfm.segment.detector import group_duplicates
from scanvan_sfm.segment.silhouette import MIN_HEIGHT, Matting, silhouette
from scanvan_sfm.view import segment, view_mask

PANORAMA = "ams_TMX7315120208-000105_pano_0001_002965.jpg"  # a boy close by, a group of four, a walker


@pytest.fixture(scope="module")
def matting():
    return Matting("selfie")


def person(x0, y0, x1, y1, score=0.9):
    return Detection(x0, y0, x1, y1, score, "people", "person", 0.25)


@needs_shared
def test_silhouettes_cover_every_labelled_person_with_less_area_than_boxes():
    labels = json.loads((SHARED / "images" / "labels.json").read_text())["images"][PANORAMA]
    pixels = read_image(SHARED / "images" / PANORAMA).pixels
    masks = {}
    for shapes in ("selfie", "none"):
        segmented = segment(pixels, get_segmenter(silhouettes=shapes), None)
        only_people = dict(segmented.probmaps, vehicles=np.zeros_like(segmented.probmaps["vehicles"]))
        masks[shapes], _ = view_mask(only_people, pixels.shape[:2], "guarded", GuardedSettings(), None, {})
    persons = [box for box in labels if box[4] == "person"]
    assert len(persons) == 14
    for box in persons:
        assert core_share(masks["selfie"], box) >= 0.85, box
    # the people mask shrinks by at least a quarter, and hardly leaves the boxes' mask
    outside = (masks["selfie"] & ~masks["none"]).sum()
    assert masks["selfie"].sum() < 0.75 * masks["none"].sum() and outside < 0.01 * masks["selfie"].sum(), outside


@needs_shared
@pytest.mark.parametrize("model", ["selfie", "rvm"])
def test_both_models_find_the_walker(model):
    """rvm's outputs are named by aliases in its signature (``pha``), its recurrent state zero."""
    pixels = read_image(SHARED / "images" / "opensfm_lund_01.jpg").pixels
    shape = silhouette(pixels, person(429, 447, 471, 546), Matting(model), panorama=False)
    assert shape is not None
    assert 0.3 < shape.mask.mean() < 0.8  # the crop is the box grown by a quarter per side


@needs_shared
def test_unreliable_silhouettes_keep_the_box(matting):
    pixels = read_image(SHARED / "images" / "opensfm_lund_01.jpg").pixels
    walker = person(429, 447, 471, 546)
    # nobody on a blank wall, and a person below MIN_HEIGHT: None, so the box is painted
    assert silhouette(np.full((768, 1024, 3), 128, np.uint8), walker, matting, panorama=False) is None
    assert silhouette(pixels, person(440, 500, 460, 500 + MIN_HEIGHT - 1), matting, panorama=False) is None


@needs_shared
def test_silhouette_across_the_panorama_seam(matting):
    pixels = read_image(SHARED / "images" / PANORAMA).pixels
    labels = json.loads((SHARED / "images" / "labels.json").read_text())["images"][PANORAMA]
    x0, y0, x1, y1 = max((box[:4] for box in labels if box[4] == "person"), key=lambda b: b[3] - b[1])
    rolled = np.roll(pixels, pixels.shape[1] - int(x0) - 20, axis=1)  # the person now runs over the seam
    width = pixels.shape[1]
    shift = width - int(x0) - 20
    across = person(x0 + shift, y0, x1 + shift, y1)
    assert across.x1 > width
    straight = silhouette(pixels, person(x0, y0, x1, y1), matting, True)
    wrapped = silhouette(rolled, across, matting, True)
    assert straight is not None and wrapped is not None
    assert abs(int(wrapped.mask.sum()) - int(straight.mask.sum())) < 0.05 * straight.mask.sum()


def test_parked_bicycles_are_left_alone_by_default():
    rider = person(100, 50, 140, 200)
    ridden = Detection(95, 120, 150, 210, 0.8, "vehicles", "bicycle", 0.35)
    parked = Detection(400, 130, 460, 210, 0.8, "vehicles", "bicycle", 0.35)
    across_seam = Detection(990, 130, 1030, 210, 0.8, "vehicles", "bicycle", 0.35)
    seam_rider = person(5, 50, 25, 200)
    scooter = Detection(600, 130, 660, 210, 0.8, "vehicles", "motorcycle", 0.35)
    found = [[d] for d in (rider, ridden, parked, across_seam, seam_rider, scooter)]
    default = chosen(found, DEFAULT_CLASSES, 1000)
    assert default == [[rider], [ridden], [across_seam], [seam_rider], [scooter]]
    assert chosen(found, CLASS_NAMES, 1000) == found
    assert chosen(found, ("person",), 1000) == [[rider], [seam_rider]]
    assert chosen(found, ("parked-bicycle",), None) == [[parked], [across_seam]]  # a photo: no seam


def test_a_group_is_what_its_best_confident_box_says():
    """NanoDet sees a dense rack of parked bicycles as bicycles and, less surely, as a motorcycle:
    the group is a parked bicycle. A motorcycle seen more surely than a bicycle stays."""
    rack = Detection(400, 130, 600, 210, 0.7, "vehicles", "bicycle", 0.35)
    faint = Detection(410, 135, 600, 215, 0.4, "vehicles", "motorcycle", 0.35)
    scooter = Detection(700, 130, 800, 210, 0.8, "vehicles", "motorcycle", 0.35)
    behind = Detection(700, 135, 795, 210, 0.5, "vehicles", "bicycle", 0.35)
    soft_train = Detection(0, 0, 1000, 400, 0.6, "vehicles", "train", 0.75)  # below its threshold
    groups = group_duplicates([rack, faint, scooter, behind], None)
    assert sorted(map(len, groups)) == [2, 2]
    assert chosen(groups, DEFAULT_CLASSES, None) == [[scooter, behind]]
    assert chosen([[soft_train, rack]], DEFAULT_CLASSES, None) == []  # the confident box decides


@needs_shared
def test_parked_bicycle_in_a_photo_only_with_its_class():
    pixels = read_image(SHARED / "images" / "opensfm_lund_01.jpg").pixels
    bicycle = (slice(470, 560), slice(720, 772))  # the bicycle parked against the house at the right
    default = get_segmenter().segment(pixels, panorama=False).maps["vehicles"]
    every = get_segmenter(classes=CLASS_NAMES).segment(pixels, panorama=False).maps["vehicles"]
    scale = default.shape[1] / pixels.shape[1]
    region = tuple(slice(int(s.start * scale), int(s.stop * scale)) for s in bicycle)
    assert (default[region] >= 0.5).mean() == 0
    assert (every[region] >= 0.5).mean() > 0.5


def test_a_photo_box_does_not_wrap_but_a_panorama_box_does():
    edge = person(950, 100, 1000, 200)
    photo = maps_from_detections([edge], (1000, 500), 1000, wrap=False)["people"]
    panorama = maps_from_detections([edge], (1000, 500), 1000, wrap=True)["people"]
    assert photo[150, :10].max() == 0 and panorama[150, :3].min() >= 0.5  # the 10 % margin crosses the edge


def test_classes_option_is_checked(tmp_path):
    result = cli("anonymize", str(tmp_path / "scene.json"), "--classes", "person,boat")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unknown class 'boat'" in result.stderr
    result = cli("anonymize", str(tmp_path / "scene.json"), "--silhouettes", "sam")
    assert result.returncode == 2 and "unknown silhouette model 'sam'" in result.stderr


def test_a_large_car_loses_its_top_corners_only():
    car = Detection(100, 100, 300, 250, 0.9, "vehicles", "car", 0.35)
    far = Detection(500, 100, 540, 130, 0.9, "vehicles", "car", 0.35)
    van = Detection(600, 100, 800, 250, 0.9, "vehicles", "truck", 0.35)
    vehicles = maps_from_detections([car, far, van], (1000, 500), 1000, margin=0)["vehicles"] >= 0.5
    assert not vehicles[100:110, 100:130].any() and not vehicles[100:110, 270:300].any()  # the top corners
    assert vehicles[130:220, 160:240].all() and vehicles[200:250, 100:300].all()  # the core, the bottom (plates)
    assert vehicles[100:130, 500:540].all() and vehicles[100:250, 600:800].all()  # a small car, a truck: whole
