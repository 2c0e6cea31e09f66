"""The camera rig found from a scene's own panoramas (``rig``, ``anonymize --camera-mask auto``), on
the four shared Amsterdam panoramas: one camera car, its roof rack and camera mount at the bottom,
turned by the car's heading (the panoramas are turned to the north)."""

from itertools import combinations

import cv2
import numpy as np
import orjson
import pytest

from helpers import OPENMVG, SHARED, cli, needs_shared, tree_hashes
from scanvan_sfm import rig
from scanvan_sfm.auto_mask import DECODE_WIDTH
from scanvan_sfm.camera_blur import CameraMasks
from scanvan_sfm.images import Picture, read_image, read_mask, read_reduced, write_image
from scanvan_sfm.sfm import SfMData, write_scene
from scanvan_sfm.sfm.models import Pose, Spherical, View

pytestmark = needs_shared

IMAGES = SHARED / "images"
NAMES = sorted(p.name for p in IMAGES.glob("ams_*.jpg"))
SIZE = (8000, 4000)
#: Parts of the rig in each panorama, labelled by eye (x0, y0, x1, y1): the camera mount and its
#: cable, the rack's middle bar over the windscreen, a piece of the roof.
RIG_PARTS = {
    "ams_TMX7315120208-000059_pano_0006_000037.jpg": [(6900, 2850, 7500, 3150), (2950, 2780, 3050, 3150),
                                                      (6500, 2850, 6800, 3100)],
    "ams_TMX7315120208-000062_pano_0011_000158.jpg": [(2200, 2850, 2750, 3150), (6350, 2820, 6500, 3100),
                                                      (1600, 2800, 2000, 2950)],
    "ams_TMX7315120208-000105_pano_0001_002965.jpg": [(6500, 2850, 7100, 3150), (2850, 2800, 2950, 3100),
                                                      (6100, 2800, 6400, 3000)],
    "ams_TMX7316010203-000255_pano_0000_003393.jpg": [(3800, 2900, 4300, 3150), (3300, 2800, 3700, 3000)],
}
STREET = slice(1700, 2500)   # rows of people and cars, above the roof (whose crest reaches about 2640)
#: A real car (from the last panorama) that follows the camera car in two consecutive views: pasted
#: above the camera mount, where the rig is, so it moves with the rig's turn.
CAR = (1440, 2160, 2480, 2760)
FOLLOWED = (1, 2)


def _reduced(names, folder=IMAGES):
    return [read_reduced(folder / name, DECODE_WIDTH) for name in names]


def _masks(found: rig.Rig) -> list[np.ndarray]:
    return [rig.full_size(found.mask, SIZE, turn) for turn in found.turns]


