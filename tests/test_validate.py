"""Validation finds what openMVG refuses and what anonymization cannot work with."""

import shutil

import pytest

from helpers import OPENMVG, needs_shared
from scanvan_sfm.sfm import Pose, read_scene, validate_scene
from scanvan_sfm.sfm.io import images_root

pytestmark = needs_shared


@pytest.mark.parametrize("name", ["360_flat_gps", "lund"])
def test_real_scenes_with_their_images_are_valid(name):
    path = OPENMVG / name / "sfm_data.bin"
    scene = read_scene(path)
    assert validate_scene(scene, images_root=images_root(scene, path)) == []


def test_missing_images_are_each_reported():
    scene = read_scene(OPENMVG / "sceaux_castle" / "sfm_data.bin")
    problems = validate_scene(scene, images_root=OPENMVG / "sceaux_castle" / "images")
    assert len(problems) == 12 and all("image not found" in p.message for p in problems)
    assert validate_scene(scene, check_images=False) == []


def test_image_size_is_read_from_the_header_and_compared(tmp_path):
    scene = read_scene(OPENMVG / "360_flat_gps" / "sfm_data.bin")
    src = OPENMVG / "360_flat_gps" / "images"
    for view in scene.views.values():
        shutil.copy(src / view.filename, tmp_path / view.filename)
    shutil.copy(OPENMVG / "lund" / "images" / "01.jpg", tmp_path / scene.views[3].filename)
    (tmp_path / scene.views[5].filename).write_bytes(b"not an image")
    problems = {p.where: p.message for p in validate_scene(scene, images_root=tmp_path)}
    assert set(problems) == {"views[key=3]", "views[key=5]"}
    assert "1024×768" in problems["views[key=3]"] and "unreadable" in problems["views[key=5]"]


def test_orphan_pose_and_intrinsic():
    scene = read_scene(OPENMVG / "360_flat_gps" / "sfm_data.bin")
    del scene.views[8]  # the only user of intrinsic 1
    del scene.views[2]  # pose 2 is left without a view
    wheres = [p.where for p in validate_scene(scene, check_images=False)]
    assert "extrinsics[key=2]" in wheres and "intrinsics[key=1]" in wheres


def test_bad_rotations():
    scene = read_scene(OPENMVG / "lund" / "sfm_data.bin")
    R = scene.extrinsics[0].R
    scene.extrinsics[0] = Pose(rotation=tuple(map(tuple, R * 1.01)), center=scene.extrinsics[0].center)
    scene.extrinsics[1] = Pose(rotation=tuple(map(tuple, -scene.extrinsics[1].R)), center=scene.extrinsics[1].center)
    messages = {p.where: p.message for p in validate_scene(scene, check_images=False)}
    assert messages["extrinsics[key=0].rotation"] == "not orthonormal"
    assert "determinant" in messages["extrinsics[key=1].rotation"]


def test_bad_observations():
    scene = read_scene(OPENMVG / "lund" / "sfm_data.bin")
    lm = scene.structure
    lm.obs_xy[5] = (2000.0, 10.0)   # outside the 1024×768 image
    lm.obs_view[7] = 99             # no such view
    lm.obs_view[9] = 10             # view 10 is not reconstructed
    messages = [str(p) for p in validate_scene(scene, check_images=False)]
    assert any("outside the image" in m for m in messages)
    assert any("no such view" in m for m in messages)
    assert any("not reconstructed" in m for m in messages)
    assert len(messages) == 3


def test_view_size_must_match_its_intrinsic():
    scene = read_scene(OPENMVG / "360_flat_gps" / "sfm_data.bin")
    scene.views[0].width = 6000  # wider, so its observations stay inside
    assert [p.where for p in validate_scene(scene, check_images=False)] == ["views[key=0]"]
