"""The HTML pages (reporting, moderation, sign-in, API docs), their static files, and the npm
packages they load (served from where ``viewer`` installed them)."""

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from .access import signed_in
from .service import ServiceDep

WEB = Path(__file__).parent / "web"

router = APIRouter(include_in_schema=False)


def mount_files(app: FastAPI, vendor: dict[str, Path]) -> None:
    """Serve the vendor packages under ``/vendor/<prefix>`` and the pages' files under ``/static``
    (mounts: ``include_router`` does not carry them)."""
    for prefix, folder in vendor.items():
        app.mount(f"/vendor/{prefix}", StaticFiles(directory=folder), name=prefix)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")


def page(name: str) -> FileResponse:
    return FileResponse(WEB / name, media_type="text/html")


@router.get("/")
def index() -> FileResponse:
    return page("index.html")


@router.get("/moderate")
def moderate(request: Request, service: ServiceDep) -> Response:
    """The moderation page, or the sign-in page for anyone not signed in."""
    if signed_in(service, request) is None:
        return RedirectResponse("/moderate/login", status_code=303)
    return page("moderate.html")


@router.get("/moderate/login")
def login_page() -> FileResponse:
    return page("login.html")


@router.get("/docs")
def docs() -> FileResponse:
    return page("docs.html")
