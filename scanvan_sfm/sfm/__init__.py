"""openMVG scenes: models, JSON and ``.bin`` I/O, camera models, validation."""

from .io import Parts, convert_scene, read_scene, select_parts, write_scene
from .models import (
    UNDEFINED_ID,
    Fisheye,
    Landmarks,
    Pinhole,
    PinholeBrownT2,
    PinholeRadialK1,
    PinholeRadialK3,
    Pose,
    SfMData,
    Spherical,
    View,
    ViewPriors,
    is_panorama,
)
from .validate import Problem, validate_scene

__all__ = [
    "UNDEFINED_ID", "Fisheye", "Landmarks", "Parts", "Pinhole", "PinholeBrownT2", "PinholeRadialK1",
    "PinholeRadialK3", "Pose", "Problem", "SfMData", "Spherical", "View", "ViewPriors",
    "convert_scene", "is_panorama", "read_scene", "select_parts", "validate_scene", "write_scene",
]
