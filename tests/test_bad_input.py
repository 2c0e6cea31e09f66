"""Corrupt, truncated and ill-typed scenes: one clear error naming the place, exit code 2."""

import contextlib
import os
import struct
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import OPENMVG, PROJECT, WITHOUT_SHARED, cli
from scanvan_sfm.dataset import Dataset
from scanvan_sfm.errors import SceneFormatError
from scanvan_sfm.sfm import read_scene

if not OPENMVG.is_dir():  # what follows reads it as the module loads
    pytest.skip(WITHOUT_SHARED, allow_module_level=True)

LUND_JSON = (OPENMVG / "lund" / "sfm_data_bin.json").read_bytes()
LUND_BIN = (OPENMVG / "lund" / "sfm_data.bin").read_bytes()
GPS_VIEWS_JSON = (OPENMVG / "360_flat_gps" / "sfm_data_views.json").read_bytes()
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return read_scene(path)


@FUZZ
@given(cut=st.integers(0, len(LUND_JSON) - 1))
def test_truncated_json_fails_cleanly(tmp_path, cut):
    with pytest.raises(SceneFormatError):
        _read(tmp_path, "t.json", LUND_JSON[:cut])


@FUZZ
@given(cut=st.integers(0, len(LUND_BIN) - 1))
def test_truncated_bin_fails_cleanly(tmp_path, cut):
    with pytest.raises(SceneFormatError):
        _read(tmp_path, "t.bin", LUND_BIN[:cut])


@FUZZ
@given(data=st.data())
def test_corrupted_files_read_or_fail_cleanly(tmp_path, data):
    """Overwritten bytes anywhere: the scene reads, or one SceneFormatError; never anything else."""
    name, source = data.draw(st.sampled_from([("c.json", LUND_JSON), ("c.json", GPS_VIEWS_JSON), ("c.bin", LUND_BIN)]))
    pos = data.draw(st.integers(0, len(source) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=8))
    with contextlib.suppress(SceneFormatError):
        _read(tmp_path, name, source[:pos] + junk + source[pos + len(junk):])


def _edit(mutate) -> bytes:
    doc = orjson.loads(GPS_VIEWS_JSON)
    mutate(doc)
    return orjson.dumps(doc)


@pytest.mark.parametrize("mutate,where,message", [
    (lambda d: d.pop("extrinsics"), "extrinsics", "missing member"),
    (lambda d: d["views"][2]["value"]["ptr_wrapper"]["data"].update(width=5376.0),
     "views[2].value.ptr_wrapper.data.width", "valid integer"),
    (lambda d: d["views"][0]["value"]["ptr_wrapper"]["data"].pop("filename"),
     "views[0].value.ptr_wrapper.data.filename", "Field required"),
    (lambda d: d["intrinsics"][0]["value"].update(polymorphic_name="kannala"),
     "intrinsics[0].value.ptr_wrapper.data", "unknown intrinsic type 'kannala'"),
    (lambda d: d["intrinsics"][1]["value"]["ptr_wrapper"].update(id=77),
     "intrinsics[1].value.ptr_wrapper.id", "pointer id 77"),
    (lambda d: d["intrinsics"][1]["value"].update(polymorphic_id=9),
     "intrinsics[1].value.polymorphic_id", "polymorphic_id 9"),
    (lambda d: d["extrinsics"][0]["value"]["rotation"].pop(), "extrinsics[0].value.rotation[2]", "Field required"),
    (lambda d: d["views"].append(d["views"][0]), "views[9].key", "duplicate key"),
    (lambda d: d.update(sfm_data_version="0.2"), "sfm_data_version", "not supported"),
])
def test_json_errors_name_the_json_path(tmp_path, mutate, where, message):
    with pytest.raises(SceneFormatError) as exc:
        _read(tmp_path, "e.json", _edit(mutate))
    assert exc.value.where == where and message in exc.value.message


@pytest.mark.parametrize("tail", [b"}", b" x", b"\n{}"])
def test_data_after_the_json_scene_is_an_error(tmp_path, tail):
    with pytest.raises(SceneFormatError) as exc:
        _read(tmp_path, "tail.json", GPS_VIEWS_JSON + tail)
    assert exc.value.where.startswith("byte ")
    assert read_scene(OPENMVG / "360_flat_gps" / "sfm_data_views.json").equal_by_id(
        _read(tmp_path, "ws.json", GPS_VIEWS_JSON + b"\n \t"))


def test_bin_errors_name_the_byte_offset(tmp_path):
    views_count = 1 + 8 + len("0.3") + 8 + len("images")
    huge_views = LUND_BIN[:views_count] + struct.pack("<Q", 1 << 60) + LUND_BIN[views_count + 8:]
    with pytest.raises(SceneFormatError) as exc:
        _read(tmp_path, "h.bin", huge_views)
    assert exc.value.where == f"byte {views_count}" and "larger than the rest" in exc.value.message
    with pytest.raises(SceneFormatError, match="byte 0: big-endian"):
        _read(tmp_path, "be.bin", b"\x00" + LUND_BIN[1:])
    with pytest.raises(SceneFormatError, match="data after the end"):
        _read(tmp_path, "long.bin", LUND_BIN + b"\x00")


def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    cases = {
        "trunc.json": LUND_JSON[:5000], "trunc.bin": LUND_BIN[:5000],
        "garbage.bin": b"\x01garbage",
        "float.json": _edit(lambda d: d["views"][0]["value"]["ptr_wrapper"]["data"].update(id_view=1.5)),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        for args in (["scene", "info", tmp_path / name],
                     ["scene", "convert", tmp_path / name, tmp_path / "out.bin"],
                     ["scene", "validate", tmp_path / name]):
            result = cli(*args)
            assert result.returncode == 2, (name, args, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / name}: "), result.stderr
            assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases)


def test_an_output_folder_no_absolute_root_path_can_name_is_refused_before_any_work(tmp_path):
    out = Path(os.fsdecode(os.fsencode(tmp_path) + b"/out-\xff"))  # not UTF-8: a scene file cannot hold it
    result = cli("anonymize", PROJECT / "fixtures" / "lund" / "sfm_data_bin.json", "--out", out)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "--relative-root" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    Dataset(out).check_root_text(relative=True)  # the way out it names
