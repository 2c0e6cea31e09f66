"""The reporting API on photos: the bundled lund scene (pinhole_radial_k3) served as it is, corners
sent in pixels and stored as directions, shown back to moderators in pixels, exported and read
again as a feed; hostile pixel polygons are 4xx JSON errors."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from helpers import PROJECT, off_edges
from scanvan_sfm.reports.app import create_app
from scanvan_sfm.reports.feed import feed_reports
from scanvan_sfm.reports.photo import TOLERANCE
from scanvan_sfm.reports.spherical import camera_rays
from scanvan_sfm.sfm import read_scene
from scanvan_sfm.sfm.cameras import project_camera
from service_helpers import MODERATOR, TRIANGLE, config, refused, report

LUND = PROJECT / "fixtures" / "lund" / "sfm_data_bin.json"
CAMERA = read_scene(LUND, structure=False).intrinsics[0]
DRAWN = [[355.0, 330.0], [480.0, 345.0], [475.0, 520.0], [350.0, 510.0]]


def pixels(corners) -> list[dict]:
    return [{"x": x, "y": y} for x, y in corners]


def photo_report(**changes) -> dict:
    body = report(viewpoint_id=3, pixels=pixels(DRAWN)) | changes
    return {k: v for k, v in body.items() if k != "polygon" or "polygon" in changes}


@pytest.fixture
def lund(tmp_path):
    """The service on the bundled lund scene (its photos), with a fresh store."""
    with TestClient(create_app(config(tmp_path / "reports.sqlite", scene=LUND))) as client:
        yield client


def stored_pixels(client, report_id: int) -> tuple[np.ndarray, list]:
    """A stored report's polygon back through the camera, and the outline moderators get."""
    (found,) = [r for r in client.get("/api/reports", headers=MODERATOR).json()["reports"] if r["id"] == report_id]
    angles = np.array([[v["pitch"], v["yaw"]] for v in found["polygon"]])
    return project_camera(CAMERA, camera_rays(angles)), found["outline"]


def test_photos_are_viewpoints(lund):
    viewpoints = lund.get("/api/viewpoints").json()
    assert [v["id"] for v in viewpoints] == list(range(10))  # view 10 has no pose
    assert {v["kind"] for v in viewpoints} == {"photo"}
    assert (viewpoints[3]["width"], viewpoints[3]["height"]) == (1024, 768)
    assert lund.get("/images/3").content[:2] == b"\xff\xd8"


def test_pixels_are_stored_as_directions_and_shown_back_in_pixels(lund):
    created = lund.post("/api/reports", json=photo_report())
    assert created.status_code == 201, created.text
    back, outline = stored_pixels(lund, created.json()["id"])
    drawn = np.array(DRAWN)
    assert np.linalg.norm(back[:, None] - drawn, axis=2).min(axis=0).max() < 1e-6  # the corners
    assert off_edges(back, drawn).max() <= TOLERANCE  # and points along the drawn edges
    outline = np.array(outline)
    assert np.linalg.norm(outline[:, None] - drawn, axis=2).min(axis=0).max() <= 0.01
    assert off_edges(outline, drawn).max() <= TOLERANCE + 0.01


def test_export_of_a_long_photo_polygon_reads_again(lund, tmp_path):
    """A star of 100 corners on the whole photo: over 100 points as stored, exported and read
    again as a feed with the same angles."""
    turn = np.linspace(0, 2 * math.pi, 100, endpoint=False)
    radius = np.where(np.arange(100) % 2, 380.0, 60.0)
    star = np.column_stack([512 + radius * 1.3 * np.cos(turn), 384 + radius * np.sin(turn)])
    report_id = lund.post("/api/reports", json=photo_report(pixels=pixels(star.tolist()))).json()["id"]
    assert lund.post(f"/api/reports/{report_id}/accept", json={}, headers=MODERATOR).status_code == 200
    feed = lund.get("/api/reports/export", headers=MODERATOR).json()
    (entry,) = feed
    assert entry["filepath"] == "04.jpg" and len(entry["pitchYawOrders"]) > 100
    path = tmp_path / "feed.json"
    path.write_bytes(orjson.dumps(feed))
    ((again, _),) = feed_reports(path, read_scene(LUND, structure=False))
    assert [v.model_dump() for v in again.polygon] == entry["pitchYawOrders"]


HOSTILE = [
    ("corner right of the photo", photo_report(pixels=pixels([*DRAWN[:3], [1024.5, 400.0]]))),
    ("corner below the photo", photo_report(pixels=pixels([*DRAWN[:3], [400.0, 769.0]]))),
    ("negative pixel", photo_report(pixels=pixels([*DRAWN[:3], [-1.0, 400.0]]))),
    ("two corners", photo_report(pixels=pixels(DRAWN[:2]))),
    ("101 corners", photo_report(pixels=pixels([[10.0 + i, 10.0 + (i % 2) * 50] for i in range(101)]))),
    ("corners on a line", photo_report(pixels=pixels([[10.0, 10.0], [100.0, 100.0], [300.0, 300.0]]))),
    ("one corner thrice", photo_report(pixels=pixels([[10.0, 10.0]] * 3))),
    ("angles on a photo", photo_report(pixels=None, polygon=TRIANGLE)),
    ("angles and pixels", photo_report(polygon=TRIANGLE)),
    ("neither", photo_report(pixels=None)),
    ("pixel as a string", photo_report(pixels=[{"x": "12", "y": 4.0}, *pixels(DRAWN[1:])])),
    ("pixel with a z", photo_report(pixels=[{"x": 12.0, "y": 4.0, "z": 1.0}, *pixels(DRAWN[1:])])),
    ("pixel as a pair", photo_report(pixels=[[12.0, 4.0], *pixels(DRAWN[1:])])),
    ("NaN", '{"viewpoint_id": 3, "category": "blur_missing", "pixels": '
            '[{"x": NaN, "y": 1}, {"x": 100, "y": 1}, {"x": 100, "y": 200}]}'),
    ("huge", '{"viewpoint_id": 3, "category": "blur_missing", "pixels": '
             '[{"x": 1e400, "y": 1}, {"x": 100, "y": 1}, {"x": 100, "y": 200}]}'),
]


@pytest.mark.parametrize("payload", [p for _, p in HOSTILE], ids=[name for name, _ in HOSTILE])
def test_hostile_photo_submissions_are_4xx_json(lund, payload):
    answer = str(refused(lund, payload))
    assert "1024.5" not in answer and "769" not in answer  # the input is not echoed


def test_pixels_on_a_panorama_are_refused(client):
    assert "is a panorama" in refused(client, report(polygon=None, pixels=pixels(DRAWN)))["detail"]
