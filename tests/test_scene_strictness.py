"""Leniencies found by fuzzing (issue #11, part 4): what the readers refuse, and that writers
never write what the readers would refuse."""

import math
import struct

import orjson
import pytest

from helpers import OPENMVG, WITHOUT_SHARED, cli
from scanvan_sfm.errors import InputError, SceneFormatError
from scanvan_sfm.sfm import Pose, read_scene, write_scene
from scanvan_sfm.sfm.bin_io import read_bin_counts
from scanvan_sfm.sfm.floattext import format_double

if not OPENMVG.is_dir():  # what follows reads it as the module loads
    pytest.skip(WITHOUT_SHARED, allow_module_level=True)

LUND = OPENMVG / "lund"
GPS = OPENMVG / "360_flat_gps"
LUND_JSON = (LUND / "sfm_data_bin.json").read_bytes()
LUND_BIN = (LUND / "sfm_data.bin").read_bytes()
GPS_BIN = (GPS / "sfm_data.bin").read_bytes()
GPS_VIEWS_JSON = (GPS / "sfm_data_views.json").read_bytes()
LUND_SCENE = read_scene(LUND / "sfm_data.bin")
LUND_JSON_SCENE = read_scene(LUND / "sfm_data_bin.json")  # openMVG's conversion reorders the maps
GPS_SCENE = read_scene(GPS / "sfm_data.bin", structure=False)
NON_FINITE = (math.nan, math.inf, -math.inf)


