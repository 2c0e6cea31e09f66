"""The scene commands as a user runs them."""

import orjson

from helpers import OPENMVG, cli, needs_shared
from scanvan_sfm.sfm import read_scene

pytestmark = needs_shared


def test_info_json_counts_both_formats():
    for name in ("sfm_data.bin", "sfm_data_bin.json"):
        result = cli("scene", "info", OPENMVG / "360_flat_gps" / name, "--json")
        assert result.returncode == 0, result.stderr
        info = orjson.loads(result.stdout)
        assert info["views"] == 9 and info["reconstructed_views"] == 8
        assert info["unreconstructed_view_ids"] == [8]
        assert info["intrinsics"] == {"spherical": 2} and info["poses"] == 8
        assert (info["landmarks"], info["observations"], info["control_points"]) == (3382, 9479, 0)
        assert info["root_path"] == "images"


def test_convert_with_parts_and_root(tmp_path):
    out = tmp_path / "cams.bin"
    result = cli("scene", "convert", OPENMVG / "lund" / "sfm_data_bin.json", out, "-V", "-I", "-E",
                  "--root", "/data/lund/images")
    assert result.returncode == 0, result.stderr
    scene = read_scene(out)
    assert scene.root_path == "/data/lund/images"
    assert len(scene.views) == 11 and len(scene.extrinsics) == 10 and len(scene.structure) == 0


def test_validate_exit_codes(tmp_path):
    ok = cli("scene", "validate", "sfm_data.bin", cwd=OPENMVG / "360_flat_gps")  # root_path "images" is found there
    assert ok.returncode == 0 and ok.stdout == ""
    elsewhere = cli("scene", "validate", OPENMVG / "360_flat_gps" / "sfm_data.bin", cwd=tmp_path)  # as openMVG
    assert elsewhere.returncode == 1 and elsewhere.stdout.count("image not found: images/") == 9
    assert elsewhere.stdout.splitlines()[-1].endswith(
        f"note: root_path 'images' is relative: openMVG's tools resolve it against the current directory ({tmp_path}), "
        f"where 9 of 9 images are missing; relative to the scene file ({OPENMVG / '360_flat_gps' / 'images'}) they "
        f"are found: run openMVG's tools from {OPENMVG / '360_flat_gps'}, or write an absolute root_path "
        "(scene convert --root)")
    odd = tmp_path / "a\nfolder"  # the note names the current directory: still one line
    odd.mkdir()
    from_odd = cli("scene", "validate", OPENMVG / "360_flat_gps" / "sfm_data.bin", cwd=odd)
    assert from_odd.stdout.count("\n") == 10 and f"current directory ({tmp_path}/a\\nfolder)" in from_odd.stdout
    missing = cli("scene", "validate", OPENMVG / "sceaux_castle" / "sfm_data.bin")
    assert missing.returncode == 1
    assert len(missing.stdout.splitlines()) == 12 and "image not found" in missing.stdout
    skipped = cli("scene", "validate", OPENMVG / "sceaux_castle" / "sfm_data.bin", "--skip-images")
    assert skipped.returncode == 0
    given = cli("scene", "validate", OPENMVG / "lund" / "sfm_data.bin", "--images-root", tmp_path)
    assert given.returncode == 1 and str(tmp_path) in given.stdout and "note:" not in given.stdout


def test_originals_are_not_modified(tmp_path):
    src = OPENMVG / "lund" / "sfm_data.bin"
    before = src.read_bytes()
    cli("scene", "convert", src, tmp_path / "x.json")
    cli("scene", "validate", src)
    assert src.read_bytes() == before
