"""The original ScanVan report feed: ``[{filepath, viewpointId, pitchYawOrders: [{pitch, yaw}, ...]}]``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
from pydantic import TypeAdapter, ValidationError

from ..errors import InputError, error_place
from ..sfm import SfMData
from .models import Category, FeedEntry, Report, ReportIn

_FEED = TypeAdapter(list[FeedEntry])


def read_feed(path: Path) -> list[FeedEntry]:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    try:
        return _FEED.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"{path}: {error_place(first['loc']).lstrip('.') or '$'}: {first['msg']}") from None


def feed_reports(path: Path, scene: SfMData) -> list[tuple[ReportIn, str]]:
    """The feed's entries as ``blur_missing`` reports with a digest each (so a second import
    adds nothing); an entry naming a view the scene lacks, or another image, is refused."""
    reports = []
    for index, entry in enumerate(read_feed(path)):
        view = scene.views.get(entry.viewpointId)
        if view is None:
            raise InputError(f"{path}: [{index}].viewpointId: view {entry.viewpointId} is not in the scene")
        if Path(entry.filepath).name != Path(view.image_path).name:
            raise InputError(f"{path}: [{index}].filepath: {entry.filepath!r} is not view {entry.viewpointId}'s "
                             f"image {view.image_path!r}")
        digest = hashlib.sha256(orjson.dumps(entry.model_dump(), option=orjson.OPT_SORT_KEYS)).hexdigest()
        reports.append((ReportIn(viewpoint_id=entry.viewpointId, category=Category.blur_missing,
                                 polygon=entry.pitchYawOrders), digest))
    return reports


def to_feed(reports: list[Report], scene: SfMData) -> list[dict]:
    """Reports in the original feed format (``filepath`` is the view's image path)."""
    return [{"filepath": scene.views[r.viewpoint_id].image_path if r.viewpoint_id in scene.views else "",
             "viewpointId": r.viewpoint_id,
             "pitchYawOrders": [v.model_dump() for v in r.polygon]} for r in reports]
