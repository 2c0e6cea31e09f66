"""Shared test data: the real openMVG outputs in ../shared (read-only, present in CI)."""

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
OPENMVG = SHARED / "fixtures" / "openmvg"
SCENES = ("360_flat_gps", "lund", "sceaux_castle")
JSON_FIXTURES = sorted(OPENMVG.glob("*/*.json"))
BIN_FIXTURES = sorted(OPENMVG.glob("*/sfm_data.bin"))

#: Posed views per fixture README: (reconstructed view ids, unreconstructed view ids).
POSED = {
    "360_flat_gps": (set(range(8)), {8}),
    "lund": (set(range(10)), {10}),
    "sceaux_castle": (set(range(11)), {11}),
}


def pytest_sessionstart(session):
    assert OPENMVG.is_dir(), f"the shared fixtures are missing: {OPENMVG}"
    assert len(JSON_FIXTURES) == 8 and len(BIN_FIXTURES) == 3


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.fixture
def scene_dir():
    return lambda name: OPENMVG / name
