"""Everything that decides a view's outputs, validated in one place; the CLI's defaults come
from here."""

from __future__ import annotations

import hashlib

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from . import __version__
from .camera_blur import check_camera_mask
from .dataset import check_layouts, validation_message
from .errors import InputError
from .fill import FILL_MODES
from .images import output_suffix
from .masks import MASK_MODES, GuardedSettings
from .segment import CLASS_NAMES, DEFAULT_CLASSES, SEGMENTERS, SILHOUETTES

#: The box detectors' maps already grow each person (silhouettes by 2 % of their height, boxes by
#: 10 %, at least 8 px), so the mask grows people by 4 px only; dhSegment's get GuardedSettings().
DETECTOR_GUARDED = GuardedSettings(dilation=(4, 8))
AUTO, NONE = "auto", "none"   # the camera mask found in the panoramas (``auto_mask``), or none

#: The settings that take one of a few names, and what to call them in an error.
CHOICES = {"model": (SEGMENTERS, "model"), "fill": (FILL_MODES, "fill mode"), "mask_mode": (MASK_MODES, "mask mode"),
           "silhouettes": (SILHOUETTES, "silhouette model")}


def check_choice(name: str, value: str) -> None:
    """Refuse a value that is not one of the setting's names (``CHOICES``)."""
    allowed, what = CHOICES[name]
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r} (choose from {', '.join(allowed)})")


def check_classes(classes: tuple[str, ...]) -> None:
    """At least one class, each one of ``CLASS_NAMES``."""
    unknown = [name for name in classes if name not in CLASS_NAMES]
    if unknown or not classes:
        problem = f"unknown class {unknown[0]!r}" if unknown else "no class to anonymize"
        raise InputError(f"{problem} (choose from {', '.join(CLASS_NAMES)})")


class Settings(BaseModel):
    """A change of any of these redoes the view (see ``digest``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str = "nanodet"
    model_dir: str | None = None
    classes: tuple[str, ...] = DEFAULT_CLASSES
    silhouettes: str = "selfie"
    fill: str = "fast"
    out_format: str = "same"          # or jpg, png, tif: the filled images' format
    mask_mode: str = "guarded"
    camera_mask: str | None = AUTO    # a mask file, AUTO (found in the panoramas by anonymize) or None
    camera_mask_sha256: str | None = None
    camera_look: str | None = None    # the rig's look (AUTO): each view's mask is turned to match it
    camera_look_sha256: str | None = None
    feature_masks: tuple[str, ...] = ()
    guarded: GuardedSettings = GuardedSettings()  # for dhSegment; the detectors' is DETECTOR_GUARDED

    @classmethod
    def checked(cls, values: dict, where: str = "settings") -> Settings:
        """Build and validate; a bad value is an ``InputError`` in one line naming ``where``."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InputError(f"{where}: {validation_message(exc)}") from None

    @model_validator(mode="before")
    @classmethod
    def _guarded_for_the_model(cls, values):
        if isinstance(values, dict) and "guarded" not in values and values.get("model", "nanodet") != "dhsegment":
            return values | {"guarded": DETECTOR_GUARDED}
        return values

    @field_validator("camera_mask", mode="before")
    @classmethod
    def _no_camera_mask(cls, value):
        return None if value == NONE else value

    @model_validator(mode="after")
    def _valid(self) -> Settings:
        for name in CHOICES:
            check_choice(name, getattr(self, name))
        check_classes(self.classes)
        check_layouts(self.feature_masks)
        for path in (self.camera_mask, self.camera_look):
            if path not in (None, AUTO):
                check_camera_mask(path)
        if self.camera_look and self.camera_mask in (None, AUTO):
            raise InputError("a camera look turns a camera mask file: give --camera-mask too")
        output_suffix("x.jpg", self.out_format)
        return self

    def digest(self) -> str:
        data = self.model_dump() | {"version": __version__}
        data.pop("model_dir")
        data.pop("camera_mask")
        data.pop("camera_look")
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
