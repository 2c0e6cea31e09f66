"""JSON Schema of openMVG's scene JSON, composed from the scene models.

Regenerate the checked-in copy with ``python -m scanvan_sfm.sfm.schema > schemas/sfm_data.schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from .models import INTRINSIC_TYPES, UNDEFINED_ID, Pose, Spherical, View, ViewPriors

UINT = {"type": "integer", "minimum": 0, "maximum": UNDEFINED_ID}


def _array(items: dict, n: int | None = None) -> dict:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if n is not None:
        schema |= {"minItems": n, "maxItems": n}
    return schema


def _object(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required, "additionalProperties": False}


def _map(value: dict) -> dict:
    """cereal writes a map as an array of {key, value}."""
    return _array(_object({"key": UINT, "value": value}))


def _pointer(data: dict[str | None, dict]) -> dict:
    """A cereal polymorphic shared pointer; ``data`` by registered name (None: exact type)."""
    names = sorted(n for n in data if n is not None)
    return _object({
        "polymorphic_id": UINT,
        "polymorphic_name": {"enum": names},
        "ptr_wrapper": _object({"id": UINT, "data": {"anyOf": list(data.values())}}, ["id"]),
    }, ["polymorphic_id", "ptr_wrapper"])


def _model(cls: type[BaseModel], drop: tuple[str, ...] = ()) -> dict:
    schema = cls.model_json_schema()
    for name in drop:
        schema["properties"].pop(name, None)
        schema["required"] = [r for r in schema.get("required", []) if r != name]
    return schema


def scene_json_schema() -> dict:
    intrinsic_data: dict[str | None, dict] = {name: _model(cls, ("type",)) for name, cls in INTRINSIC_TYPES.items()}
    intrinsic_data["spherical"] = _object({"value0": _model(Spherical, ("type",))})
    landmark = _object({
        "X": _array({"type": "number"}, 3),
        "observations": _map(_object({"id_feat": UINT, "x": _array({"type": "number"}, 2)})),
    })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "openMVG sfm_data (JSON, version 0.3)",
        **_object({
            "sfm_data_version": {"type": "string"},
            "root_path": {"type": "string"},
            "views": _map(_pointer({None: _model(View), "view_priors": _model(ViewPriors)})),
            "intrinsics": _map(_pointer(intrinsic_data)),
            "extrinsics": _map(_model(Pose)),
            "structure": _map(landmark),
            "control_points": _map(landmark),
        }),
    }


def schema_text() -> str:
    return json.dumps(scene_json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
