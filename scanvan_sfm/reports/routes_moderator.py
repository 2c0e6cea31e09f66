"""The moderators' API: signing in and out of the moderation page, listing and exporting the
reports, accepting or rejecting them."""

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlencode

import numpy as np
import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ..errors import InputError
from ..sfm import SfMData
from .access import (
    Moderator,
    ModeratorChange,
    OwnSession,
    Responses,
    checked_token,
    csrf_guard,
    moderator_change_responses,
    moderator_responses,
    sign_in_guard,
)
from .feed import to_feed
from .models import Category, Decision, FeedEntry, Report, ReportPage, SessionInfo, Status
from .photo import check_in_view, outline
from .routes_public import ReportId, report_not_found
from .security import SESSION_COOKIE
from .service import Service, ServiceDep
from .store import TransitionError

Cursor = Annotated[int, Query(ge=0, le=2**63 - 1, description="the last report id of the previous page")]
PageSize = Annotated[int, Query(ge=1, le=500)]
decision_responses: Responses = moderator_change_responses | {404: {"description": "no such report"},
                                                              409: {"description": "already decided so"}}

router = APIRouter()


class SignIn(BaseModel):
    token: str


@router.post("/api/moderator/session", status_code=204, dependencies=[Depends(sign_in_guard)],
             responses={401: {"description": "wrong token"}, 403: {"description": "not from this origin"},
                        415: {"description": "not JSON"}, 429: {"description": "too many wrong tokens"}})
def sign_in(body: SignIn, request: Request, service: ServiceDep) -> Response:
    """Exchange the moderator token for a session cookie (for the moderation page)."""
    if not checked_token(service, request, body.token):
        raise HTTPException(401, "wrong moderator token")
    response = Response(status_code=204)
    response.set_cookie(SESSION_COOKIE, service.sessions.open().id, max_age=int(service.sessions.lifetime),
                        httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https")
    return response


@router.get("/api/moderator/session", response_model=SessionInfo,
            responses={401: {"description": "not signed in"}, 429: {"description": "too many wrong tokens"}})
def session_info(session: OwnSession) -> SessionInfo:
    """The session's CSRF token, which the moderation page sends with every change."""
    return SessionInfo(csrf=session.csrf)


@router.delete("/api/moderator/session", status_code=204, responses=moderator_change_responses)
def sign_out(request: Request, session: OwnSession, service: ServiceDep) -> Response:
    """End the session (from the moderation page: same origin, with the CSRF token)."""
    csrf_guard(request, session)
    service.sessions.close(session.id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


def feed_json(pages: Iterator[list[Report]], scene: SfMData) -> Iterator[bytes]:
    """The feed as a JSON array, one piece per page of reports."""
    yield b"["
    separator = b""
    for page in pages:
        yield separator + b",".join(map(orjson.dumps, to_feed(page, scene)))
        separator = b","
    yield b"]"


@router.get("/api/reports/export", response_model=list[FeedEntry], responses=moderator_responses)
def export(_: Moderator, service: ServiceDep, status: Status = Status.accepted,
           category: Category = Category.blur_missing) -> StreamingResponse:
    """Reports in the original ScanVan feed format (streamed)."""
    pages = service.store.pages(status, category)
    return StreamingResponse(feed_json(pages, service.scene), media_type="application/json")


def with_outline(service: Service, report: Report) -> Report:
    """The report with its polygon in pixels when it is on a published photo (and lies on it)."""
    photo = service.photo(report.viewpoint_id)
    if photo is None:
        return report
    view, intrinsic = photo
    polygon = np.array([[v.pitch, v.yaw] for v in report.polygon])
    try:
        check_in_view(intrinsic, polygon, view.width, view.height)
    except InputError:
        return report
    pixels = np.round(outline(intrinsic, polygon), 2).tolist()
    return report.model_copy(update={"outline": [(x, y) for x, y in pixels]})


@router.get("/api/reports", response_model=ReportPage, responses=moderator_responses)
def list_reports(_: Moderator, service: ServiceDep, status: Status | None = None, after: Cursor = 0,
                 limit: PageSize = 100) -> ReportPage:
    """Reports, oldest first, ``limit`` at a time; all of them unless a status is given.
    ``next`` is the URL of the following page (null on the last)."""
    reports = service.store.list(status, after=after, limit=limit + 1)
    page = [with_outline(service, r) for r in reports[:limit]]
    if len(reports) <= limit:
        return ReportPage(reports=page, next=None)
    query = {"status": status.value} if status else {}
    return ReportPage(reports=page,
                      next="/api/reports?" + urlencode(query | {"after": reports[limit - 1].id, "limit": limit}))


def decide(service: Service, report_id: int, status: Status, decision: Decision, actor: str) -> Report:
    """Record a moderator's decision: 404 for no such report, 409 when it cannot go to ``status``."""
    try:
        return with_outline(service, service.store.decide(report_id, status, decision.note, actor))
    except KeyError:
        raise report_not_found(report_id) from None
    except TransitionError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/api/reports/{report_id}/accept", response_model=Report, responses=decision_responses)
def accept(report_id: ReportId, actor: ModeratorChange, decision: Decision, service: ServiceDep) -> Report:
    """Accept a report: it will be applied to the masks."""
    return decide(service, report_id, Status.accepted, decision, actor)


@router.post("/api/reports/{report_id}/reject", response_model=Report, responses=decision_responses)
def reject(report_id: ReportId, actor: ModeratorChange, decision: Decision, service: ServiceDep) -> Report:
    """Reject a report (or take back an accepted one)."""
    return decide(service, report_id, Status.rejected, decision, actor)
