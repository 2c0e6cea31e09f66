"""The service's guards: security headers, a body size limit, a per-client submission rate
limit, and the moderator token (compared in constant time)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections import deque
from pathlib import Path

import orjson

MAX_BODY = 64 * 1024
SESSION_COOKIE = "scanvan_moderator"


def script_hashes(*pages: Path) -> list[str]:
    """CSP hashes of the pages' inline ``<script type="importmap">`` blocks: the only inline
    script content the pages have (an import map is data, but CSP treats it as a script)."""
    hashes = []
    for page in pages:
        for block in re.findall(r'<script type="importmap">(.*?)</script>', page.read_text(), re.S):
            hashes.append("'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'")
    return sorted(set(hashes))


def security_headers(hashes: list[str]) -> list[tuple[bytes, bytes]]:
    csp = ("default-src 'none'; script-src 'self' " + " ".join(hashes) + "; style-src 'self'; "
           "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
           "form-action 'self'; frame-ancestors 'none'; object-src 'none'")
    headers = {"content-security-policy": csp, "x-frame-options": "DENY", "x-content-type-options": "nosniff",
               "referrer-policy": "no-referrer", "cross-origin-opener-policy": "same-origin",
               "cross-origin-resource-policy": "same-origin", "permissions-policy": "camera=(), microphone=()"}
    return [(k.encode(), v.encode()) for k, v in headers.items()]


class GuardMiddleware:
    """ASGI: refuses bodies over ``max_body`` bytes (413 JSON) before the app reads them, and adds
    the security headers to every response."""

    def __init__(self, app, headers: list[tuple[bytes, bytes]], max_body: int = MAX_BODY):
        self.app, self.headers, self.max_body = app, headers, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in self.headers if h[0] not in names]
            await send(message)

        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await _json_error(send_with_headers, 413, f"request body over {self.max_body} bytes")
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send_with_headers)


async def _json_error(send, status: int, detail: str) -> None:
    payload = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class RateLimiter:
    """At most ``limit`` events per client in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit, self.window = limit, window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """0 when the client may go on (and the event is counted), else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            events = self._events.setdefault(client, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return events[0] + self.window - now
            events.append(now)
            if len(self._events) > 100_000:  # forget idle clients
                self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window}
            return 0.0


class ModeratorToken:
    """The moderator token; ``None`` turns moderation off. The session cookie carries a keyed
    digest of the token, never the token."""

    def __init__(self, token: str | None):
        self._token = token.encode() if token else None
        self.session = hmac.new(self._token, b"moderator-session", "sha256").hexdigest() if self._token else None

    def check(self, presented: str | None) -> bool:
        return bool(self._token and presented) and hmac.compare_digest(presented.encode(), self._token)

    def check_session(self, cookie: str | None) -> bool:
        return bool(self.session and cookie) and hmac.compare_digest(cookie.encode(), self.session.encode())
