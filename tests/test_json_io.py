"""JSON read → write gives openMVG's bytes; any valid layout reads; values are bit-exact."""

import orjson
import pytest

from helpers import JSON_FIXTURES, OPENMVG, fixture_id, needs_shared
from scanvan_sfm.sfm import Parts, json_io, read_scene, write_scene
from scanvan_sfm.sfm.floattext import format_double
from scanvan_sfm.sfm.json_io import read_json


@pytest.mark.parametrize("path", JSON_FIXTURES, ids=fixture_id)
@needs_shared
def test_read_write_is_byte_identical(path, tmp_path):
    out = tmp_path / "out.json"
    write_scene(read_scene(path), out)
    assert out.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("path", JSON_FIXTURES, ids=fixture_id)
@needs_shared
def test_values_equal_a_plain_json_parse(path):
    """Every number read by the streaming scanner is the double a JSON parser gives."""
    doc = orjson.loads(path.read_bytes())
    scene = read_json(path)
    for lm_name in ("structure", "control_points"):
        lm = getattr(scene, lm_name)
        entries = doc[lm_name]
        assert [e["key"] for e in entries] == lm.ids.tolist()
        assert [e["value"]["X"] for e in entries] == lm.X.tolist()
        obs = [o for e in entries for o in e["value"]["observations"]]
        assert [o["key"] for o in obs] == lm.obs_view.tolist()
        assert [o["value"]["id_feat"] for o in obs] == lm.obs_feat.tolist()
        assert [o["value"]["x"] for o in obs] == lm.obs_xy.tolist()
    assert [e["key"] for e in doc["views"]] == list(scene.views)


@needs_shared
def test_float_text_matches_every_fixture_number():
    """The Grisu2 port prints each double exactly as openMVG did (~100k numbers)."""
    import re
    numbers = [tok.decode() for p in JSON_FIXTURES
               for tok in re.findall(rb"-?\d+\.\d+(?:e-?\d+)?|-?\d+e-?\d+", p.read_bytes())]
    assert len(numbers) > 90_000
    assert [format_double(float(t)) for t in numbers] == numbers


@pytest.mark.parametrize("value,text", [
    (1e-7, "1e-7"), (1.234e-7, "1.234e-7"), (1e21, "1e21"), (1.5e22, "1.5e22"),
    (1.2345678901234568e20, "123456789012345680000.0"), (1.234e-6, "0.000001234"),
    (5376.0, "5376.0"), (-0.0, "-0.0"), (0.0, "0.0"), (float("nan"), "NaN"),
    (float("inf"), "Infinity"), (float("-inf"), "-Infinity"), (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e308"),
])
def test_float_text_notation(value, text):
    assert format_double(value) == text


@pytest.mark.parametrize("chunk,landmarks,observations", [(97, 3, 2), (4096, 1000, 5)])
def test_streaming_through_small_chunks_reads_the_same(monkeypatch, chunk, landmarks, observations):
    """Chunk refills, buffer growth and full output columns at every point of the file."""
    expected = {p: read_scene(p) for p in JSON_FIXTURES}
    monkeypatch.setattr(json_io, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(json_io, "SCAN_LANDMARKS", landmarks)
    monkeypatch.setattr(json_io, "SCAN_OBSERVATIONS", observations)
    monkeypatch.setattr(json_io, "GENERIC_LIMIT_BYTES", 0)  # no fallback: the scanner must cope
    for path, scene in expected.items():
        again = read_scene(path)
        assert again.equal_by_id(scene)
        assert list(again.views) == list(scene.views)
        assert again.structure.ids.tolist() == scene.structure.ids.tolist()


@needs_shared
def test_camera_only_read_skips_landmarks():
    scene = read_scene(OPENMVG / "sceaux_castle" / "sfm_data_bin.json", structure=False)
    assert len(scene.views) == 12 and len(scene.extrinsics) == 11 and len(scene.structure) == 0


@needs_shared
def test_compact_and_reordered_json_reads_the_same(tmp_path):
    """Any layout openMVG loads: no indentation, members of a landmark in another order."""
    path = OPENMVG / "lund" / "sfm_data_bin.json"
    doc = orjson.loads(path.read_bytes())
    for entry in doc["structure"]:
        entry["value"] = dict(reversed(list(entry["value"].items())))
    compact = tmp_path / "compact.json"
    compact.write_bytes(orjson.dumps(doc))
    assert read_scene(compact).equal_by_id(read_scene(path))


@needs_shared
def test_pointer_back_reference_is_kept(tmp_path):
    """A data-less ptr_wrapper refers to the object read before; written back the same way."""
    doc = orjson.loads((OPENMVG / "360_flat_gps" / "sfm_data_views.json").read_bytes())
    first = doc["intrinsics"][0]["value"]
    second = doc["intrinsics"][1]["value"]
    second["ptr_wrapper"] = {"id": first["ptr_wrapper"]["id"] & 0x7FFFFFFF}
    path = tmp_path / "backref.json"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    scene = read_scene(path)
    keys = [e["key"] for e in doc["intrinsics"]]
    assert scene.intrinsics[keys[0]] is scene.intrinsics[keys[1]]
    write_scene(scene, tmp_path / "again.json")
    again = orjson.loads((tmp_path / "again.json").read_bytes())
    assert again["intrinsics"][1]["value"]["ptr_wrapper"] == second["ptr_wrapper"]


@needs_shared
def test_partial_write_empties_unselected_parts(tmp_path):
    """openMVG writes every member; unselected ones as empty arrays."""
    scene = read_scene(OPENMVG / "lund" / "sfm_data.bin")
    write_scene(scene, tmp_path / "v.json", Parts.VIEWS | Parts.INTRINSICS)
    doc = orjson.loads((tmp_path / "v.json").read_bytes())
    assert list(doc) == ["sfm_data_version", "root_path", "views", "intrinsics", "extrinsics",
                         "structure", "control_points"]
    assert len(doc["views"]) == 11 and len(doc["intrinsics"]) == 1
    assert doc["extrinsics"] == doc["structure"] == doc["control_points"] == []
