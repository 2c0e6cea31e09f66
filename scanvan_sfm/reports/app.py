"""``scanvan-sfm serve``: the public reporting page, its API and the moderation page.

Visitors browse the published panoramas in a 360° viewer (Photo Sphere Viewer, whose npm
tarballs ``viewer`` installs in the user cache, served from there) and the published photos in a
flat one, draw a polygon around what was missed, and submit it.
Moderators, holding the token configured on the server, accept or reject reports.

The routes are in ``routes_pages`` (pages and files), ``routes_moderator`` (the moderators' API)
and ``routes_public`` (the visitors' API); the state they share is a ``service.Service``.
"""

from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import routes_moderator, routes_pages, routes_public
from .access import Responses
from .routes_pages import WEB
from .security import (
    KEEP_ALIVE,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    GuardedH11Protocol,
    GuardMiddleware,
    proxy_network,
    script_hashes,
    security_headers,
)
from .service import Service, ServiceConfig

__all__ = ["ServiceConfig", "create_app", "server_config"]

#: In matching order: /api/reports/export (moderators) must come before /api/reports/{report_id} (visitors),
#: so /openapi.json lists the moderators' operations first.
ROUTERS = (routes_pages.router, routes_moderator.router, routes_public.router)

DESCRIPTION = ("Report a person or vehicle the anonymization missed (or masked needlessly). "
               "On a panorama, corners in angles (radians): pitch 0 at the top of the panorama to π at "
               "the bottom, yaw 0 at the left edge to 2π. On a photo, corners in pixels; they are stored "
               "in the same angles, through the camera model (pitch 0 up, yaw π straight ahead).")
BODY_ERRORS: Responses = {400: {"description": "unreadable body"}, 413: {"description": "body too large"}}


def server_config(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, trusted_proxies: Sequence[str] = (),
                  log_level: str = "info") -> uvicorn.Config:
    """The uvicorn settings the service runs with (``serve`` and the tests): time and size limits
    on requests, a connection cap, and X-Forwarded-For taken only from ``trusted_proxies``
    (never from ``$FORWARDED_ALLOW_IPS``)."""
    proxies = [proxy_network(p) for p in trusted_proxies]
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, server_header=False,
                          http=GuardedH11Protocol, proxy_headers=bool(proxies), forwarded_allow_ips=proxies,
                          timeout_keep_alive=KEEP_ALIVE, limit_concurrency=MAX_CONNECTIONS,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                          timeout_graceful_shutdown=10)  # slow clients cannot hold a shutdown either


def create_app(config: ServiceConfig) -> FastAPI:
    """The service's app: checks the scene, installs the viewer packages if need be, opens the
    report store."""
    service = Service.open(config)
    app = FastAPI(title="scanvan-sfm reports", docs_url=None, redoc_url=None, redirect_slashes=False,
                  responses=BODY_ERRORS, description=DESCRIPTION)
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.state.service = service
    routes_pages.mount_files(app, service.vendor)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(GuardMiddleware, headers=security_headers(script_hashes(*WEB.glob("*.html"))),
                       private=("/api/", "/moderate"))
    return app


def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with where and what, never the offending input (it may not even be valid JSON: NaN)."""
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": errors}, 422)


def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """As FastAPI's, but a 405 lists every method of the path (routes of one path are separate)."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(path_methods(request.url.path)))
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)


def path_methods(path: str) -> set[str]:
    """The methods of every API route matching ``path``. Read from the routers themselves: since
    FastAPI 0.137 ``app.routes`` holds the included routers, not their routes."""
    return {method for router in ROUTERS for route in router.routes
            if isinstance(route, APIRoute) and route.path_regex.match(path) for method in route.methods or ()}
