"""The .bin reads and writes byte-identically and agrees with openMVG's own JSON conversion."""

import pytest

from helpers import BIN_FIXTURES, fixture_id, needs_shared
from scanvan_sfm.sfm import Parts, convert_scene, read_scene, write_scene
from scanvan_sfm.sfm.bin_io import read_bin_counts

pytestmark = needs_shared


@pytest.mark.parametrize("path", BIN_FIXTURES, ids=fixture_id)
def test_read_write_is_byte_identical(path, tmp_path):
    write_scene(read_scene(path), tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("path", BIN_FIXTURES, ids=fixture_id)
def test_bin_to_json_equals_openmvg_conversion(path, tmp_path):
    """openMVG reorders maps on load, so compare by id; values bit-exact."""
    convert_scene(path, tmp_path / "ours.json")
    ours = read_scene(tmp_path / "ours.json")
    assert ours.equal_by_id(read_scene(path.with_name("sfm_data_bin.json")))
    assert ours.equal_by_id(read_scene(path))


@pytest.mark.parametrize("path", BIN_FIXTURES, ids=fixture_id)
def test_json_to_bin_equals_openmvg_bin(path, tmp_path):
    convert_scene(path.with_name("sfm_data_bin.json"), tmp_path / "ours.bin")
    assert read_scene(tmp_path / "ours.bin").equal_by_id(read_scene(path))


@pytest.mark.parametrize("path", BIN_FIXTURES, ids=fixture_id)
def test_views_only_conversion_is_byte_identical_to_openmvg(path, tmp_path):
    """ConvertSfM_DataFormat -V -I -E of openMVG's JSON gives openMVG's views file."""
    out = tmp_path / "views.json"
    convert_scene(path.with_name("sfm_data_bin.json"), out, Parts.VIEWS | Parts.INTRINSICS | Parts.EXTRINSICS)
    assert out.read_bytes() == path.with_name("sfm_data_views.json").read_bytes()


@pytest.mark.parametrize("path", BIN_FIXTURES, ids=fixture_id)
def test_counts_without_reading_structure(path):
    scene, counts = read_bin_counts(path)
    full = read_scene(path)
    assert len(scene.structure) == 0 and len(scene.views) == len(full.views)
    assert counts["structure"] == len(full.structure)
    assert counts["structure_observations"] == full.structure.n_observations
