"""A running ``serve`` for the service tests: the real 360_flat_gps scene, a fresh store."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn

from scanvan_sfm.reports.app import ServiceConfig, create_app

from conftest import OPENMVG

SCENE = OPENMVG / "360_flat_gps" / "sfm_data_bin.json"
TOKEN = "moderator-token-for-tests-0123456789"


def config(db: Path, **overrides) -> ServiceConfig:
    return ServiceConfig(scene=SCENE, db=db, token=TOKEN, **overrides)


class LiveServer:
    """uvicorn in a thread on a free loopback port."""

    def __init__(self, cfg: ServiceConfig):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=self.port,
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
