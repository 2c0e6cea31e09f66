"""Utility of the default anonymization on the two completely labelled Amsterdam panoramas
(issue #13): every labelled person, vehicle, ridden bicycle and plate has its core masked, and
the masked pixels lie on them (waste). The measures are benchmarks/utility.py's."""

import json

import numpy as np
import pytest

from benchmarks.utility import FULL_LABELS, SHARED, default_mask, load_labels, missed, paint, scene_cameras, waste
from helpers import needs_shared
from scanvan_sfm.images import read_image
from scanvan_sfm.segment import get_segmenter
from scanvan_sfm.settings import Settings

pytestmark = needs_shared

#: The issue's targets are every core masked and waste ≤ 0.20. Measured (benchmarks/utility.py):
#: every person, vehicle, ridden bicycle and plate core; waste 0.21 on the busy street and 0.11 on
#: the building site. The bound below holds that level, so that a regression fails; it is not the
#: target.
WASTE_BOUND = 0.22
COMPLETE = sorted(json.loads(FULL_LABELS.read_text())["images"])
SIZE = (4000, 8000)  # the panoramas' height and width


@pytest.fixture(scope="module")
def labels():
    return load_labels()


@pytest.fixture(scope="module")
def masks(labels, tmp_path_factory):
    """The default settings' mask of each completely labelled panorama, as the pipeline makes it
    in a scene of the labelled panoramas (whose rig it finds)."""
    settings = Settings()
    segmenter = get_segmenter(settings.model, classes=settings.classes, silhouettes=settings.silhouettes)
    cameras = scene_cameras(sorted(labels), settings, tmp_path_factory.mktemp("rig"))
    return {name: default_mask(read_image(SHARED / name).pixels, segmenter, settings, cameras) for name in COMPLETE}


def boxes_mask(boxes) -> np.ndarray:
    mask = np.zeros(SIZE, bool)
    for box in boxes:
        paint(mask, *box[:4])
    return mask


def test_every_labelled_core_is_masked(labels, masks):
    misses = [f"{box} {share:.0%}" for name in COMPLETE for box, share in missed(masks[name], labels[name])]
    assert not misses, "cores masked too little: " + "; ".join(misses)


@pytest.mark.parametrize("name", COMPLETE)
def test_masked_pixels_lie_on_labelled_objects(name, labels, masks):
    assert waste(masks[name], labels[name]) <= WASTE_BOUND


@pytest.mark.parametrize("name", COMPLETE)
def test_parked_bicycles_are_not_needed_for_recall(name, labels):
    """Masking exactly the recall boxes meets every core with no waste, the parked bicycles left
    out of them; masking the parked bicycles as well is waste. Each ridden bicycle has its rider."""
    entry = labels[name]
    recall = boxes_mask(entry.boxes)
    parked = boxes_mask(entry.parked_bicycles)
    assert entry.parked_bicycles and (parked & ~recall).any()
    assert missed(recall, entry) == []
    assert waste(recall, entry) == 0.0
    assert waste(recall | parked, entry) > 0.0
    riders = boxes_mask([box for box in entry.boxes if box[4] == "person"])
    for bicycle in (box for box in entry.boxes if box[4] == "bicycle"):
        assert (boxes_mask([bicycle]) & riders).any(), f"{bicycle} has no rider"
