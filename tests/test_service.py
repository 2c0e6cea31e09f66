"""The reporting service's API on the real 360_flat_gps scene: submissions, moderation, and
hostile input (every rejection is a 4xx JSON error, nothing a 5xx)."""

from __future__ import annotations

import math
import sqlite3

import pytest
from fastapi.testclient import TestClient

from helpers import cli, needs_shared
from scanvan_sfm.errors import InputError
from scanvan_sfm.reports.app import ServiceConfig, create_app
from scanvan_sfm.reports.store import ReportStore
from service_helpers import MODERATOR, SCENE, TOKEN, TRIANGLE, config, refused, report


def test_viewpoints_are_the_reconstructed_panoramas(client):
    viewpoints = client.get("/api/viewpoints").json()
    assert [v["id"] for v in viewpoints] == list(range(8))  # view 8 has no pose
    assert viewpoints[0]["image"] == "R0010210.JPG" and viewpoints[0]["width"] == 5376
    image = client.get("/images/0")
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    assert client.get("/images/8").status_code == 404


def test_submit_then_status_then_moderate(client):
    created = client.post("/api/reports", json=report(comment="two people on the left"))
    assert created.status_code == 201
    receipt = created.json()
    assert receipt["status"] == "pending" and created.headers["location"] == f"/api/reports/{receipt['id']}"
    assert client.get(f"/api/reports/{receipt['id']}").json() == receipt  # the visitor sees no more than this
    pending = client.get("/api/reports?status=pending", headers=MODERATOR).json()["reports"]
    assert [r["id"] for r in pending] == [receipt["id"]] and pending[0]["polygon"] == TRIANGLE
    accepted = client.post(f"/api/reports/{receipt['id']}/accept", json={"note": "ok"}, headers=MODERATOR)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert client.post(f"/api/reports/{receipt['id']}/accept", json={}, headers=MODERATOR).status_code == 409
    assert client.get(f"/api/reports/{receipt['id']}").json()["status"] == "accepted"
    assert client.get("/api/reports?status=pending", headers=MODERATOR).json()["reports"] == []
    rejected = client.post(f"/api/reports/{receipt['id']}/reject", json={"note": "second look"}, headers=MODERATOR)
    assert rejected.json()["status"] == "rejected" and rejected.json()["reviewer_note"] == "second look"


def test_export_is_the_original_feed_format(client):
    first = client.post("/api/reports", json=report(viewpoint_id=5)).json()["id"]
    excess = client.post("/api/reports", json=report(category="blur_excess")).json()["id"]
    for report_id in (first, excess):
        client.post(f"/api/reports/{report_id}/accept", json={}, headers=MODERATOR)
    feed = client.get("/api/reports/export", headers=MODERATOR).json()
    assert feed == [{"filepath": "R0010215.JPG", "viewpointId": 5, "pitchYawOrders": TRIANGLE}]


