"""The checked-in JSON Schema is generated from the models and describes openMVG's real files."""

import jsonschema
import orjson
import pytest

from helpers import OPENMVG, PROJECT, needs_shared
from scanvan_sfm.sfm.schema import scene_json_schema, schema_text

SCHEMA_FILE = PROJECT / "schemas" / "sfm_data.schema.json"


def test_checked_in_schema_matches_the_models():
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "schemas/ drifted from the models: python -m scanvan_sfm.sfm.schema > schemas/sfm_data.schema.json")


CONFORMING = [*sorted(OPENMVG.glob("*/sfm_data_views.json")), *sorted(OPENMVG.glob("*/sfm_data_init.json")),
              OPENMVG / "lund" / "sfm_data_bin.json"]


@pytest.mark.parametrize("path", CONFORMING, ids=lambda p: f"{p.parent.name}/{p.name}")
@needs_shared
def test_real_files_conform(path):
    jsonschema.validate(orjson.loads(path.read_bytes()), scene_json_schema())


@pytest.mark.parametrize("member,value", [("width", "5376"), ("id_pose", -1), ("id_view", 2**32)])
@needs_shared
def test_schema_rejects_what_openmvg_rejects(member, value):
    doc = orjson.loads((OPENMVG / "360_flat_gps" / "sfm_data_views.json").read_bytes())
    doc["views"][0]["value"]["ptr_wrapper"]["data"][member] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, scene_json_schema())
