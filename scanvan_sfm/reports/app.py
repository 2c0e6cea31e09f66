"""``scanvan-sfm serve``: the public reporting page, its API and the moderation page.

Visitors browse the published panoramas in a 360° viewer (Photo Sphere Viewer, installed by
``npm ci`` and served from that install), draw a polygon around what was missed, and submit it.
Moderators, holding the token configured on the server, accept or reject reports.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InputError
from ..sfm import SfMData, read_scene
from ..sfm.io import images_root
from ..steps import is_panorama
from .feed import to_feed
from .models import Category, Decision, Report, ReportIn, ReportReceipt, Status, Viewpoint
from .security import SESSION_COOKIE, GuardMiddleware, ModeratorToken, RateLimiter, script_hashes, security_headers
from .store import ReportStore, TransitionError

ReportId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
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


class Session(BaseModel):
    token: str


def published_viewpoints(scene: SfMData, scene_path: Path) -> dict[int, tuple[Viewpoint, Path]]:
    """The reconstructed panoramas whose published image exists, by view id."""
    root = images_root(scene, scene_path)
    found = {}
    for view_id, view in sorted(scene.reconstructed_views().items()):
        path = scene.image_path(view, root)
        if is_panorama((view.width, view.height)) and path.is_file():
            pose = scene.extrinsics[view.id_pose]
            found[view_id] = (Viewpoint(id=view_id, image=view.image_path, width=view.width, height=view.height,
                                        center=pose.center), path)
    return found


def check_vendor(node_modules: Path) -> None:
    missing = [name for name in VENDOR.values() if not (node_modules / name).is_dir()]
    if missing:
        raise InputError(f"{node_modules}: the viewer packages are not installed ({', '.join(missing)}); "
                         f"run `npm ci` in {PROJECT_ROOT}")


def create_app(config: ServiceConfig) -> FastAPI:
    scene = read_scene(config.scene, structure=False)
    viewpoints = published_viewpoints(scene, config.scene)
    if not viewpoints:
        raise InputError(f"{config.scene}: no reconstructed panorama with a published image")
    check_vendor(config.node_modules)
    store = ReportStore(config.db)
    token = ModeratorToken(config.token)
    limiter = RateLimiter(config.submissions_per_minute, 60.0)

    app = FastAPI(title="scanvan-sfm reports", docs_url=None, redoc_url=None,
                  responses={400: {"description": "unreadable body"}, 413: {"description": "body too large"}},
                  description="Report a person or vehicle the anonymization missed (or masked needlessly). "
                              "Angles in radians: pitch 0 at the top of the panorama to π at the bottom, "
                              "yaw 0 at the left edge to 2π.")
    for prefix, folder in VENDOR.items():
        app.mount(f"/vendor/{prefix}", StaticFiles(directory=config.node_modules / folder), name=prefix)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    def moderator(request: Request) -> str:
        bearer = request.headers.get("authorization", "")
        presented = bearer[7:] if bearer.lower().startswith("bearer ") else None
        if token.check(presented) or token.check_session(request.cookies.get(SESSION_COOKIE)):
            return "moderator"
        raise HTTPException(401, "moderator token required", headers={"WWW-Authenticate": "Bearer"})

    Moderator = Annotated[str, Depends(moderator)]

    def page(name: str) -> FileResponse:
        return FileResponse(WEB / name, media_type="text/html")

    # ------------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return page("index.html")

    @app.get("/moderate", include_in_schema=False)
    def moderate(request: Request) -> Response:
        if not token.check_session(request.cookies.get(SESSION_COOKIE)):
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
    def submit(report: ReportIn, request: Request, response: Response) -> ReportReceipt:
        """Report a missed person or vehicle (or a needless mask) in one viewpoint."""
        if report.viewpoint_id not in viewpoints:
            raise HTTPException(404, f"viewpoint {report.viewpoint_id} is not published here")
        wait = limiter.retry_after(request.client.host if request.client else "unknown")
        if wait:
            raise HTTPException(429, "too many reports from this address; try again later",
                                headers={"Retry-After": str(math.ceil(wait))})
        report_id = store.add(report)
        response.headers["Location"] = f"/api/reports/{report_id}"
        return ReportReceipt(id=report_id, status=Status.pending)

    # ------------------------------------------------------------------------ moderation API
    @app.post("/api/moderator/session", status_code=204, responses={401: {"description": "wrong token"}})
    def open_session(session: Session, request: Request) -> Response:
        """Exchange the moderator token for a session cookie (for the moderation page)."""
        if not token.check(session.token):
            raise HTTPException(401, "wrong moderator token")
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, token.session, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    @app.get("/api/reports/export", responses={401: {"description": "moderator token required"}})
    def export(_: Moderator, status: Status = Status.accepted,
               category: Category = Category.blur_missing) -> list[dict]:
        """Reports in the original ScanVan feed format."""
        return to_feed(store.list(status, category), scene)

    @app.get("/api/reports", response_model=list[Report], responses={401: {"description": "moderator token required"}})
    def list_reports(_: Moderator, status: Status | None = None) -> list[Report]:
        """Reports, oldest first; all of them unless a status is given."""
        return store.list(status)

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

    decision_responses = {401: {"description": "moderator token required"}, 404: {"description": "no such report"},
                          409: {"description": "already decided so"}}

    @app.post("/api/reports/{report_id}/accept", response_model=Report, responses=decision_responses)
    def accept(report_id: ReportId, actor: Moderator, decision: Decision | None = None) -> Report:
        """Accept a report: it will be applied to the masks."""
        return decide(report_id, Status.accepted, decision or Decision(), actor)

    @app.post("/api/reports/{report_id}/reject", response_model=Report, responses=decision_responses)
    def reject(report_id: ReportId, actor: Moderator, decision: Decision | None = None) -> Report:
        """Reject a report (or take back an accepted one)."""
        return decide(report_id, Status.rejected, decision or Decision(), actor)

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

    app.add_middleware(GuardMiddleware, headers=security_headers(script_hashes(*WEB.glob("*.html"))))
    return app
