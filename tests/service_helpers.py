"""A running ``serve`` for the service tests: the real 360_flat_gps scene, a fresh store."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path

import orjson
import uvicorn

from helpers import GPS_SCENE as SCENE
from scanvan_sfm.reports.app import ServiceConfig, create_app, server_config

TOKEN = "moderator-token-for-tests-0123456789"
MODERATOR = {"Authorization": f"Bearer {TOKEN}"}
TRIANGLE = [{"pitch": 1.2, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.7}]


def refused(client, payload: object) -> dict:
    """POST a hostile report (an object as JSON, a string as it is): a 4xx JSON error, nothing
    stored. Returns the answer's JSON."""
    if isinstance(payload, str):
        response = client.post("/api/reports", content=payload, headers={"content-type": "application/json"})
    else:
        response = client.post("/api/reports", json=payload)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json" and "detail" in response.json()
    assert client.get("/api/reports", headers=MODERATOR).json()["reports"] == []  # nothing stored
    return response.json()


def config(db: Path, **overrides) -> ServiceConfig:
    return ServiceConfig(**({"scene": SCENE, "db": db, "token": TOKEN} | overrides))


def report(**changes) -> dict:
    """A visitor's report body, valid unless changed."""
    return {"viewpoint_id": 2, "category": "blur_missing", "polygon": TRIANGLE, "comment": ""} | changes


class LiveServer:
    """uvicorn in a thread on a free loopback port, with the settings ``serve`` uses."""

    def __init__(self, cfg: ServiceConfig, trusted_proxies: tuple[str, ...] | list[str] = ()):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(server_config(create_app(cfg), "127.0.0.1", self.port, trusted_proxies,
                                                   log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def http_request(server: LiveServer, method: str, path: str, body: object = None,
                 headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: status, headers (lower-case names), body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        payload = None if body is None else orjson.dumps(body)
        sent = (headers or {}) | ({"Content-Type": "application/json"} if payload is not None else {})
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
