"""The reporting service's defences: CSRF on moderation, moderator tokens and sessions, the
sign-in rate limit, paginated and streamed answers, cache and redirect headers, unusable
polygons, and which client address counts (X-Forwarded-For only from a trusted proxy)."""

from __future__ import annotations

import hashlib
import hmac
import math
import time

import pytest
from fastapi.testclient import TestClient

from helpers import cli, needs_shared
from scanvan_sfm.errors import InputError
from scanvan_sfm.reports.app import create_app
from scanvan_sfm.reports.feed import to_feed
from scanvan_sfm.reports.models import ReportIn, Status
from scanvan_sfm.reports.store import ReportStore
from scanvan_sfm.sfm import read_scene
from service_helpers import MODERATOR, SCENE, TOKEN, TRIANGLE, LiveServer, config, http_request, report

ORIGIN = "http://testserver"  # the TestClient's own origin


def cookie(session_id: str) -> dict:
    return {"Cookie": f"scanvan_moderator={session_id}"}


def sign_in(client: TestClient) -> str:
    """Signs the client in like the moderation page does; returns the session's CSRF token."""
    assert client.post("/api/moderator/session", json={"token": TOKEN}, headers={"Origin": ORIGIN}).status_code == 204
    return client.get("/api/moderator/session").json()["csrf"]


