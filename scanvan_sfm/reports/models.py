"""What a report is, as the API and the feed carry it.

Angles follow the original ScanVan feed: radians, ``pitch`` 0 at the top of the panorama to π at
the bottom, ``yaw`` 0 at the left edge to 2π; so x = W·yaw/2π and y = H·pitch/π. A photo's polygon
is sent in its pixels and stored in the same angles, through the camera (``photo``).
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from ..errors import InputError
from .spherical import MAX_CAP, directions, placeable_cap

MAX_VERTICES = 100
#: A stored polygon: a photo's is its corners and the points that keep its edges straight in the photo.
MAX_STORED_VERTICES = 2000
MAX_COMMENT = 2000
MAX_NOTE = 2000
#: A polygon thinner than this (radians, about a tenth of a pixel on an 8000-pixel-wide panorama)
#: has no area.
MIN_WIDTH = 1e-4


class Category(StrEnum):
    blur_missing = "blur_missing"   # a person or vehicle is still recognisable
    blur_excess = "blur_excess"     # something was masked that need not be


class Status(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class Vertex(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    pitch: float = Field(strict=True, ge=0.0, le=math.pi, description="radians, 0 at the top to π at the bottom")
    yaw: float = Field(strict=True, ge=0.0, le=2 * math.pi, description="radians, 0 at the left edge to 2π")


class Pixel(BaseModel):
    """A corner drawn on a photo."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    x: float = Field(strict=True, ge=0.0, le=2**32, description="pixels from the photo's left edge")
    y: float = Field(strict=True, ge=0.0, le=2**32, description="pixels from the photo's top edge")


def _whole_number(value: object) -> object:
    """An id: a JSON integer (``7`` or ``7.0``), never a boolean or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("should be a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("should be a whole number")
    return int(value)


ViewId = Annotated[int, Field(ge=0, le=2**32 - 1, description="a view id of the scene"), BeforeValidator(_whole_number)]
Polygon = Annotated[list[Vertex], Field(min_length=3, max_length=MAX_VERTICES)]
StoredPolygon = Annotated[list[Vertex], Field(min_length=3, max_length=MAX_STORED_VERTICES)]
PixelPolygon = Annotated[list[Pixel], Field(min_length=3, max_length=MAX_VERTICES)]
Comment = Annotated[str, StringConstraints(max_length=MAX_COMMENT)]


class ReportIn(BaseModel):
    """A report as stored."""

    model_config = ConfigDict(extra="forbid")

    viewpoint_id: ViewId
    category: Category
    polygon: StoredPolygon
    comment: Comment = ""


def check_placeable(angles: np.ndarray) -> None:
    """``ValueError`` unless apply can use the polygon (pitch, yaw): it encloses an area and fits
    in a cap, not spread over the sphere (apply would skip it). The message never repeats the corners."""
    try:
        placeable_cap(angles)
    except InputError:
        raise ValueError(f"the polygon must fit within {np.degrees(2 * MAX_CAP):.0f}° across") from None
    # corners that coincide, or that all lie on one great circle, leave the smallest singular value ~0
    if np.linalg.svd(directions(angles[:, 0], angles[:, 1]), compute_uv=False)[2] < MIN_WIDTH:
        raise ValueError("the polygon has no area (its corners coincide or lie on one great circle)")


def _placeable(polygon: list[Vertex]) -> list[Vertex]:
    check_placeable(np.array([[v.pitch, v.yaw] for v in polygon]))
    return polygon


class ReportSubmission(BaseModel):
    """A visitor's submission: the polygon on a panorama in angles, that apply can use, or on a
    photo in pixels."""

    model_config = ConfigDict(extra="forbid")

    viewpoint_id: ViewId
    category: Category
    polygon: Annotated[Polygon, AfterValidator(_placeable)] | None = Field(
        default=None, description="on a panorama: the corners in angles")
    pixels: PixelPolygon | None = Field(
        default=None, description="on a photo: the corners in pixels (x, y from the image's top-left corner)")
    comment: Comment = ""

    @model_validator(mode="after")
    def _one_polygon(self) -> ReportSubmission:
        if (self.polygon is None) == (self.pixels is None):
            raise ValueError("give either polygon (on a panorama) or pixels (on a photo)")
        return self


class ReportReceipt(BaseModel):
    """What the visitor sees: the number and the status, nothing else."""

    id: int
    status: Status


class Report(BaseModel):
    """A stored report, as moderators see it."""

    id: int
    viewpoint_id: int
    category: Category
    polygon: list[Vertex]
    comment: str
    status: Status
    created_at: datetime
    updated_at: datetime
    reviewer_note: str = ""
    applied_run: str | None = None
    outline: list[tuple[float, float]] | None = Field(
        default=None, description="on a photo: the polygon in its pixels, to draw it (not stored)")


class ReportPage(BaseModel):
    """One page of reports; ``next`` is the URL of the following page (null on the last)."""

    reports: list[Report]
    next: str | None


class SessionInfo(BaseModel):
    """What the moderation page sends back, as ``X-CSRF-Token``, with every change."""

    csrf: str


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(max_length=MAX_NOTE)] = ""


class FeedEntry(BaseModel):
    """One entry of the original site's report feed."""

    model_config = ConfigDict(populate_by_name=True, allow_inf_nan=False)

    filepath: str
    viewpointId: ViewId
    pitchYawOrders: StoredPolygon


class Viewpoint(BaseModel):
    """A published panorama or photo the page can open."""

    id: int
    kind: Literal["panorama", "photo"]
    image: str
    width: int
    height: int
    center: tuple[float, float, float] | None
