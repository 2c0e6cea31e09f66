"""Plain-Python values (as parsed from JSON or read from bin) ↔ scene models, with error places."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import InputError, SceneFormatError, error_place
from .models import DISTORTION_FIELD, INTRINSIC_TYPES, Pinhole, Pose, SfMData, Spherical, View, ViewPriors

VIEW_TYPES: dict[str | None, type[View]] = {None: View, "view_priors": ViewPriors}
#: Dotted integers; a part longer than 9 digits is not a version (and would not fit ``int``'s limits).
_VERSION = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})*")


def check_version(version: str, fail: Callable[[str], Exception]) -> str:
    """Compared as numbers; views became polymorphic in 0.3 (openMVG 1.1), older layouts are not read."""
    if not _VERSION.fullmatch(version):
        raise fail(f"malformed sfm_data_version {version!r} (expected dotted integers, like 0.3)")
    if tuple(map(int, version.split("."))) < (0, 3):
        raise fail(f"sfm_data_version {version!r} is not supported (openMVG ≥ 1.1 writes 0.3)")
    return version


def check_finite(scene: SfMData, path: str | Path) -> None:
    """Refuse to write NaN or ±Inf: openMVG (and our reader) would not read the file back."""
    place = scene.first_non_finite()
    if place is not None:
        raise InputError(f"{path}: not written: {place} is not a finite number")


def validated(model: type[BaseModel], data: Any, file: str, where: str) -> Any:
    """``model(**data)``, a failure reported at the JSON path of the failing field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SceneFormatError(file, where + error_place(err["loc"]), err["msg"]) from None


def view_from_data(name: str | None, data: Any, file: str, where: str) -> View:
    if name not in VIEW_TYPES:
        raise SceneFormatError(file, where, f"unknown view type {name!r}")
    if name == "view_priors" and isinstance(data, dict) and "use_pose_center_prior" not in data:
        data = {**data, "use_pose_center_prior": False}
    return validated(VIEW_TYPES[name], data, file, where)


def intrinsic_from_data(name: str | None, data: Any, file: str, where: str) -> Pinhole | Spherical:
    cls = INTRINSIC_TYPES.get(name or "")
    if cls is None:
        raise SceneFormatError(file, where, f"unknown intrinsic type {name!r}")
    if cls is Spherical:
        if not isinstance(data, dict) or set(data) != {"value0"}:
            raise SceneFormatError(file, where, "a spherical intrinsic has exactly one member, value0")
        data, where = data["value0"], where + ".value0"
    return validated(cls, {**data, "type": name} if isinstance(data, dict) else data, file, where)


def view_to_data(view: View) -> dict[str, Any]:
    data = view.model_dump()
    if isinstance(view, ViewPriors) and not view.use_pose_center_prior:
        for name in ("use_pose_center_prior", "center_weight", "center"):
            del data[name]
    return data


def intrinsic_to_data(intrinsic: Pinhole | Spherical) -> dict[str, Any]:
    data = intrinsic.model_dump(exclude={"type"})
    return {"value0": data} if isinstance(intrinsic, Spherical) else data


def pose_from_data(data: Any, file: str, where: str) -> Pose:
    return validated(Pose, data, file, where)


def distortion_field(intrinsic: Pinhole) -> str | None:
    return DISTORTION_FIELD.get(intrinsic.type)