# ---------------------------------------------------------------------------- CSRF
def test_cookie_moderation_needs_json_same_origin_and_the_csrf_token(client):
    report_id = client.post("/api/reports", json=report()).json()["id"]
    csrf = sign_in(client)
    url = f"/api/reports/{report_id}/accept"
    forged = [
        ({}, None),                                                           # an empty form post
        ({"Origin": ORIGIN, "X-CSRF-Token": csrf, "Content-Type": "text/plain"}, b'{"note": ""}'),
        ({"Origin": ORIGIN, "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"}, b""),
        ({"Origin": "http://127.0.0.1:9999", "X-CSRF-Token": csrf}, b"{}"),     # another origin of the site
        ({"Origin": "null", "X-CSRF-Token": csrf}, b"{}"),
        ({"Origin": ORIGIN}, b"{}"),                                          # no token
        ({"Origin": ORIGIN, "X-CSRF-Token": csrf[:-2] + "xx"}, b"{}"),
        ({"Sec-Fetch-Site": "same-site", "X-CSRF-Token": csrf}, b"{}"),
        ({"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf}, b"{}"),
        ({"X-CSRF-Token": csrf}, b"{}"),                                      # neither Origin nor Sec-Fetch-Site
    ]
    for headers, body in forged:
        if body is not None and "Content-Type" not in headers:
            headers = headers | {"Content-Type": "application/json"}
        response = client.post(url, headers=headers, content=body)
        assert response.status_code in (403, 415), (headers, response.status_code)
        assert client.get(f"/api/reports/{report_id}").json()["status"] == "pending"
    accepted = client.post(url, json={"note": "ok"}, headers={"Origin": ORIGIN, "X-CSRF-Token": csrf})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    rejected = client.post(f"/api/reports/{report_id}/reject", json={},
                           headers={"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


def test_bearer_moderation_needs_json(client):
    report_id = client.post("/api/reports", json=report()).json()["id"]
    for headers, body in (({"Content-Type": "text/plain"}, b'{"note": "x"}'), ({}, None)):
        response = client.post(f"/api/reports/{report_id}/accept", headers=MODERATOR | headers, content=body)
        assert response.status_code == 415 and response.json()["detail"] == "send Content-Type: application/json"
    assert client.post(f"/api/reports/{report_id}/accept", json={}, headers=MODERATOR).status_code == 200


def test_sign_in_needs_json_from_the_same_origin(client):
    for headers in ({}, {"Origin": "http://127.0.0.1:9999"}, {"Sec-Fetch-Site": "same-site"}):
        assert client.post("/api/moderator/session", json={"token": TOKEN}, headers=headers).status_code == 403
    assert client.post("/api/moderator/session", content=f'{{"token": "{TOKEN}"}}',
                       headers={"Origin": ORIGIN, "Content-Type": "text/plain"}).status_code == 415
    assert "set-cookie" not in client.post("/api/moderator/session", json={"token": TOKEN}).headers


# ---------------------------------------------------------------------------- tokens and sessions
WEAK = ["a", "short", "0123456789abcde", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0101010101010101", "abcabcabcabcabcabcabc",
        "twelve chars and spaces"]


@pytest.mark.parametrize("weak", WEAK)
@needs_shared
def test_weak_tokens_are_refused_everywhere(tmp_path, weak):
    with pytest.raises(InputError, match="moderator token"):
        create_app(config(tmp_path / "r.sqlite", token=weak))
    token_file = tmp_path / "token"
    token_file.write_text(weak + "\n")
    serve = ["serve", "--scene", tmp_path / "missing.json", "--db", tmp_path / "r.sqlite"]
    for args, env in (([], {"SCANVAN_MODERATOR_TOKEN": weak}), (["--token-file", token_file], {})):
        result = cli(*serve, *args, timeout=60, env=env)
        assert result.returncode == 2 and "moderator token" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and (len(weak) < 6 or weak not in result.stderr)


@needs_shared
def test_random_tokens_are_accepted(tmp_path):
    import secrets

    for token in (secrets.token_urlsafe(16), secrets.token_hex(24)):
        create_app(config(tmp_path / "r.sqlite", token=token))


def test_session_cookies_are_random_and_not_derived_from_the_token(client):
    cookies = set()
    for _ in range(2):
        sign_in(client)
        cookies.add(client.cookies["scanvan_moderator"])
        client.cookies.clear()
    assert len(cookies) == 2 and all(len(c) >= 43 for c in cookies)
    offline = hmac.new(TOKEN.encode(), b"moderator-session", hashlib.sha256).hexdigest()  # the old cookie
    assert client.get("/api/reports", headers=cookie(offline)).status_code == 401
    assert client.get("/moderate", headers=cookie(offline), follow_redirects=False).status_code == 303


def test_session_expires_and_signs_out(client):
    set_cookie = client.post("/api/moderator/session", json={"token": TOKEN}, headers={"Origin": ORIGIN}
                             ).headers["set-cookie"]
    assert "Max-Age=43200" in set_cookie and "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    csrf = client.get("/api/moderator/session").json()["csrf"]
    assert client.get("/api/reports").status_code == 200
    assert client.request("DELETE", "/api/moderator/session", headers={"Origin": ORIGIN}).status_code in (403, 415)
    stale = client.cookies["scanvan_moderator"]
    out = client.request("DELETE", "/api/moderator/session", json={},
                         headers={"Origin": ORIGIN, "X-CSRF-Token": csrf})
    assert out.status_code == 204 and 'scanvan_moderator=""' in out.headers["set-cookie"]
    assert client.get("/api/reports", headers=cookie(stale)).status_code == 401


def test_sessions_expire_after_their_lifetime():
    from scanvan_sfm.reports.security import Sessions

    sessions = Sessions(lifetime=0.2)
    session = sessions.open()
    assert sessions.get(session.id) is session
    time.sleep(0.3)
    assert sessions.get(session.id) is None and sessions.get(None) is None and sessions.get("forged") is None


@needs_shared
def test_sessions_end_when_the_token_changes(tmp_path):
    db = tmp_path / "r.sqlite"
    with TestClient(create_app(config(db))) as first:
        sign_in(first)
        session_id = first.cookies["scanvan_moderator"]
        assert first.get("/api/reports").status_code == 200
    with TestClient(create_app(config(db, token="another-token-0123456789abcdef"))) as second:
        assert second.get("/api/reports", headers=cookie(session_id)).status_code == 401


@needs_shared
def test_token_guesses_are_rate_limited_per_address(tmp_path):
    app = create_app(config(tmp_path / "r.sqlite"))
    with TestClient(app, client=("192.0.2.7", 4000)) as guesser, TestClient(app, client=("192.0.2.8", 4000)) as other:
        codes = [guesser.post("/api/moderator/session", json={"token": f"guess-{i}"}, headers={"Origin": ORIGIN}
                              ).status_code for i in range(6)]
        codes += [guesser.get("/api/reports", headers={"Authorization": f"Bearer guess-{i}"}).status_code
                  for i in range(6)]
        assert codes == [401] * 10 + [429] * 2
        refused = guesser.post("/api/moderator/session", json={"token": TOKEN}, headers={"Origin": ORIGIN})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0  # even the right token
        assert other.post("/api/moderator/session", json={"token": TOKEN}, headers={"Origin": ORIGIN}
                          ).status_code == 204


def test_odd_tokens_are_401_not_500(client):
    same_origin = {"Origin": ORIGIN, "Content-Type": "application/json"}
    for body in ('{"token": "\\ud800 lone surrogate"}', '{"token": "\\u0000\\u00e9\\uffff"}'):
        assert client.post("/api/moderator/session", content=body, headers=same_origin).status_code == 401
    for value in (b"Bearer \xe9\xff\x00", b"Bearer \xed\xa0\x80"):
        assert client.get("/api/reports", headers={"Authorization": value}).status_code == 401
    assert client.get("/api/moderator/session", headers={"X-CSRF-Token": b"\xff", "Cookie": b"scanvan_moderator=\xff"}
                      ).status_code == 401


# ---------------------------------------------------------------------------- size of answers
@needs_shared
def test_moderator_list_is_paginated_with_a_cursor(tmp_path):
    store = ReportStore(tmp_path / "r.sqlite")
    ids = [store.add(ReportIn(**report(viewpoint_id=i % 8))) for i in range(7)]
    store.decide(ids[1], Status.accepted)
    with TestClient(create_app(config(tmp_path / "r.sqlite"))) as client:
        seen, url, pages = [], "/api/reports?limit=3", 0
        while url:
            page = client.get(url, headers=MODERATOR).json()
            seen += [r["id"] for r in page["reports"]]
            url, pages = page["next"], pages + 1
        assert seen == ids and pages == 3
        pending = client.get("/api/reports?status=pending&limit=2", headers=MODERATOR).json()
        following = client.get(pending["next"], headers=MODERATOR).json()
        assert [r["id"] for r in pending["reports"] + following["reports"]] == [ids[0], ids[2], ids[3], ids[4]]
        assert client.get(f"/api/reports?after={ids[-1]}", headers=MODERATOR).json() == {"reports": [], "next": None}
        for bad in ("limit=0", "limit=501", "after=-1", "after=x"):
            assert client.get(f"/api/reports?{bad}", headers=MODERATOR).status_code == 422


@needs_shared
def test_export_is_streamed_in_chunks(tmp_path):
    store = ReportStore(tmp_path / "r.sqlite")
    for i in range(1234):
        store.decide(store.add(ReportIn(**report(viewpoint_id=i % 8))), Status.accepted)
    with TestClient(create_app(config(tmp_path / "r.sqlite"))) as client:
        response = client.get("/api/reports/export", headers=MODERATOR)
    assert response.status_code == 200 and "content-length" not in response.headers  # streamed, not built whole
    expected = to_feed(store.list(Status.accepted), read_scene(SCENE, structure=False))
    assert response.json() == expected and len(expected) == 1234


# ---------------------------------------------------------------------------- headers
def test_moderator_answers_are_not_cached(client):
    refused = client.get("/api/reports")
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    sign_in(client)
    for url in ("/api/reports", "/api/reports/export", "/api/moderator/session", "/moderate"):
        assert client.get(url).headers["cache-control"] == "no-store", url
    assert "cache-control" not in client.get("/static/moderate.js").headers  # files stay cacheable


def test_no_redirect_echoes_the_host_header(client):
    for url in ("/api/reports/", "/api/viewpoints/", "/moderate/", "/docs/"):
        response = client.get(url, headers={"Host": "evil.example"}, follow_redirects=False)
        assert response.status_code == 404 and "location" not in response.headers
        assert "evil.example" not in str(response.headers) + response.text


# ---------------------------------------------------------------------------- polygons
EQUATOR = math.pi / 2
UNUSABLE = {
    "whole sphere": [{"pitch": EQUATOR, "yaw": y} for y in (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)],
    "opposite corners": [{"pitch": 0.0, "yaw": 0.0}, {"pitch": math.pi, "yaw": 0.0}, {"pitch": EQUATOR, "yaw": 1.0},
                         {"pitch": EQUATOR, "yaw": 1.0 + math.pi}],
    "wider than 160 degrees": [{"pitch": EQUATOR, "yaw": y} for y in (0.1, 1.6, 3.1)] + [{"pitch": 1.4, "yaw": 1.6}],
    "coinciding corners": [{"pitch": 1.234, "yaw": 2.345}] * 3,
    "two distinct corners": [{"pitch": 1.2, "yaw": 0.5}, {"pitch": 1.2, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.7}],
    "on one great circle": [{"pitch": EQUATOR, "yaw": y} for y in (0.1, 0.2, 0.3)],
    "one pole, many yaws": [{"pitch": 0.0, "yaw": y} for y in (0.0, 2.0, 4.0)],
}


@pytest.mark.parametrize("name", list(UNUSABLE))
def test_unusable_polygons_are_refused_at_submission(client, name):
    response = client.post("/api/reports", json=report(polygon=UNUSABLE[name]))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "polygon"] and "polygon" in error["msg"]
    assert not any(str(v) in response.text for corner in UNUSABLE[name] for v in corner.values() if v)  # no echo
    assert client.get("/api/reports", headers=MODERATOR).json()["reports"] == []


def test_small_and_polar_polygons_are_still_accepted(client):
    tiny = [{"pitch": 1.2, "yaw": 0.5}, {"pitch": 1.2 + 2e-3, "yaw": 0.5}, {"pitch": 1.2, "yaw": 0.5 + 2e-3}]
    zenith = [{"pitch": 0.3, "yaw": y} for y in (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)]
    seam = [{"pitch": 1.4, "yaw": 6.2}, {"pitch": 1.4, "yaw": 0.1}, {"pitch": 1.7, "yaw": 0.1}]
    for polygon in (tiny, zenith, seam, TRIANGLE):
        assert client.post("/api/reports", json=report(polygon=polygon)).status_code == 201


# ---------------------------------------------------------------------------- client addresses
def post_from(server: LiveServer, forwarded_for: str) -> int:
    return http_request(server, "POST", "/api/reports", report(), {"X-Forwarded-For": forwarded_for})[0]


@needs_shared
def test_forwarded_for_is_ignored_without_a_trusted_proxy(tmp_path, monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    with LiveServer(config(tmp_path / "r.sqlite", submissions_per_minute=2)) as server:
        assert [post_from(server, f"198.51.100.{i}") for i in range(3)] == [201, 201, 429]


@needs_shared
def test_forwarded_for_counts_through_a_trusted_proxy(tmp_path, monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    with LiveServer(config(tmp_path / "r.sqlite", submissions_per_minute=2), trusted_proxies=["127.0.0.1"]) as server:
        assert [post_from(server, "198.51.100.1") for _ in range(3)] == [201, 201, 429]
        assert post_from(server, "198.51.100.2") == 201
        # IPv6 clients count by /64: one host can pick any address in its /64
        assert [post_from(server, f"2001:db8:0:7::{i}") for i in (1, 2, 3)] == [201, 201, 429]
        assert post_from(server, "2001:db8:0:8::1") == 201


def test_client_keys_group_ipv6_by_64():
    from scanvan_sfm.reports.security import client_key

    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("testclient") == "testclient"


@needs_shared
def test_serve_refuses_bad_trusted_proxies_in_one_line(tmp_path):
    for bad in ("*", "not-an-address", "10.0.0.0/33"):
        result = cli("serve", "--scene", SCENE, "--db", tmp_path / "r.sqlite", "--trusted-proxy", bad, timeout=60,
                     env={"SCANVAN_MODERATOR_TOKEN": TOKEN})
        assert result.returncode == 2 and "--trusted-proxy" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "r.sqlite").exists()  # refused before anything is written