def test_moderation_needs_the_token(client):
    report_id = client.post("/api/reports", json=report()).json()["id"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "}):
        for method, url in (("get", "/api/reports"), ("get", "/api/reports/export"),
                            ("post", f"/api/reports/{report_id}/accept"), ("post", f"/api/reports/{report_id}/reject")):
            response = client.request(method, url, headers=headers)
            assert response.status_code == 401 and response.json()["detail"] == "moderator token required"
    assert client.get("/moderate", follow_redirects=False).headers["location"] == "/moderate/login"
    same_origin = {"Origin": "http://testserver"}
    assert client.post("/api/moderator/session", json={"token": "wrong"}, headers=same_origin).status_code == 401
    session = client.post("/api/moderator/session", json={"token": TOKEN}, headers=same_origin)
    cookie = session.headers["set-cookie"]
    assert session.status_code == 204 and TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/moderate", follow_redirects=False).status_code == 200
    assert client.get("/api/reports").status_code == 200  # the session cookie now


@needs_shared
def test_no_token_configured_means_no_moderation(tmp_path):
    with TestClient(create_app(ServiceConfig(scene=SCENE, db=tmp_path / "r.sqlite"))) as client:
        assert client.get("/api/reports", headers={"Authorization": "Bearer "}).status_code == 401
        assert client.post("/api/moderator/session", json={"token": ""},
                           headers={"Origin": "http://testserver"}).status_code == 401


HOSTILE = [
    ("two vertices", report(polygon=TRIANGLE[:2])),
    ("101 vertices", report(polygon=[{"pitch": 1.0, "yaw": i * 0.01} for i in range(101)])),
    ("pitch over pi", report(polygon=[*TRIANGLE[:2], {"pitch": math.pi + 1e-9, "yaw": 0.1}])),
    ("negative yaw", report(polygon=[*TRIANGLE[:2], {"pitch": 1.0, "yaw": -0.1}])),
    ("yaw over 2 pi", report(polygon=[*TRIANGLE[:2], {"pitch": 1.0, "yaw": 7.0}])),
    ("infinite", '{"viewpoint_id": 2, "category": "blur_missing", "comment": "", "polygon": '
                 '[{"pitch": Infinity, "yaw": 1}, {"pitch": 1, "yaw": 1}, {"pitch": 1, "yaw": 2}]}'),
    ("NaN", '{"viewpoint_id": 2, "category": "blur_missing", "comment": "", "polygon": '
            '[{"pitch": NaN, "yaw": 1}, {"pitch": 1, "yaw": 1}, {"pitch": 1, "yaw": 2}]}'),
    ("huge number", '{"viewpoint_id": 2, "category": "blur_missing", "polygon": '
                    '[{"pitch": 1e400, "yaw": 1}, {"pitch": 1, "yaw": 1}, {"pitch": 1, "yaw": 2}]}'),
    ("angle as string", report(polygon=[*TRIANGLE[:2], {"pitch": "1.0; DROP TABLE reports", "yaw": 1}])),
    ("unknown viewpoint", report(viewpoint_id=99)),
    ("unposed viewpoint", report(viewpoint_id=8)),
    ("viewpoint over 2^63", report(viewpoint_id=2**70)),
    ("negative viewpoint", report(viewpoint_id=-1)),
    ("unknown category", report(category="delete_everything")),
    ("comment too long", report(comment="x" * 2001)),
    ("comment not text", report(comment={"$gt": ""})),
    ("extra field", report(status="accepted")),
    ("path as viewpoint", report(viewpoint_id="../../etc/passwd")),
    ("not an object", "[1, 2, 3]"),
    ("truncated JSON", '{"viewpoint_id": 2, "polygon": [{"pitch"'),
    ("empty body", ""),
    ("nested bomb", "[" * 5000 + "]" * 5000),
]


@pytest.mark.parametrize("payload", [p for _, p in HOSTILE], ids=[name for name, _ in HOSTILE])
def test_hostile_submissions_are_4xx_json(client, payload):
    refused(client, payload)


def test_comment_is_stored_as_text(client, tmp_path):
    comment = "<script>alert(1)</script>'); DROP TABLE reports; --\u0000\u202e"
    report_id = client.post("/api/reports", json=report(comment=comment)).json()["id"]
    stored = client.get("/api/reports", headers=MODERATOR)
    assert stored.json()["reports"][0]["comment"] == comment and stored.headers["content-type"] == "application/json"
    with sqlite3.connect(tmp_path / "reports.sqlite") as db:
        assert db.execute("SELECT comment FROM reports WHERE id = ?", (report_id,)).fetchone()[0] == comment


@pytest.mark.parametrize("url", ["/api/reports/0", "/api/reports/-3", "/api/reports/abc", "/api/reports/" + "9" * 30,
                                 "/images/-1", "/images/..%2f..%2fsfm_data_bin.json", "/images/" + "9" * 30,
                                 "/vendor/three/..%2f..%2fpackage.json", "/static/../app.py",
                                 "/vendor/psv-core/%2e%2e/%2e%2e/package-lock.json", "/nothing"])
def test_bad_urls_are_4xx_json(client, url):
    response = client.get(url)
    assert 400 <= response.status_code < 500 and response.headers["content-type"] == "application/json"


def test_bad_moderation_calls_are_4xx(client):
    assert client.post("/api/reports/12345/accept", json={}, headers=MODERATOR).status_code == 404
    assert client.post("/api/reports/1/accept", content="{", headers=MODERATOR | {"content-type": "application/json"}
                       ).status_code == 422
    assert client.post("/api/reports/1/accept", json={"note": "x" * 2001}, headers=MODERATOR).status_code == 422
    assert client.get("/api/reports?status=nonsense", headers=MODERATOR).status_code == 422


def test_oversize_body_is_refused_before_parsing(client):
    big = report(comment="x" * 70_000)
    response = client.post("/api/reports", json=big)
    assert response.status_code == 413 and "over 65536 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit still holds
        for _ in range(100):
            yield b" " * 1024

    response = client.post("/api/reports", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


@needs_shared
def test_rate_limit_per_client(tmp_path):
    with TestClient(create_app(config(tmp_path / "r.sqlite", submissions_per_minute=3))) as client:
        codes = [client.post("/api/reports", json=report()).status_code for _ in range(5)]
        assert codes == [201, 201, 201, 429, 429]
        limited = client.post("/api/reports", json=report())
        assert int(limited.headers["retry-after"]) > 0 and limited.json()["detail"].startswith("too many")
        assert len(ReportStore(tmp_path / "r.sqlite").list()) == 3
        assert client.post("/api/reports", json=report(viewpoint_id=99)).status_code == 404  # refused first


def test_security_headers_on_every_response(client):
    for url in ("/", "/moderate/login", "/docs", "/api/viewpoints", "/nothing", "/static/report.js"):
        headers = client.get(url).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    page = client.get("/").text
    assert "<script>" not in page and "onclick" not in page  # scripts only from files


def test_viewer_packages_are_served_from_the_cache(client):
    for url in ("/vendor/three/three.module.js", "/vendor/psv-core/index.module.js",
                "/vendor/psv-markers/index.module.js"):
        assert client.get(url).status_code == 200
    assert client.get("/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 404  # dropped (it pulled in scarf)


@needs_shared
def test_missing_viewer_packages_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no tarball of .* with the pinned integrity"):
        create_app(config(tmp_path / "r.sqlite", viewer_cache=tmp_path / "cache", viewer_assets=tmp_path / "empty"))
    assert not (tmp_path / "r.sqlite").exists()  # refused before the store is made


def test_store_takes_concurrent_submissions(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from scanvan_sfm.reports.models import ReportIn

    store = ReportStore(tmp_path / "r.sqlite")
    one = ReportIn(viewpoint_id=1, category="blur_missing", polygon=TRIANGLE)
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: store.add(one), range(160)))
    assert sorted(ids) == list(range(1, 161)) and len(store.audit()) == 160


def test_serve_refuses_bad_arguments_in_one_line(tmp_path):
    short = tmp_path / "token"
    short.write_text("short")
    for args, message in ((["--scene", tmp_path / "missing.json"], "missing.json"),
                          (["--scene", SCENE, "--token-file", short], "at least 16 characters"),
                          (["--scene", SCENE, "--token-file", tmp_path / "none"], "none")):
        result = cli("serve", *args, "--db", tmp_path / "r.sqlite", timeout=60)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