def _read(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return read_scene(path)


def _refused(tmp_path, name: str, data: bytes) -> SceneFormatError:
    with pytest.raises(SceneFormatError) as exc:
        _read(tmp_path, name, data)
    assert len(str(exc.value).splitlines()) == 1
    return exc.value


def _replace_once(data: bytes, old: bytes, new: bytes, after: bytes = b"") -> tuple[bytes, int]:
    """``data`` with the first ``old`` after ``after`` replaced; and where it was."""
    at = data.index(old, data.index(after) if after else 0)
    return data[:at] + new + data[at + len(old):], at


def _bin_double(data: bytes, old: float, new: float) -> tuple[bytes, int]:
    """The .bin with the one double ``old`` set to ``new``; and its byte offset."""
    packed = struct.pack("<d", old)
    assert data.count(packed) == 1
    return _replace_once(data, packed, struct.pack("<d", new))


# ------------------------------------------------------------------------------ 1. UTF-8

@pytest.mark.parametrize("bad,first_bad", [(b"0\xff.jpg", 1), (b"\xed\xa0\x80jpg", 0), (b"01.jp\xc3", 5)],
                         ids=["invalid-byte", "surrogate", "cut-sequence"])
def test_bin_string_with_invalid_utf8_is_refused_at_its_byte(tmp_path, bad, first_bad):
    """A filename that no JSON could hold is refused on read, at the first bad byte."""
    assert LUND_BIN.count(b"01.jpg") == 1
    data, at = _replace_once(LUND_BIN, b"01.jpg", bad)
    error = _refused(tmp_path, "utf8.bin", data)
    assert error.where == f"byte {at + first_bad}" and error.message == "invalid UTF-8 in a string"


# ------------------------------------------------------------------------------ 2. non-finite cameras

@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("data,old", [
    (LUND_BIN, LUND_SCENE.intrinsics[0].focal_length),
    (LUND_BIN, LUND_SCENE.intrinsics[0].disto_k3[2]),
    (LUND_BIN, LUND_SCENE.extrinsics[0].center[0]),
    (LUND_BIN, LUND_SCENE.extrinsics[3].rotation[1][2]),
    (GPS_BIN, GPS_SCENE.views[7].center[1]),
], ids=["focal", "distortion", "centre", "rotation", "prior"])
def test_non_finite_camera_value_in_bin_is_refused_at_its_byte(tmp_path, data, old, value):
    data, at = _bin_double(data, old, value)
    error = _refused(tmp_path, "camera.bin", data)
    assert error.where == f"byte {at}" and error.message == f"non-finite number {value}"


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
@pytest.mark.parametrize("old", [GPS_SCENE.views[7].center[1], GPS_SCENE.extrinsics[5].rotation[2][0]],
                         ids=["prior", "rotation"])
def test_non_finite_camera_value_in_json_is_refused_at_its_byte(tmp_path, old, text):
    """Not JSON (orjson refuses them, at the first character it cannot take)."""
    data, at = _replace_once(GPS_VIEWS_JSON, format_double(old).encode(), text)
    assert _refused(tmp_path, "nan.json", data).where == f"byte {at + text.startswith(b'-')}"


def _nan_prior(scene) -> str:
    scene.views[7].center = (0.0, math.nan, 0.0)
    return "views[key=7].center[1]"


def _inf_focal(scene) -> str:
    scene.intrinsics[0].focal_length = math.inf
    return "intrinsics[key=0].focal_length"


def _inf_centre(scene) -> str:
    pose = scene.extrinsics[2]
    scene.extrinsics[2] = Pose(rotation=pose.rotation, center=(pose.center[0], pose.center[1], -math.inf))
    return "extrinsics[key=2].center[2]"


def _nan_landmark(scene) -> str:
    scene.structure.X[4, 1] = math.nan
    return f"structure[key={scene.structure.ids[4]}].X[1]"


def _inf_observation(scene) -> str:
    lm = scene.structure
    lm.obs_xy[9, 0] = math.inf
    return f"structure[key={lm.ids[lm.obs_landmark()[9]]}].observations[key={lm.obs_view[9]}].x[0]"


@pytest.mark.parametrize("suffix", [".json", ".bin"])
@pytest.mark.parametrize("source,mutate", [
    (GPS, _nan_prior), (LUND, _inf_focal), (LUND, _inf_centre), (LUND, _nan_landmark), (LUND, _inf_observation),
], ids=["prior", "focal", "centre", "landmark", "observation"])
def test_writers_refuse_non_finite_values(tmp_path, suffix, source, mutate):
    """No NaN/Infinity in a written file (openMVG and our reader refuse them): nothing is written."""
    scene = read_scene(source / "sfm_data.bin")
    where = mutate(scene)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(InputError) as exc:
        write_scene(scene, out)
    assert str(exc.value) == f"{out}: not written: {where} is not a finite number"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ 3. duplicate members

@pytest.mark.parametrize("data,old,new,where", [
    (GPS_VIEWS_JSON, b'"root_path": "images",', b'"root_path": "other",\n    "root_path": "images",', "root_path"),
    (GPS_VIEWS_JSON, b'"root_path": "images",', b'"root_path": "images",\n    "root\\u005fpath": "x",', "root_path"),
    (GPS_VIEWS_JSON, b'"width": 2688,', b'"width": 2688, "wid\\u0074h": 1,', "views[0].value.ptr_wrapper.data.width"),
    (GPS_VIEWS_JSON, b'"key": 8,', b'"key": 8, "key": 8,', "views[0].key"),
    (LUND_JSON, b'"id_feat": ', b'"id_feat": 0, "id_feat": ', "structure[0].value.observations[0].value.id_feat"),
    (LUND_JSON, b'"X": [', b'"X": [0, 0, 0], "X": [', "structure[0].value.X"),
], ids=["top-level", "escaped-top-level", "escaped-nested", "map-key", "observation", "landmark"])
def test_duplicate_members_are_refused_with_their_path(tmp_path, data, old, new, where):
    """orjson would keep the last one silently; openMVG-layout and generic paths alike refuse."""
    data, _ = _replace_once(data, old, new)
    error = _refused(tmp_path, "dup.json", data)
    assert (error.where, error.message) == (where, "duplicate member")


def _generic_layout() -> bytes:
    """The lund scene in a layout the fast scanner leaves to the generic reader: members reordered."""
    doc = orjson.loads(LUND_JSON)
    for entry in doc["structure"]:
        entry["value"] = dict(reversed(list(entry["value"].items())))
    return orjson.dumps(doc)


def test_duplicate_member_in_a_generic_layout_is_refused(tmp_path):
    data, _ = _replace_once(_generic_layout(), b'"X":[', b'"X":[1,2,3],"X":[')
    error = _refused(tmp_path, "dup.json", data)
    assert (error.where, error.message) == ("structure[0].value.X", "duplicate member")


@pytest.mark.parametrize("depth,where,message", [
    (200, "root_path" + "[0]" * 200 + ".a", "duplicate member"),
    (1000, "root_path", "nested too deep"),  # orjson reads 1000 levels, but prints only 255
])
def test_deeply_nested_duplicate_members(tmp_path, depth, where, message):
    nested = b"[" * depth + b'{"a": 1, "a": 1}' + b"]" * depth
    data, _ = _replace_once(GPS_VIEWS_JSON, b'"images"', nested)
    error = _refused(tmp_path, "deep.json", data)
    assert (error.where, error.message) == (where, message)


# ------------------------------------------------------------------------------ 4. versions

def _with_version_json(version: str) -> bytes:
    doc = orjson.loads(GPS_VIEWS_JSON)
    doc["sfm_data_version"] = version
    return orjson.dumps(doc)


def _with_version_bin(version: str) -> bytes:
    text = version.encode()
    return LUND_BIN[:1] + struct.pack("<Q", len(text)) + text + LUND_BIN[1 + 8 + 3:]


@pytest.mark.parametrize("build,name", [(_with_version_json, "v.json"), (_with_version_bin, "v.bin")])
@pytest.mark.parametrize("version", ["0.3", "0.10", "0.3.1", "1.0", "12"])
def test_versions_compare_as_numbers(tmp_path, build, name, version):
    assert _read(tmp_path, name, build(version)).version == version


@pytest.mark.parametrize("build,name", [(_with_version_json, "v.json"), (_with_version_bin, "v.bin")])
@pytest.mark.parametrize("version,message", [
    ("0.3x", "malformed"), ("", "malformed"), ("0..3", "malformed"), ("0.3.", "malformed"),
    (" 0.3", "malformed"), ("v0.3", "malformed"), ("0.\uff13", "malformed"), ("0." + "3" * 5000, "malformed"),
    ("0.2", "not supported"), ("0.2.9", "not supported"), ("0", "not supported"), ("0.02", "not supported"),
])
def test_malformed_or_old_versions_are_refused(tmp_path, build, name, version, message):
    assert message in _refused(tmp_path, name, build(version)).message


# ------------------------------------------------------------------------------ 5. one line

@pytest.mark.parametrize("member,shown", [
    ("\n", "\\n"), ("a\r\nb", "a\\r\\nb"), ("\u2028", "\\u2028"), ("\x1b[2J", "\\x1b[2J"), ("\x85", "\\x85"),
])
def test_control_characters_in_names_give_one_line(tmp_path, member, shown):
    doc = orjson.loads(GPS_VIEWS_JSON)
    doc[member] = 1
    path = tmp_path / "ctl.json"
    path.write_bytes(orjson.dumps(doc))
    result = cli("scene", "info", path)
    assert result.returncode == 2
    assert result.stderr == f"error: {path}: {shown}: unknown member\n"
    assert len(result.stderr.splitlines()) == 1


def test_error_messages_escape_control_characters():
    error = SceneFormatError("a\nb.json", "views[0].\u2029", "unknown view type 'x\ty'")
    assert str(error) == "a\\nb.json: views[0].\\u2029: unknown view type 'x\\ty'"
    assert str(InputError("é ≥ 0.3 × 2")) == "é ≥ 0.3 × 2"


# ------------------------------------------------------------------------------ 6. info on a .bin

def test_scene_info_refuses_trailing_bytes_as_read_scene_does(tmp_path):
    path = tmp_path / "long.bin"
    path.write_bytes(LUND_BIN + b"\x00")
    with pytest.raises(SceneFormatError, match=f"byte {len(LUND_BIN)}: data after the end"):
        read_bin_counts(path)
    with pytest.raises(SceneFormatError, match=f"byte {len(LUND_BIN)}: data after the end"):
        read_scene(path)
    result = cli("scene", "info", path)
    assert result.returncode == 2
    assert result.stderr == f"error: {path}: byte {len(LUND_BIN)}: data after the end of the scene\n"


# ------------------------------------------------------------------------------ 7. non-finite landmarks

def _json_landmark_number(value: float, text: bytes) -> bytes:
    data, _ = _replace_once(LUND_JSON, format_double(value).encode(), text, after=b'"structure"')
    return data


def _obs_place(lm, k: int) -> tuple[int, int]:
    """(landmark, index among its observations) of observation ``k``."""
    owner = int(lm.obs_landmark()[k])
    return owner, k - int(lm.obs_offsets[owner])


OBS = 7
JSON_OBS, BIN_OBS = _obs_place(LUND_JSON_SCENE.structure, OBS), _obs_place(LUND_SCENE.structure, OBS)


@pytest.mark.parametrize("text", [b"NaN", b"-Infinity", b"1e400", b"-1e309"])
@pytest.mark.parametrize("value,where", [
    (LUND_JSON_SCENE.structure.X[0, 0], "structure[0].value.X[0]"),
    (LUND_JSON_SCENE.structure.X[3, 2], "structure[3].value.X[2]"),
    (LUND_JSON_SCENE.structure.obs_xy[OBS, 1], "structure[{}].value.observations[{}].value.x[1]".format(*JSON_OBS)),
], ids=["X0", "X3", "x"])
def test_non_finite_landmark_in_json_is_refused_with_its_path(tmp_path, value, where, text):
    """The fast scanner takes NaN/Infinity tokens and overflowing numbers, then refuses them."""
    error = _refused(tmp_path, "lm.json", _json_landmark_number(value, text))
    assert (error.where, error.message) == (where, "non-finite number")


def test_non_finite_landmark_in_a_generic_layout_is_refused(tmp_path):
    """The generic reader (orjson) refuses NaN as invalid JSON, at its byte."""
    old = orjson.dumps(float(LUND_JSON_SCENE.structure.X[0, 1]))
    data, at = _replace_once(_generic_layout(), old, b"NaN", after=b'"structure"')
    assert _refused(tmp_path, "lm.json", data).where == f"byte {at}"


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("old,entry", [
    (LUND_SCENE.structure.X[0, 0], 0), (LUND_SCENE.structure.X[3, 2], 3),
    (LUND_SCENE.structure.obs_xy[OBS, 1], BIN_OBS[0]),
], ids=["X0", "X3", "x"])
def test_non_finite_landmark_in_bin_is_refused_at_its_byte(tmp_path, old, entry, value):
    """By the walk over the landmark map, so ``scene info`` (which only walks it) refuses it too."""
    data, at = _bin_double(LUND_BIN, old, value)
    error = _refused(tmp_path, "lm.bin", data)
    assert (error.where, error.message) == (f"byte {at}", f"structure[{entry}]: non-finite number")
    with pytest.raises(SceneFormatError, match=f"byte {at}: structure"):
        read_bin_counts(tmp_path / "lm.bin")
