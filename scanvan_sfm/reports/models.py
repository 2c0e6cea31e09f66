"""What a report is, as the API and the feed carry it.

Angles follow the original ScanVan feed: radians, ``pitch`` 0 at the top of the panorama to π at
the bottom, ``yaw`` 0 at the left edge to 2π; so x = W·yaw/2π and y = H·pitch/π.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from ..errors import InputError
from .spherical import MAX_CAP, directions, placeable_cap

MAX_VERTICES = 100
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


def _whole_number(value: object) -> object:
    """An id: a JSON integer (``7`` or ``7.0``), never a boolean or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("should be a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("should be a whole number")
    return int(value)


ViewId = Annotated[int, Field(ge=0, le=2**32 - 1, description="a view id of the scene"), BeforeValidator(_whole_number)]
Polygon = Annotated[list[Vertex], Field(min_length=3, max_length=MAX_VERTICES)]
Comment = Annotated[str, StringConstraints(max_length=MAX_COMMENT)]


class ReportIn(BaseModel):
    """A visitor's submission."""

    model_config = ConfigDict(extra="forbid")

    viewpoint_id: ViewId
    category: Category
    polygon: Polygon
    comment: Comment = ""


def _placeable(polygon: list[Vertex]) -> list[Vertex]:
    """A polygon apply can use: one that encloses an area and fits in a cap, not one spread over
    the sphere (apply would skip it). The message never repeats the corners."""
    angles = np.array([[v.pitch, v.yaw] for v in polygon])
    try:
        placeable_cap(angles)
    except InputError:
        raise ValueError(f"the polygon must fit within {np.degrees(2 * MAX_CAP):.0f}° across") from None
    # corners that coincide, or that all lie on one great circle, leave the smallest singular value ~0
    if np.linalg.svd(directions(angles[:, 0], angles[:, 1]), compute_uv=False)[2] < MIN_WIDTH:
        raise ValueError("the polygon has no area (its corners coincide or lie on one great circle)")
    return polygon


class ReportSubmission(ReportIn):
    """A visitor's submission, whose polygon apply can use."""

    polygon: Annotated[Polygon, AfterValidator(_placeable)]


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
    pitchYawOrders: Polygon


class Viewpoint(BaseModel):
    """A published panorama the page can open."""

    id: int
    image: str
    width: int
    height: int
    center: tuple[float, float, float] | None
