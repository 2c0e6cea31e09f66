"""``scanvan-sfm serve``: the public reporting page, its API and the moderation page.

Visitors browse the published panoramas in a 360° viewer (Photo Sphere Viewer, installed by
``npm ci`` and served from that install), draw a polygon around what was missed, and submit it.
Moderators, holding the token configured on the server, accept or reject reports.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import orjson
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InputError
from ..sfm import SfMData, read_scene
from ..sfm.io import images_root
from .feed import to_feed
from .models import (Category, Decision, FeedEntry, Report, ReportPage, ReportReceipt, ReportSubmission, SessionInfo,
                     Status, Viewpoint)
from .security import (CSRF_HEADER, GUESSES_PER_MINUTE, KEEP_ALIVE, MAX_CONNECTIONS, MAX_HEADER_BYTES,
                       SESSION_COOKIE, GuardedH11Protocol, GuardMiddleware, ModeratorToken, RateLimiter, Session,
                       Sessions, client_key, from_origin, is_json, proxy_network, script_hashes, security_headers)
from .store import ReportStore, TransitionError

ReportId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
Cursor = Annotated[int, Query(ge=0, le=2**63 - 1, description="the last report id of the previous page")]
PageSize = Annotated[int, Query(ge=1, le=500)]
ViewId = Annotated[int, PathParam(ge=0, le=2**32 - 1)]
WEB = Path(__file__).parent / "web"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: URL prefix → folder inside ``node_modules`` (the npm packages of package.json).
VENDOR = {
    "three": "three/build",
    "psv-core": "@photo-sphere-viewer/core",
    "psv-markers": "@photo-sphere-viewer/markers-plugin",
    "swagger-ui": "swagger-ui-dist",
}


@dataclass
class ServiceConfig:
    scene: Path
    db: Path
    token: str | None = None
    node_modules: Path = PROJECT_ROOT / "node_modules"
    submissions_per_minute: int = 10


class SignIn(BaseModel):
    token: str


def published_viewpoints(scene: SfMData, scene_path: Path) -> dict[int, tuple[Viewpoint, Path]]:
    """The reconstructed panoramas whose published image exists, by view id."""
    root = images_root(scene, scene_path)
    found = {}
    for view_id, view in sorted(scene.reconstructed_views().items()):
        path = scene.image_path(view, root)
        if scene.is_equirectangular(view) and path.is_file():
            pose = scene.extrinsics[view.id_pose]
            found[view_id] = (Viewpoint(id=view_id, image=view.image_path, width=view.width, height=view.height,
                                        center=pose.center), path)
    return found


def check_vendor(node_modules: Path) -> None:
    missing = [name for name in VENDOR.values() if not (node_modules / name).is_dir()]
    if missing:
        raise InputError(f"{node_modules}: the viewer packages are not installed ({', '.join(missing)}); "
                         f"run `npm ci` in {PROJECT_ROOT}")


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


def feed_json(pages: Iterator[list[Report]], scene: SfMData) -> Iterator[bytes]:
    """The feed as a JSON array, one piece per page of reports."""
    yield b"["
    separator = b""
    for page in pages:
        yield separator + b",".join(map(orjson.dumps, to_feed(page, scene)))
        separator = b","
    yield b"]"


def create_app(config: ServiceConfig) -> FastAPI:
    scene = read_scene(config.scene, structure=False)
    viewpoints = published_viewpoints(scene, config.scene)
    if not viewpoints:
        raise InputError(f"{config.scene}: no reconstructed panorama with a published image")
    check_vendor(config.node_modules)
    store = ReportStore(config.db)
    token = ModeratorToken(config.token)
    sessions = Sessions()
    limiter = RateLimiter(config.submissions_per_minute, 60.0)
    guesses = RateLimiter(GUESSES_PER_MINUTE, 60.0)

    app = FastAPI(title="scanvan-sfm reports", docs_url=None, redoc_url=None, redirect_slashes=False,
                  responses={400: {"description": "unreadable body"}, 413: {"description": "body too large"}},
                  description="Report a person or vehicle the anonymization missed (or masked needlessly). "
                              "Angles in radians: pitch 0 at the top of the panorama to π at the bottom, "
                              "yaw 0 at the left edge to 2π.")
    for prefix, folder in VENDOR.items():
        app.mount(f"/vendor/{prefix}", StaticFiles(directory=config.node_modules / folder), name=prefix)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    def client(request: Request) -> str:
        return client_key(request.client.host if request.client else "unknown")

    def too_many(what: str, wait: float) -> HTTPException:
        return HTTPException(429, f"too many {what} from this address; try again later",
                             headers={"Retry-After": str(math.ceil(wait))})

    def checked_token(request: Request, presented: str) -> bool:
        """The token check, refused (429) after too many wrong guesses from one address."""
        wait = guesses.retry_after(client(request), count=False)
        if wait:
            raise too_many("wrong tokens", wait)
        if token.check(presented):
            return True
        guesses.retry_after(client(request))
        return False

    def moderator(request: Request) -> Session | None:
        """The caller's session (None when they sent the token as a bearer); 401 for anyone else."""
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and checked_token(request, bearer[7:]):
            return None
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise HTTPException(401, "moderator token required", headers={"WWW-Authenticate": "Bearer"})
        return session

    def json_body(request: Request) -> None:
        if not is_json(request.headers):
            raise HTTPException(415, "send Content-Type: application/json")

    def same_origin(request: Request) -> bool:
        return from_origin(request.headers, f"{request.url.scheme}://{request.headers.get('host', '')}")

    def sign_in_guard(request: Request) -> None:
        """Sign-in is for the moderation page only: JSON, from this origin."""
        json_body(request)
        if not same_origin(request):
            raise HTTPException(403, "cross-origin request refused")

    def csrf_guard(request: Request, session: Session) -> None:
        """A change made with the session cookie comes from this origin with the session's CSRF token."""
        if not (same_origin(request) and session.has_csrf(request.headers.get(CSRF_HEADER))):
            raise HTTPException(403, "cross-origin request, or CSRF token missing or wrong")

    def moderator_change(request: Request, session: Annotated[Session | None, Depends(moderator)]) -> str:
        """A moderator's decision: JSON, and CSRF-guarded when made with the session cookie
        (browsers never add a bearer token by themselves)."""
        json_body(request)
        if session is not None:
            csrf_guard(request, session)
        return "moderator"

    def own_session(session: Annotated[Session | None, Depends(moderator)]) -> Session:
        if session is None:
            raise HTTPException(401, "no session (the bearer token needs none)")
        return session

    Moderator = Annotated[Session | None, Depends(moderator)]
    ModeratorChange = Annotated[str, Depends(moderator_change)]
    moderator_responses = {401: {"description": "moderator token required"},
                           429: {"description": "too many wrong tokens"}}
    moderator_change_responses = moderator_responses | {403: {"description": "cross-origin, or no CSRF token"},
                                                        415: {"description": "not JSON"}}

    def page(name: str) -> FileResponse:
        return FileResponse(WEB / name, media_type="text/html")

    # ------------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return page("index.html")

    @app.get("/moderate", include_in_schema=False)
    def moderate(request: Request) -> Response:
        if sessions.get(request.cookies.get(SESSION_COOKIE)) is None:
            return RedirectResponse("/moderate/login", status_code=303)
        return page("moderate.html")

    @app.get("/moderate/login", include_in_schema=False)
    def login_page() -> FileResponse:
        return page("login.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return page("docs.html")

    # ------------------------------------------------------------------------ public API
    @app.get("/api/viewpoints", response_model=list[Viewpoint])
    def list_viewpoints() -> list[Viewpoint]:
        """The panoramas visitors can open."""
        return [viewpoint for viewpoint, _ in viewpoints.values()]

    image_file = {"image/*": {"schema": {"type": "string", "format": "binary"}}}

    @app.get("/images/{view_id}", response_class=FileResponse, responses={
        200: {"description": "the image file", "content": image_file}, 404: {"description": "no such viewpoint"}})
    def image(view_id: ViewId) -> FileResponse:
        """A published (anonymized) panorama."""
        if view_id not in viewpoints:
            raise HTTPException(404, f"viewpoint {view_id} not found")
        return FileResponse(viewpoints[view_id][1])

    @app.post("/api/reports", status_code=201, response_model=ReportReceipt,
              responses={404: {"description": "no such viewpoint"}, 422: {"description": "invalid report"},
                         429: {"description": "too many reports"}})
    def submit(report: ReportSubmission, request: Request, response: Response) -> ReportReceipt:
        """Report a missed person or vehicle (or a needless mask) in one viewpoint."""
        if report.viewpoint_id not in viewpoints:
            raise HTTPException(404, f"viewpoint {report.viewpoint_id} is not published here")
        wait = limiter.retry_after(client(request))
        if wait:
            raise too_many("reports", wait)
        report_id = store.add(report)
        response.headers["Location"] = f"/api/reports/{report_id}"
        return ReportReceipt(id=report_id, status=Status.pending)

    # ------------------------------------------------------------------------ moderation API
    @app.post("/api/moderator/session", status_code=204, dependencies=[Depends(sign_in_guard)],
              responses={401: {"description": "wrong token"}, 403: {"description": "not from this origin"},
                         415: {"description": "not JSON"}, 429: {"description": "too many wrong tokens"}})
    def sign_in(body: SignIn, request: Request) -> Response:
        """Exchange the moderator token for a session cookie (for the moderation page)."""
        if not checked_token(request, body.token):
            raise HTTPException(401, "wrong moderator token")
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, sessions.open().id, max_age=int(sessions.lifetime), httponly=True,
                            samesite="strict", path="/", secure=request.url.scheme == "https")
        return response

    @app.get("/api/moderator/session", response_model=SessionInfo,
             responses={401: {"description": "not signed in"}, 429: {"description": "too many wrong tokens"}})
    def session_info(session: Annotated[Session, Depends(own_session)]) -> SessionInfo:
        """The session's CSRF token, which the moderation page sends with every change."""
        return SessionInfo(csrf=session.csrf)

    @app.delete("/api/moderator/session", status_code=204, responses=moderator_change_responses)
    def sign_out(request: Request, session: Annotated[Session, Depends(own_session)]) -> Response:
        """End the session (from the moderation page: same origin, with the CSRF token)."""
        csrf_guard(request, session)
        sessions.close(session.id)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    @app.get("/api/reports/export", response_model=list[FeedEntry], responses=moderator_responses)
    def export(_: Moderator, status: Status = Status.accepted,
               category: Category = Category.blur_missing) -> StreamingResponse:
        """Reports in the original ScanVan feed format (streamed)."""
        return StreamingResponse(feed_json(store.pages(status, category), scene), media_type="application/json")

    @app.get("/api/reports", response_model=ReportPage, responses=moderator_responses)
    def list_reports(_: Moderator, status: Status | None = None, after: Cursor = 0,
                     limit: PageSize = 100) -> ReportPage:
        """Reports, oldest first, ``limit`` at a time; all of them unless a status is given.
        ``next`` is the URL of the following page (null on the last)."""
        reports = store.list(status, after=after, limit=limit + 1)
        if len(reports) <= limit:
            return ReportPage(reports=reports, next=None)
        query = {"status": status.value} if status else {}
        return ReportPage(reports=reports[:limit],
                          next="/api/reports?" + urlencode(query | {"after": reports[limit - 1].id, "limit": limit}))

    @app.get("/api/reports/{report_id}", response_model=ReportReceipt,
             responses={404: {"description": "no such report"}})
    def report_status(report_id: ReportId) -> ReportReceipt:
        """A report's status, for the visitor who sent it."""
        found = store.get(report_id)
        if found is None:
            raise HTTPException(404, f"report {report_id} not found")
        return ReportReceipt(id=found.id, status=found.status)

    def decide(report_id: int, status: Status, decision: Decision, actor: str) -> Report:
        try:
            return store.decide(report_id, status, decision.note, actor)
        except KeyError:
            raise HTTPException(404, f"report {report_id} not found") from None
        except TransitionError as exc:
            raise HTTPException(409, str(exc)) from None

    decision_responses = moderator_change_responses | {404: {"description": "no such report"},
                                                       409: {"description": "already decided so"}}

    @app.post("/api/reports/{report_id}/accept", response_model=Report, responses=decision_responses)
    def accept(report_id: ReportId, actor: ModeratorChange, decision: Decision) -> Report:
        """Accept a report: it will be applied to the masks."""
        return decide(report_id, Status.accepted, decision, actor)

    @app.post("/api/reports/{report_id}/reject", response_model=Report, responses=decision_responses)
    def reject(report_id: ReportId, actor: ModeratorChange, decision: Decision) -> Report:
        """Reject a report (or take back an accepted one)."""
        return decide(report_id, Status.rejected, decision, actor)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with where and what, never the offending input (it may not even be valid JSON: NaN)."""
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, 422)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """As FastAPI's, but a 405 lists every method of the path (routes of one path are separate)."""
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            methods = {m for route in app.routes if isinstance(route, APIRoute)
                       and route.path_regex.match(request.url.path) for m in route.methods}
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)

    app.add_middleware(GuardMiddleware, headers=security_headers(script_hashes(*WEB.glob("*.html"))),
                       private=("/api/", "/moderate"))
    return app
