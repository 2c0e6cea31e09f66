"""Slow clients against a live server on loopback (raw sockets): headers sent byte by byte and
trickled bodies are cut off within the limits (10 s each), one address cannot hold many
connections, and normal requests keep their latency meanwhile. ``serve`` runs with the same
server settings as these tests."""

from __future__ import annotations

import socket
import statistics
import time

import pytest

from helpers import needs_shared
from service_helpers import SCENE, TOKEN, LiveServer, config, http_request

pytestmark = needs_shared

HEADER_TIMEOUT = BODY_TIMEOUT = 10.0
MAX_CONNECTIONS_PER_CLIENT = 20
DEADLINE = 25.0  # every loop below ends by then
SLOW_HEADERS = b"GET /api/viewpoints HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SLOW_BODY = (b"POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n")


def connect(server: LiveServer, source: str, start: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(source, 0))
    sock.sendall(start)
    sock.setblocking(False)
    return sock


def answered(sock: socket.socket) -> bytes | None:
    """What the server sent before or while closing (b"" for a bare close), None while it waits."""
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return None
    except ConnectionError:
        return b""


def latency(server: LiveServer) -> float:
    started = time.perf_counter()
    status, _, _ = http_request(server, "GET", "/api/viewpoints")
    assert status == 200
    return time.perf_counter() - started


def trickle(server: LiveServer, sockets: list[socket.socket]) -> tuple[dict[int, tuple[float, bytes]], list[float]]:
    """Send one byte on every open socket every 0.25 s, and time a normal request each round,
    until the server has cut every socket off (or DEADLINE). Returns {socket: (seconds, answer)}
    and the normal requests' latencies."""
    started, cut, latencies = time.monotonic(), {}, []
    while len(cut) < len(sockets) and time.monotonic() - started < DEADLINE:
        for i, sock in enumerate(sockets):
            if i in cut:
                continue
            answer = answered(sock)
            if answer is None:
                try:
                    sock.send(b"a")
                except OSError:
                    answer = b""
            if answer is not None:
                cut[i] = (time.monotonic() - started, answer)
        latencies.append(latency(server))
        time.sleep(0.25)
    for sock in sockets:
        sock.close()
    return cut, latencies


def report_figures(name: str, cut: dict, latencies: list[float], baseline: float) -> None:
    times = [t for t, _ in cut.values()]
    print(f"\n{name}: {len(cut)} cut off after {min(times, default=0):.2f}–{max(times, default=0):.2f} s; "
          f"normal GET latency {1000 * baseline:.1f} ms before, during: median "
          f"{1000 * statistics.median(latencies):.1f} ms, max {1000 * max(latencies):.1f} ms")


@pytest.mark.parametrize("name, start, limit, status", [
    ("headers byte by byte", SLOW_HEADERS, HEADER_TIMEOUT, b"HTTP/1.1 408"),
    ("body byte by byte", SLOW_BODY, BODY_TIMEOUT, b"HTTP/1.1 408"),
])
def test_slow_clients_are_cut_off_and_others_keep_their_latency(tmp_path, name, start, limit, status):
    with LiveServer(config(tmp_path / "r.sqlite")) as server:
        baseline = statistics.median(latency(server) for _ in range(10))
        sockets = [connect(server, f"127.0.2.{i}", start) for i in range(1, 101)]  # 100 addresses
        cut, latencies = trickle(server, sockets)
    report_figures(name, cut, latencies, baseline)
    assert len(cut) == len(sockets), f"{len(sockets) - len(cut)} slow clients still connected after {DEADLINE} s"
    times = [t for t, _ in cut.values()]
    assert limit - 1.0 <= min(times) and max(times) <= limit + 2.0
    assert all(answer.startswith(status) for _, answer in cut.values())
    assert statistics.median(latencies) < baseline + 0.1 and max(latencies) < 1.5


def test_one_address_cannot_hold_many_connections(tmp_path):
    with LiveServer(config(tmp_path / "r.sqlite")) as server:
        sockets = [connect(server, "127.0.0.3", SLOW_HEADERS) for _ in range(300)]
        time.sleep(1.0)
        answers = [answered(sock) for sock in sockets]
        refused = [a for a in answers if a is not None]
        during = [latency(server) for _ in range(10)]
        for sock in sockets:
            sock.close()
    print(f"\n300 connections from one address: {len(refused)} refused at once, "
          f"normal GET latency meanwhile: max {1000 * max(during):.1f} ms")
    assert len(refused) == 300 - MAX_CONNECTIONS_PER_CLIENT
    assert all(a == b"" or a.startswith(b"HTTP/1.1 503") for a in refused)
    assert max(during) < 1.5


def test_a_trusted_proxy_may_hold_many_connections(tmp_path):
    with LiveServer(config(tmp_path / "r.sqlite"), trusted_proxies=["127.0.0.4"]) as server:
        sockets = [connect(server, "127.0.0.4", SLOW_HEADERS) for _ in range(3 * MAX_CONNECTIONS_PER_CLIENT)]
        time.sleep(1.0)
        answers = [answered(sock) for sock in sockets]
        for sock in sockets:
            sock.close()
    assert answers == [None] * len(sockets)


def test_serve_runs_with_the_test_server_settings(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from scanvan_sfm.cli import app

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self.config))
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    result = CliRunner().invoke(app, ["serve", "--scene", str(SCENE), "--db", str(tmp_path / "r.sqlite")],
                                env={"SCANVAN_MODERATOR_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    [served] = started
    tested = LiveServer(config(tmp_path / "r.sqlite")).server.config
    settings = ("timeout_keep_alive", "limit_concurrency", "h11_max_incomplete_event_size", "http", "proxy_headers",
                "forwarded_allow_ips", "timeout_graceful_shutdown", "server_header")
    assert [getattr(served, s) for s in settings] == [getattr(tested, s) for s in settings]
    assert served.limit_concurrency and not served.proxy_headers and served.forwarded_allow_ips == []
