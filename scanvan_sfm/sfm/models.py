"""The openMVG scene in memory: pydantic models for cameras, numpy columns for landmarks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

UNDEFINED_ID = 0xFFFFFFFF  # openMVG's UndefinedIndexT

UInt32 = Annotated[int, Field(ge=0, le=UNDEFINED_ID, strict=True)]
Double = Annotated[float, Field(strict=True, allow_inf_nan=True)]
Vec2 = tuple[Double, Double]
Vec3 = tuple[Double, Double, Double]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class View(_Model):
    """An image of the scene (openMVG ``sfm::View``)."""

    polymorphic_name: ClassVar[str | None] = None
    local_path: StrictStr
    filename: StrictStr
    width: UInt32
    height: UInt32
    id_view: UInt32
    id_intrinsic: UInt32
    id_pose: UInt32

    @property
    def image_path(self) -> str:
        """``s_Img_path``: local_path and filename joined as stlplus does."""
        if not self.local_path or self.local_path.endswith(("/", "\\")):
            return self.local_path + self.filename
        return f"{self.local_path}/{self.filename}"


class ViewPriors(View):
    """A view with a GPS/pose-centre prior (openMVG ``view_priors``)."""

    polymorphic_name: ClassVar[str | None] = "view_priors"
    use_pose_center_prior: StrictBool = False
    center_weight: Vec3 = (1.0, 1.0, 1.0)
    center: Vec3 = (0.0, 0.0, 0.0)


class _Intrinsic(_Model):
    width: UInt32
    height: UInt32


class Pinhole(_Intrinsic):
    type: Literal["pinhole"] = "pinhole"
    focal_length: Double
    principal_point: Vec2

    @property
    def distortion(self) -> tuple[float, ...]:
        return ()


class PinholeRadialK1(Pinhole):
    type: Literal["pinhole_radial_k1"] = "pinhole_radial_k1"  # type: ignore[assignment]
    disto_k1: tuple[Double]

    @property
    def distortion(self) -> tuple[float, ...]:
        return self.disto_k1


class PinholeRadialK3(Pinhole):
    type: Literal["pinhole_radial_k3"] = "pinhole_radial_k3"  # type: ignore[assignment]
    disto_k3: tuple[Double, Double, Double]

    @property
    def distortion(self) -> tuple[float, ...]:
        return self.disto_k3


class PinholeBrownT2(Pinhole):
    type: Literal["pinhole_brown_t2"] = "pinhole_brown_t2"  # type: ignore[assignment]
    disto_t2: tuple[Double, Double, Double, Double, Double]

    @property
    def distortion(self) -> tuple[float, ...]:
        return self.disto_t2


class Fisheye(Pinhole):
    type: Literal["fisheye"] = "fisheye"  # type: ignore[assignment]
    fisheye: tuple[Double, Double, Double, Double]

    @property
    def distortion(self) -> tuple[float, ...]:
        return self.fisheye


class Spherical(_Intrinsic):
    """Equirectangular camera: only a size."""

    type: Literal["spherical"] = "spherical"


Intrinsic = Annotated[
    Pinhole | PinholeRadialK1 | PinholeRadialK3 | PinholeBrownT2 | Fisheye | Spherical,
    Field(discriminator="type"),
]
INTRINSIC_TYPES: dict[str, type[_Intrinsic]] = {
    cls.model_fields["type"].default: cls
    for cls in (Pinhole, PinholeRadialK1, PinholeRadialK3, PinholeBrownT2, Fisheye, Spherical)
}
#: The member of the JSON ``data`` object that holds each pinhole type's distortion.
DISTORTION_FIELD = {
    "pinhole_radial_k1": "disto_k1",
    "pinhole_radial_k3": "disto_k3",
    "pinhole_brown_t2": "disto_t2",
    "fisheye": "fisheye",
}


class Pose(_Model):
    """Camera pose: ``X_cam = R · (X_world − C)``; rotation stored as rows."""

    rotation: tuple[Vec3, Vec3, Vec3]
    center: Vec3

    @property
    def R(self) -> np.ndarray:
        return np.array(self.rotation, dtype=np.float64)

    @property
    def C(self) -> np.ndarray:
        return np.array(self.center, dtype=np.float64)


@dataclass
class Landmarks:
    """Landmarks as columns: landmark ``i`` owns observations ``obs_offsets[i]:obs_offsets[i+1]``.

    Entry order is the file's order, observations included.
    """

    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))
    X: np.ndarray = field(default_factory=lambda: np.empty((0, 3), np.float64))
    obs_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    obs_view: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))
    obs_feat: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))
    obs_xy: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.float64))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_observations(self) -> int:
        return len(self.obs_view)

    def first_non_finite(self) -> tuple[int, int | None, int] | None:
        """(landmark, observation or None for X, coordinate) of the first NaN or ±Inf in entry order."""
        if np.isfinite(self.X).all() and np.isfinite(self.obs_xy).all():
            return None
        bad_x = np.flatnonzero(~np.isfinite(self.X.ravel()))
        bad_xy = np.flatnonzero(~np.isfinite(self.obs_xy.ravel()))
        if len(bad_xy):
            k = int(bad_xy[0] // 2)
            owner = int(np.searchsorted(self.obs_offsets, k, side="right")) - 1
            if not len(bad_x) or owner < bad_x[0] // 3:
                return owner, k, int(bad_xy[0] % 2)
        return int(bad_x[0] // 3), None, int(bad_x[0] % 3)

    def obs_landmark(self) -> np.ndarray:
        """Index of the landmark that owns each observation."""
        return np.repeat(np.arange(len(self.ids)), np.diff(self.obs_offsets))

    def without_views(self, view_ids: set[int]) -> Landmarks:
        """A copy without the observations in ``view_ids``; landmarks left with none are dropped."""
        keep_obs = ~np.isin(self.obs_view, np.fromiter(view_ids, np.uint32, len(view_ids)))
        counts = np.add.reduceat(keep_obs, self.obs_offsets[:-1]) if self.n_observations else np.zeros(len(self))
        counts = np.where(np.diff(self.obs_offsets) > 0, counts, 0)
        keep = counts > 0
        return Landmarks(ids=self.ids[keep], X=self.X[keep],
                         obs_offsets=np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64),
                         obs_view=self.obs_view[keep_obs], obs_feat=self.obs_feat[keep_obs],
                         obs_xy=self.obs_xy[keep_obs])

    def equal_by_id(self, other: Landmarks) -> bool:
        """Same landmarks and observations, compared by id with bit-exact values (order-free)."""
        return _canonical(self) == _canonical(other)


def is_panorama(size: tuple[int, int]) -> bool:
    """Equirectangular images are 2:1 (``size`` is width, height)."""
    return size[0] == 2 * size[1]


def _canonical(lm: Landmarks) -> tuple:
    order = np.argsort(lm.ids, kind="stable")
    owner = lm.obs_landmark()
    obs_order = np.lexsort((lm.obs_view, lm.ids[owner]))
    return (
        lm.ids[order].tobytes(), lm.X[order].tobytes(),
        np.diff(lm.obs_offsets)[order].tobytes(),
        lm.obs_view[obs_order].tobytes(), lm.obs_feat[obs_order].tobytes(),
        lm.obs_xy[obs_order].tobytes(),
    )


class SfMData(BaseModel):
    """An openMVG ``SfM_Data``. Dicts keep the file's entry order."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    version: str = "0.3"
    root_path: str = ""
    views: dict[int, View] = Field(default_factory=dict)
    intrinsics: dict[int, Intrinsic] = Field(default_factory=dict)
    extrinsics: dict[int, Pose] = Field(default_factory=dict)
    structure: Landmarks = Field(default_factory=Landmarks)
    control_points: Landmarks = Field(default_factory=Landmarks)

    def is_reconstructed(self, view: View) -> bool:
        """openMVG's ``IsPoseAndIntrinsicDefined``: pose AND intrinsic present."""
        return view.id_pose in self.extrinsics and view.id_intrinsic in self.intrinsics

    def is_equirectangular(self, view: View) -> bool:
        """A spherical camera on a 2:1 image: what the 360° page and the reports work on."""
        return isinstance(self.intrinsics.get(view.id_intrinsic), Spherical) and is_panorama((view.width, view.height))

    def reconstructed_views(self) -> dict[int, View]:
        return {k: v for k, v in self.views.items() if self.is_reconstructed(v)}

    def image_path(self, view: View, root: str | Path | None = None) -> Path:
        """Where the view's image is: ``root_path`` (or ``root``) joined with the view path.

        A relative ``root_path`` is resolved against the current directory, as openMVG does.
        """
        base = str(root) if root is not None else self.root_path
        return Path(base) / PurePosixPath(view.image_path.replace("\\", "/"))

    def first_non_finite(self) -> str | None:
        """Where the first NaN or ±Inf is (``extrinsics[key=3].center[0]``), or None."""
        for name in ("views", "intrinsics", "extrinsics"):
            for key, model in getattr(self, name).items():
                place = _non_finite_field(model, f"{name}[key={key}]")
                if place is not None:
                    return place
        for name in ("structure", "control_points"):
            lm = getattr(self, name)
            bad = lm.first_non_finite()
            if bad is not None:
                i, k, j = bad
                entry = f"{name}[key={lm.ids[i]}]"
                return f"{entry}.X[{j}]" if k is None else f"{entry}.observations[key={lm.obs_view[k]}].x[{j}]"
        return None

    def equal_by_id(self, other: SfMData) -> bool:
        """Same scene regardless of entry order; values compared bit-exactly."""
        return (
            (self.version, self.root_path) == (other.version, other.root_path)
            and _by_id(self.views) == _by_id(other.views)
            and _by_id(self.intrinsics) == _by_id(other.intrinsics)
            and _by_id(self.extrinsics) == _by_id(other.extrinsics)
            and self.structure.equal_by_id(other.structure)
            and self.control_points.equal_by_id(other.control_points)
        )


def _non_finite_field(value: object, where: str) -> str | None:
    """The place of the first non-finite float in a model's fields (tuples included), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, BaseModel):
        items = ((f"{where}.{name}", v) for name, v in value)
    elif isinstance(value, tuple):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((place for w, v in items if (place := _non_finite_field(v, w)) is not None), None)


def _by_id(items: Mapping[int, BaseModel]) -> dict[int, tuple]:
    return {k: (type(v).__name__, repr(v.model_dump())) for k, v in items.items()}
