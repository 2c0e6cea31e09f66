"""Camera/car-roof blur: the original's box blur exactly, an optional feather, mask sizes."""

import warnings

import cv2
import numpy as np
import pytest

from helpers import SHARED, needs_shared
from scanvan_sfm.camera_blur import camera_blur, load_camera_mask
from scanvan_sfm.errors import InputError
from scanvan_sfm.images import read_image

pytestmark = needs_shared

CAR_MASK = SHARED / "fixtures" / "scanvan" / "car_mask.png"


@pytest.fixture(scope="module")
def panorama():
    image = read_image(SHARED / "images" / "ams_TMX7315120208-000062_pano_0011_000158.jpg").pixels
    return cv2.resize(image, (6016, 3008), interpolation=cv2.INTER_AREA)


def test_seed_blur_is_the_original(panorama):
    """gaussian_blur.py: mask = bitwise_not(imread(mask, 0)); out[mask != 0] = cv.blur(img, (20, 20))."""
    mask = cv2.bitwise_not(cv2.imread(str(CAR_MASK), 0))
    expected = panorama.copy()
    expected[mask != 0] = cv2.blur(panorama, (20, 20))[mask != 0]
    car = load_camera_mask(CAR_MASK, (6016, 3008))
    assert 0.4 < car.mean() < 0.55
    assert np.array_equal(camera_blur(panorama, car), expected)


def test_feathered_edge(panorama):
    car = load_camera_mask(CAR_MASK, (6016, 3008))
    hard, soft = camera_blur(panorama, car), camera_blur(panorama, car, feather=16)
    assert np.array_equal(soft[car], hard[car])                  # the car is fully blurred
    distance = cv2.distanceTransform((~car).view(np.uint8), cv2.DIST_L2, 5)
    far = distance > 40
    assert np.array_equal(soft[far], panorama[far])               # the scene beyond the feather is untouched
    band = (distance > 0) & (distance < 6)
    assert np.abs(soft[band].astype(int) - panorama[band]).mean() > 0.5  # the edge is softened


def test_camera_mask_sizes():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bigger = load_camera_mask(CAR_MASK, (8000, 4000))
    assert bigger.shape == (4000, 8000) and "rescaled" in str(caught[0].message)
    assert abs(bigger.mean() - load_camera_mask(CAR_MASK, (6016, 3008)).mean()) < 0.001
    with pytest.raises(InputError, match="6016×3008, the images are 1024×768"):
        load_camera_mask(CAR_MASK, (1024, 768))
    with pytest.raises(InputError, match="camera mask is"):
        camera_blur(np.zeros((10, 20, 3), np.uint8), np.zeros((10, 10), bool))
