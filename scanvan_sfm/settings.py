"""Everything that decides a view's outputs, validated in one place; the CLI's defaults come
from here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from . import __version__
from .dataset import check_layouts
from .errors import InputError
from .fill import FILL_MODES
from .images import output_suffix
from .masks import MASK_MODES, GuardedSettings
from .segment import SEGMENTERS

#: The settings that take one of a few names, and what to call them in an error.
CHOICES = {"model": (SEGMENTERS, "model"), "fill": (FILL_MODES, "fill mode"), "mask_mode": (MASK_MODES, "mask mode")}


class Settings(BaseModel):
    """A change of any of these redoes the view (see ``digest``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str = "nanodet"
    model_dir: str | None = None
    fill: str = "fast"
    out_format: str = "same"          # or jpg, png, tif: the filled images' format
    mask_mode: str = "guarded"
    camera_mask: str | None = None
    camera_mask_sha256: str | None = None
    feature_masks: tuple[str, ...] = ()
    guarded: GuardedSettings = GuardedSettings()

    @classmethod
    def checked(cls, **values) -> Settings:
        """Build and validate; a bad value is an ``InputError`` in one line."""
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InputError(f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None

    @model_validator(mode="after")
    def _valid(self) -> Settings:
        for name, (allowed, what) in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"unknown {what} {getattr(self, name)!r} (choose from {', '.join(allowed)})")
        output_suffix("x.jpg", self.out_format)
        check_layouts(self.feature_masks)
        if self.camera_mask is not None and not Path(self.camera_mask).is_file():
            raise InputError(f"{self.camera_mask}: camera mask not found")
        return self

    def digest(self) -> str:
        data = self.model_dump() | {"version": __version__}
        data.pop("model_dir")
        data.pop("camera_mask")
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
