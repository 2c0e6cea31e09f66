"""The visitors' API: the published viewpoints and their images, submitting a report, and a
report's status."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from .access import client, too_many
from .models import ReportIn, ReportReceipt, ReportSubmission, Status, Vertex, Viewpoint, check_placeable
from .photo import polygon_of_pixels
from .service import Service, ServiceDep

ReportId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
ViewId = Annotated[int, PathParam(ge=0, le=2**32 - 1)]
IMAGE_FILE = {"image/*": {"schema": {"type": "string", "format": "binary"}}}

router = APIRouter()


def report_not_found(report_id: int) -> HTTPException:
    return HTTPException(404, f"report {report_id} not found")


@router.get("/api/viewpoints", response_model=list[Viewpoint])
def list_viewpoints(service: ServiceDep) -> list[Viewpoint]:
    """The panoramas and photos visitors can open."""
    return [viewpoint for viewpoint, _ in service.viewpoints.values()]


@router.get("/images/{view_id}", response_class=FileResponse, responses={
    200: {"description": "the image file", "content": IMAGE_FILE}, 404: {"description": "no such viewpoint"}})
def image(view_id: ViewId, service: ServiceDep) -> FileResponse:
    """A published (anonymized) panorama or photo."""
    if view_id not in service.viewpoints:
        raise HTTPException(404, f"viewpoint {view_id} not found")
    return FileResponse(service.viewpoints[view_id][1])


def stored_polygon(service: Service, report: ReportSubmission) -> list[Vertex]:
    """The polygon as stored, in angles: a panorama's as sent; a photo's from the pixels drawn,
    through its camera model (422 when it does not fit the photo)."""
    photo = service.photo(report.viewpoint_id)
    if photo is None:
        if report.polygon is None:
            raise HTTPException(422, f"viewpoint {report.viewpoint_id} is a panorama: send the polygon in angles")
        return report.polygon
    if report.pixels is None:
        raise HTTPException(422, f"viewpoint {report.viewpoint_id} is a photo: send the polygon in pixels")
    view, intrinsic = photo
    try:
        angles = polygon_of_pixels(intrinsic, np.array([[p.x, p.y] for p in report.pixels]), view.width, view.height)
        check_placeable(angles)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return [Vertex(pitch=pitch, yaw=yaw) for pitch, yaw in angles]


@router.post("/api/reports", status_code=201, response_model=ReportReceipt,
             responses={404: {"description": "no such viewpoint"}, 422: {"description": "invalid report"},
                        429: {"description": "too many reports"}})
def submit(report: ReportSubmission, request: Request, response: Response, service: ServiceDep) -> ReportReceipt:
    """Report a missed person or vehicle (or a needless mask) in one viewpoint: on a panorama,
    the polygon's corners in angles; on a photo, in pixels."""
    if report.viewpoint_id not in service.viewpoints:
        raise HTTPException(404, f"viewpoint {report.viewpoint_id} is not published here")
    polygon = stored_polygon(service, report)
    wait = service.submissions.retry_after(client(request))
    if wait:
        raise too_many("reports", wait)
    report_id = service.store.add(ReportIn(viewpoint_id=report.viewpoint_id, category=report.category,
                                           polygon=polygon, comment=report.comment))
    assert report_id is not None  # only a feed entry imported before comes back as None
    response.headers["Location"] = f"/api/reports/{report_id}"
    return ReportReceipt(id=report_id, status=Status.pending)


@router.get("/api/reports/{report_id}", response_model=ReportReceipt,
            responses={404: {"description": "no such report"}})
def report_status(report_id: ReportId, service: ServiceDep) -> ReportReceipt:
    """A report's status, for the visitor who sent it."""
    found = service.store.get(report_id)
    if found is None:
        raise report_not_found(report_id)
    return ReportReceipt(id=report_id, status=found.status)
