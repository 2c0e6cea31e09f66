"""The service's guards: security headers, body size and time limits, per-client rate limits,
the moderator token (compared in constant time) and sessions, the CSRF checks, and the HTTP
protocol's header deadline and per-client connection cap."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import InputError

MAX_BODY = 64 * 1024
BODY_TIMEOUT = 10.0               # seconds to receive a whole request body
HEADER_TIMEOUT = 10.0             # seconds to receive a request's headers
KEEP_ALIVE = 5                    # seconds an idle connection stays open
MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 512             # beyond this many connections, requests get 503
MAX_CONNECTIONS_PER_CLIENT = 20   # per client address (IPv6: per /64), trusted proxies excepted
SESSION_COOKIE = "scanvan_moderator"
SESSION_LIFETIME = 12 * 3600.0
CSRF_HEADER = "x-csrf-token"
GUESSES_PER_MINUTE = 10           # wrong moderator tokens per client address
MIN_TOKEN_LENGTH, MIN_TOKEN_DISTINCT = 16, 10


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


class BodyTooLarge(Exception):
    pass


class GuardMiddleware:
    """ASGI: reads the whole body before the app does, refusing one over ``max_body`` bytes (413)
    or not received within ``body_timeout`` seconds (408); adds the security headers to every
    response, and ``Cache-Control: no-store`` under the ``private`` path prefixes."""

    def __init__(self, app, headers: list[tuple[bytes, bytes]], private: tuple[str, ...] = (),
                 max_body: int = MAX_BODY, body_timeout: float = BODY_TIMEOUT):
        self.app, self.headers, self.private = app, headers, private
        self.max_body, self.body_timeout = max_body, body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        added = self.headers + ([(b"cache-control", b"no-store")] if scope["path"].startswith(self.private) else [])

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in added if h[0] not in names]
            await send(message)

        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._body(receive)
        except TimeoutError:
            return await _json_error(send_with_headers, 408, f"body not received within {self.body_timeout:g} s")
        except BodyTooLarge:
            return await _json_error(send_with_headers, 413, f"request body over {self.max_body} bytes")
        if body is None:
            return None
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send_with_headers)

    async def _body(self, receive) -> bytes | None:
        """The whole request body (None when the client went away)."""
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                raise BodyTooLarge
        return body


async def _json_error(send, status: int, detail: str) -> None:
    """A JSON error that closes the connection (the rest of the body is not read)."""
    payload = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


class RateLimiter:
    """At most ``limit`` events per client in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit, self.window = limit, window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, count: bool = True) -> float:
        """0 when the client may go on (and the event is counted, unless ``count`` is false),
        else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            events = self._events.setdefault(client, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return events[0] + self.window - now
            if count:
                events.append(now)
            if len(self._events) > 100_000:  # forget idle clients
                self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window}
            return 0.0


def client_key(host: str) -> str:
    """What a per-client limit counts: an IPv4 address, or an IPv6 address's /64 (one host
    usually holds a whole /64); anything else as it is."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def proxy_network(value: str) -> str:
    """A trusted proxy: an IP address or network (never ``*``)."""
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise InputError(f"--trusted-proxy {value!r}: not an IP address or network") from None


def check_token(token: str, source: str) -> str:
    """A moderator token strong enough to guard the service alone."""
    if (len(token) < MIN_TOKEN_LENGTH or len(set(token)) < MIN_TOKEN_DISTINCT
            or not (token.isascii() and token.isprintable()) or " " in token):
        raise InputError(f"{source}: a moderator token needs at least {MIN_TOKEN_LENGTH} characters, "
                         f"{MIN_TOKEN_DISTINCT} of them different, printable ASCII without spaces "
                         "(e.g. `openssl rand -hex 24`)")
    return token


def _utf8(text: str) -> bytes:
    """Any client string as bytes (JSON may hold lone surrogates)."""
    return text.encode("utf-8", "surrogatepass")


class ModeratorToken:
    """The moderator token; ``None`` turns moderation off."""

    def __init__(self, token: str | None):
        self._token = check_token(token, "the moderator token").encode() if token else None

    def check(self, presented: str | None) -> bool:
        if not self._token or not presented:
            return False
        return hmac.compare_digest(_utf8(presented), self._token)


@dataclass(frozen=True)
class Session:
    """A signed-in moderation page: a random id (the cookie) and a CSRF token of its own."""

    id: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    expires: float = 0.0  # time.monotonic()

    def has_csrf(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(_utf8(presented), self.csrf.encode())


class Sessions:
    """Moderator sessions, in memory, each for ``lifetime`` seconds from sign-in: they end at
    sign-out, on restart, and with every new app (so with a new token)."""

    def __init__(self, lifetime: float = SESSION_LIFETIME):
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self) -> Session:
        now = time.monotonic()
        session = Session(expires=now + self.lifetime)
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v.expires > now}
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        with self._lock:
            session = self._sessions.get(session_id or "")
        return session if session and session.expires > time.monotonic() else None

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)


def is_json(headers) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def from_origin(headers, origin: str) -> bool:
    """The browser says the request comes from ``origin``: by its Origin header, or without one
    by ``Sec-Fetch-Site: same-origin``; a request with neither is refused."""
    site = headers.get("sec-fetch-site")
    if site not in (None, "same-origin"):
        return False
    sent = headers.get("origin")
    return sent == origin if sent is not None else site == "same-origin"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus what it lacks: a deadline for each request's headers (from the
    connection, or the previous response, on; uvicorn's keep-alive timer stops at the first
    byte), and at most ``MAX_CONNECTIONS_PER_CLIENT`` connections per client address."""

    client_key: str | None = None
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.client_key = client_key(self.client[0]) if self.client else None
        if self._crowded():
            self._refuse(b"503 Service Unavailable")
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._watch_headers()

    def _watch_headers(self) -> None:
        """The header deadline runs while a request's headers are awaited, and only then."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._header_timer is None:
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._refuse, b"408 Request Timeout")
        elif not waiting and self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _crowded(self) -> bool:
        if not self.client or self._from_trusted_proxy(self.client[0]):
            return False
        same = sum(1 for c in self.connections if getattr(c, "client_key", None) == self.client_key)
        return same > MAX_CONNECTIONS_PER_CLIENT

    def _from_trusted_proxy(self, host: str) -> bool:
        address = ipaddress.ip_address(host.split("%")[0])
        return self.config.proxy_headers and any(address in ipaddress.ip_network(network)
                                                 for network in self.config.forwarded_allow_ips)

    def _refuse(self, status: bytes) -> None:
        """Answer ``status`` (no request was read) and close."""
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()