def _inside(mask: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float(mask[y0:y1, x0:x1].mean())


def _core(box, width: float, height: float):
    """The middle ``width`` × ``height`` of a box (the issue's person and vehicle cores)."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * (1 - width) / 2, (y1 - y0) * (1 - height) / 2
    return round(x0 + dx), round(y0 + dy), round(x1 - dx), round(y1 - dy)


@pytest.fixture(scope="module")
def amsterdam():
    return rig.estimate(_reduced(NAMES))


def test_rig_of_the_amsterdam_panoramas(amsterdam, tmp_path):
    people = orjson.loads((IMAGES / "labels.json").read_bytes())["images"]
    assert amsterdam.turned  # turned to the north: the rig moves with the heading
    masks, no_data = _masks(amsterdam), []
    for name, mask, turn in zip(NAMES, masks, amsterdam.turns, strict=True):
        pixels = read_image(IMAGES / name).pixels
        for part in RIG_PARTS[name]:
            assert _inside(mask, part) > 0.98, (name, part)
        assert not mask[STREET].any(), name
        for box in (b[:4] for b in people[name] if b[4] == "person"):
            # at most the feet, of the two who walk or sit right behind the roof's edge
            assert _inside(mask, box) < 0.1 and _inside(mask, _core(box, 0.4, 0.9)) < 0.05, (name, box)
        assert rig.turn_of(pixels, amsterdam.look, amsterdam.mask) == turn  # a view finds its own turn
        no_data.append(rig.no_data_rows(pixels))
        _save_overlay(pixels, mask, tmp_path / f"{name}-rig.png")
    black = np.all(no_data, axis=0)   # the rows no view has data in: nothing to hide there
    assert black.sum() > 600 and not any(mask[black].any() for mask in masks)


def _save_overlay(pixels, mask, path):
    """For a person to look at: the rig tinted red (the tests' tmp folder keeps the last runs)."""
    small = cv2.resize(pixels, (2000, 1000), interpolation=cv2.INTER_AREA)
    tint = cv2.resize(mask.astype(np.uint8), (2000, 1000)) > 0
    small[tint] = small[tint] // 2 + np.array([127, 0, 0], np.uint8)
    write_image(path, Picture(small[500:850]))


def test_three_views_are_too_few(monkeypatch):
    """Why ``MIN_VIEWS`` is 4: with three of the panoramas, chance agreement in the street is
    too common (``ALIKE``), and without that check the rig reaches into the street."""
    views = _reduced(NAMES)
    for three in combinations(views, 3):
        with pytest.raises(rig.NoRig, match="fewer than the 4"):
            rig.estimate(list(three))
        monkeypatch.setattr(rig, "MIN_VIEWS", 3)
        with pytest.raises(rig.NoRig, match="too alike"):
            rig.estimate(list(three))
        monkeypatch.setattr(rig, "ALIKE", 1.0)
        assert any(mask[STREET].any() for mask in _masks(rig.estimate(list(three))))
        monkeypatch.undo()


def test_views_that_hardly_differ_tell_no_rig():
    """360_flat_gps: eight shots in one small flat; its floor and bed agree from view to view."""
    images = sorted((OPENMVG / "360_flat_gps" / "images").glob("R*.JPG"))
    with pytest.raises(rig.NoRig, match="too alike"):
        rig.estimate([read_reduced(p, DECODE_WIDTH) for p in images])


def _with_followers(folder, scale: float = 1.0):
    """The panoramas (resized by ``scale``) in ``folder``, a car pasted above the camera mount in
    views ``FOLLOWED``; returns the pasted boxes at full size by view."""
    car = read_image(IMAGES / NAMES[3]).pixels[CAR[1]:CAR[3], CAR[0]:CAR[2]]
    boxes = {}
    for view, name in enumerate(NAMES):
        pixels = read_image(IMAGES / name).pixels.copy()
        if view in FOLLOWED:
            mount = RIG_PARTS[name][0]
            x0 = (mount[0] + mount[2] - car.shape[1]) // 2
            boxes[view] = (x0, 2800 - car.shape[0], x0 + car.shape[1], 2800)
            pixels[boxes[view][1]:2800, x0:boxes[view][2]] = car
        if scale != 1:
            pixels = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        write_image(folder / name, Picture(pixels), quality=95)
    return boxes


def test_a_car_that_follows_for_two_views_is_no_rig(amsterdam, tmp_path):
    boxes = _with_followers(tmp_path)
    followed = rig.estimate(_reduced(NAMES, tmp_path))
    for view, box in boxes.items():
        with_car, without = _masks(followed)[view], _masks(amsterdam)[view]
        assert _inside(with_car, box) <= _inside(without, box) + 0.01  # the rig did not grow over the car
        assert _inside(with_car, _core(box, 0.6, 0.6)) < 0.2


def _scene(folder, size) -> SfMData:
    """An openMVG scene of the panoramas in ``folder``: spherical, posed along a street."""
    scene = SfMData(root_path=str(folder), intrinsics={0: Spherical(width=size[0], height=size[1])})
    for view, name in enumerate(NAMES):
        scene.views[view] = View(local_path="", filename=name, width=size[0], height=size[1], id_view=view,
                                 id_intrinsic=0, id_pose=view)
        scene.extrinsics[view] = Pose(rotation=((1, 0, 0), (0, 1, 0), (0, 0, 1)), center=(10.0 * view, 0.0, 0.0))
    return scene


def test_anonymize_finds_the_rig_and_keeps_the_follower(tmp_path):
    """End to end at half size (the detector's time): the rig found, written, used as a camera mask
    (turned per view); the following car detected and masked; a rerun redoes nothing; ``none``
    turns it off."""
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    boxes = {view: tuple(v // 2 for v in box) for view, box in _with_followers(images, 0.5).items()}
    scene_path = tmp_path / "sfm_data.json"
    write_scene(_scene(images, (4000, 2000)), scene_path)
    first = cli("anonymize", scene_path, "--out", out, "--workers", "2")
    assert first.returncode == 0, first.stderr
    assert "camera mask: the rig found in 4 panoramas" in first.stderr and "turning with the heading" in first.stderr
    anonymization = out / "anonymization"
    manifest = orjson.loads((anonymization / "manifest.json").read_bytes())
    settings = manifest["settings"]
    assert settings["camera_mask"] == str(anonymization / "camera_mask.png")
    assert settings["camera_look"] == str(anonymization / "camera_rig.png")
    camera_png = read_image(anonymization / "camera_mask.png").pixels
    assert camera_png.shape == (2000, 4000) and set(np.unique(camera_png)) == {0, 255}  # white = scene
    cameras = CameraMasks(settings["camera_mask"], settings["camera_look"])
    for view, name in enumerate(NAMES):
        entry = manifest["views"][str(view)]
        assert entry["outputs"]["output"].startswith("gaussian_blur/")
        mask = read_mask(anonymization / entry["outputs"]["mask"])
        camera = cameras.for_view(read_image(images / name).pixels)
        assert camera.any() and not mask[camera].any()  # the rig, turned to where it is, is blurred, not filled
        if view in boxes:
            assert _inside(mask, _core(boxes[view], 0.6, 0.6)) > 0.9, view  # the follower is masked
            detections = orjson.loads((anonymization / "segmentation" / f"{name[:-4]}-detections.json").read_bytes())
            assert any(d["cls"] == "vehicles" and _overlap(d, boxes[view]) > 0.5 for d in detections["detections"])
    before = tree_hashes(anonymization)
    again = cli("anonymize", scene_path, "--out", out, "--workers", "2")
    assert again.returncode == 0, again.stderr
    views = orjson.loads((anonymization / "manifest.json").read_bytes())["views"]
    assert "segment" not in again.stderr and all(v["status"] == "done" for v in views.values())
    after = tree_hashes(anonymization)
    assert {p: h for p, h in after.items() if p.name != "manifest.json"} == \
        {p: h for p, h in before.items() if p.name != "manifest.json"}  # byte for byte, the rig's files too
    edited = tmp_path / "edited"  # the README's way to edit the rig by hand: copies passed back
    edited.mkdir()
    for name in ("camera_mask.png", "camera_rig.png"):
        (edited / name).write_bytes((anonymization / name).read_bytes())
    given = cli("anonymize", scene_path, "--out", out, "--workers", "2", "--camera-mask", edited / "camera_mask.png",
                "--camera-look", edited / "camera_rig.png")
    assert given.returncode == 0, given.stderr
    assert "segment" not in given.stderr  # turned to each view as the rig found was: nothing to redo
    assert {p: h for p, h in tree_hashes(anonymization).items() if p.name != "manifest.json"} == \
        {p: h for p, h in before.items() if p.name != "manifest.json"}
    alone = cli("anonymize", scene_path, "--out", out, "--camera-look", edited / "camera_rig.png")
    assert alone.returncode == 2 and "give --camera-mask too" in alone.stderr
    off = cli("anonymize", scene_path, "--out", out, "--workers", "2", "--camera-mask", "none")
    assert off.returncode == 0, off.stderr
    assert "camera mask" not in off.stderr and not (anonymization / "camera_mask.png").exists()
    views = orjson.loads((anonymization / "manifest.json").read_bytes())["views"]
    assert all(v["outputs"]["output"].startswith("blur/") for v in views.values())


def _overlap(detection: dict, box) -> float:
    """The share of ``box`` a detection covers."""
    x0, y0, x1, y1 = box
    w = max(0.0, min(detection["x1"], x1) - max(detection["x0"], x0))
    h = max(0.0, min(detection["y1"], y1) - max(detection["y0"], y0))
    return w * h / ((x1 - x0) * (y1 - y0))
