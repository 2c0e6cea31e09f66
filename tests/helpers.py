"""What the test modules share: where the test data is, the command line as a subprocess, file hashes.

The real openMVG outputs live in ../shared (read-only, present in CI). A test that reads them is
skipped, with the reason, where that folder is missing; the others run anyway."""

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import orjson
import pytest

from scanvan_sfm.dataset import Dataset
from scanvan_sfm.sfm import read_scene, write_scene

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
OPENMVG = SHARED / "fixtures" / "openmvg"
SCENES = ("360_flat_gps", "lund", "sceaux_castle")
JSON_FIXTURES = sorted(OPENMVG.glob("*/*.json"))
BIN_FIXTURES = sorted(OPENMVG.glob("*/sfm_data.bin"))
GPS_SCENE = OPENMVG / "360_flat_gps" / "sfm_data_bin.json"  # 8 posed panoramas, the service's scene
GPS_SIZE = (5376, 2688)
GPS_KEYS = {v: f"R00102{10 + v}" for v in range(8)}   # its views' image names, without extension

#: Posed views per fixture README: (reconstructed view ids, unreconstructed view ids).
POSED = {
    "360_flat_gps": (set(range(8)), {8}),
    "lund": (set(range(10)), {10}),
    "sceaux_castle": (set(range(11)), {11}),
}

#: Without ../shared, a test that reads it is skipped for this reason: it is marked ``@needs_shared`` (a
#: whole module: ``pytestmark = needs_shared``) or uses the ``client`` fixture; a module that reads it as
#: it loads calls ``pytest.skip(WITHOUT_SHARED, allow_module_level=True)`` first.
WITHOUT_SHARED = f"needs the shared test data, missing here: {SHARED}"
needs_shared = pytest.mark.skipif(not OPENMVG.is_dir(), reason=WITHOUT_SHARED)


CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT / "out" / "screenshots"  # the browser tests' screenshots
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def install_chromium() -> Path:
    """Debian's chromium, installed here when missing (CI runs as root)."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True,
                       env=env, capture_output=True)
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed and cannot be installed here (apt-get as root)")
    return CHROMIUM


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def cli(*args, env=None, cwd=None, timeout=900, background=False):
    """``scanvan-sfm *args`` in a subprocess; ``env`` is added to this environment. Returns the
    finished process with its output as text or, ``background``, the running one (in its own
    session, output discarded)."""
    command = [sys.executable, "-m", "scanvan_sfm.cli", *map(str, args)]
    environment = None if env is None else os.environ | env
    if background:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                                cwd=cwd, start_new_session=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=cwd)


def tree_hashes(folder: Path) -> dict:
    """The SHA-256 of every file below ``folder``, by its path relative to it."""
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def off_edges(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of each point (n, 2) to the nearest edge of a closed pixel polygon."""
    a, b = polygon, np.roll(polygon, -1, axis=0)
    length2 = ((b - a) ** 2).sum(axis=1)
    t = np.clip(np.einsum("pij,ij->pi", points[:, None] - a, b - a) / np.where(length2 > 0, length2, 1.0), 0, 1)
    return np.linalg.norm(points[:, None] - (a + t[..., None] * (b - a)), axis=2).min(axis=1)


def inside_polygon(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Even-odd test of points (n, 2) against a pixel polygon."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (y0 > y) != (y1 > y)
        inside ^= crosses & (x < x0 + (y - y0) * (x1 - x0) / (y1 - y0 if y1 != y0 else 1.0))
    return inside


def registered_scenes(out: Path) -> dict[str, bytes]:
    """The registered scene pair of the main folder ``out``, each file's bytes as ``--relative-root``
    would have written it (``Dataset.portable``), after checking that its root is the absolute
    path of the published folder in ``out``: what a run decided, wherever its output folder is."""
    dataset = Dataset(out)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in dataset.scene_paths():
            scene = read_scene(path)
            assert Path(scene.root_path).parent == dataset.anonymization.absolute(), scene.root_path
            write_scene(dataset.portable(scene), Path(tmp) / path.name)
            found[path.name] = (Path(tmp) / path.name).read_bytes()
    return found


def box(cx: float, cy: float, half_w: float, half_h: float) -> list[dict]:
    """A pixel box of a 360_flat_gps view as feed corners (pitch, yaw)."""
    width, height = GPS_SIZE
    corners = [(cx - half_w, cy - half_h), (cx + half_w, cy - half_h), (cx + half_w, cy + half_h),
               (cx - half_w, cy + half_h)]
    return [{"pitch": y * math.pi / height, "yaw": (x % width) * 2 * math.pi / width} for x, y in corners]


def write_feed(path, *entries) -> None:
    """A report feed in the original format: ``(view id, corners)`` entries of 360_flat_gps."""
    path.write_bytes(orjson.dumps([{"filepath": f"{GPS_KEYS[v]}.JPG", "viewpointId": v, "pitchYawOrders": p}
                                   for v, p in entries]))
