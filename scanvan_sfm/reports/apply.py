"""``scanvan-sfm reports apply``: accepted reports into the mask layers, affected views re-filled.

Masks are the source of truth: each accepted ``blur_missing`` report adds its polygon to the
view's ``manual`` layer (``blur_excess``: to the ``excess`` layer, which releases automatic mask
only), optionally carried to the other views that see the same landmarks. Affected views are
re-filled from their originals, the scene is registered again and the manifest updated.

``anonymization/reports/applied.json`` lists every applied report with the regions it put into
each view, so the layers can always be rebuilt: a report rejected after it was applied is taken
out again on the next apply. ``audit.jsonl`` gets a line per changed view.

An interrupted apply is finished by the next one: the ledger is written last, so its reports are
applied again; a view is re-filled whenever its mask differs from the one its published image was
filled with (the manifest keeps that mask's digest, written after the images); the manifest, the
registered scene and the store are brought up to date before the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path

import numpy as np
import orjson

from .. import guard
from ..atomic import atomic_output, remove_parts
from ..camera_blur import CameraMasks
from ..dataset import MainFolder
from ..errors import InputError
from ..failures import EXPECTED_ERRORS, reason
from ..images import read_image, read_mask
from ..pipeline import Settings, load_manifest, output_keys, publish, register, sha256_file, write_manifest
from ..sfm import SfMData, read_scene
from ..sfm.io import images_root
from ..sfm.models import Spherical
from .feed import feed_reports
from .layers import LAYERS, combine, prune_layers, read_automatic, render, write_layers
from .models import Category, Status
from .propagate import Region, propagate
from .spherical import placeable_cap, rasterize
from .store import ReportStore


@dataclass
class Wanted:
    """A report that should be in the masks."""

    key: str                   # "report-<id>" (store) or "feed-<digest>"
    report_id: int | None
    view_id: int
    category: Category
    polygon: list[list[float]]  # (pitch, yaw)


@dataclass
class ViewChange:
    view_id: int
    reports: list[str]
    masked_before: float
    masked_after: float
    refilled: bool
    error: str = ""


@dataclass
class ApplyRun:
    run_id: str
    applied: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    propagated: int = 0
    changes: list[ViewChange] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[ViewChange]:
        return [c for c in self.changes if c.error]


def apply_reports(scene_path: Path, out: Path, *, db: Path | None = None, feed: Path | None = None,
                  propagate_reports: bool = False, dry_run: bool = False) -> ApplyRun:
    started = time.perf_counter()
    if (db is None) == (feed is None):
        raise InputError("give either --db or --feed")
    folder = MainFolder(out)
    manifest = load_manifest(folder.manifest)
    if not manifest["views"]:
        raise InputError(f"{folder.manifest}: no anonymize run here (run `scanvan-sfm anonymize` first)")
    scene = read_scene(scene_path, structure=False)
    _protect_sources(folder, manifest, scene, scene_path, dry_run)
    with_landmarks = cache(partial(read_scene, scene_path))  # read once, when propagating or registering
    run = ApplyRun(datetime.now(UTC).strftime("apply-%Y%m%dT%H%M%S.%fZ"))
    store = ReportStore(db) if db is not None else None
    wanted = _from_store(store) if store is not None else _from_feed(feed, scene)
    ledger_path = folder.reports_dir / "applied.json"
    ledger = _read_ledger(ledger_path)
    applied = ledger["reports"]
    # a store decides what stays in; a feed only adds
    run.undone = [k for k in applied if store is not None and k.startswith("report-") and k not in wanted]
    for key, report in wanted.items():
        if key in applied:
            continue
        reason = _unusable(scene, manifest, report)
        if reason:
            run.skipped[key] = reason
            continue
        regions = _regions(with_landmarks, report, propagate_reports)
        run.propagated += len(regions) - 1
        applied_entry = {"report_id": report.report_id, "category": report.category.value, "view_id": report.view_id,
                         "polygon": report.polygon, "run": run.run_id, "regions": [r.as_dict() for r in regions],
                         "layer": "manual" if report.category is Category.blur_missing else "excess"}
        applied[key] = applied_entry
        run.applied.append(key)
    touched = {k: {r["view_id"] for r in applied[k]["regions"]} for k in run.applied + run.undone}
    affected = set().union(*touched.values())
    undone = {key: applied.pop(key) for key in run.undone}
    if not affected:
        run.seconds = time.perf_counter() - started
        return run
    settings = Settings.from_json(manifest["settings"])
    cameras = CameraMasks(settings.camera_mask) if settings.camera_mask else None
    keys = output_keys({int(k): e["source"] for k, e in manifest["views"].items()})
    for view_id in sorted(affected):
        run.changes.append(_update_view(folder, manifest, keys[view_id], view_id, applied, settings, cameras,
                                        dry_run))
    _retry_failed(run, applied, undone, touched)
    if not dry_run:
        _save(folder, manifest, ledger, with_landmarks(), run, ledger_path, store, keys, touched)
    run.seconds = time.perf_counter() - started
    return run


def _protect_sources(folder: MainFolder, manifest: dict, scene: SfMData, scene_path: Path, dry_run: bool) -> None:
    """No write may touch the originals (every view's, and the manifest's) or land among them;
    temp files of a killed apply go."""
    root = images_root(scene, scene_path, manifest.get("images_root"))
    sources = [scene.image_path(view, root) for view in scene.views.values()]
    sources += [e["source_path"] for e in manifest["views"].values() if e.get("source_path")]
    roots = [root]
    guard.protect(sources, roots).check(folder.anonymization)
    if not dry_run:
        remove_parts(folder.anonymization)


def _read_ledger(path: Path) -> dict:
    if not path.is_file():
        return {"reports": {}}
    try:
        ledger = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(ledger.get("reports"), dict):
        raise InputError(f"{path}: reports: expected an object")
    return ledger


def _retry_failed(run: ApplyRun, applied: dict, undone: dict, touched: dict[str, set[int]]) -> None:
    """Reports that touch a view that failed are left for the next apply: those being added are
    not recorded as applied, those being taken out stay recorded (the next apply takes them out)."""
    failed = {c.view_id: c.error for c in run.failed}
    for key in [k for k in run.applied if touched[k] & failed.keys()]:
        view = min(touched[key] & failed.keys())
        del applied[key]
        run.applied.remove(key)
        run.skipped[key] = f"view {view} failed ({failed[view]}); the next apply tries again"
    for key in [k for k in run.undone if touched[k] & failed.keys()]:
        applied[key] = undone[key]
        run.undone.remove(key)


def _from_store(store: ReportStore) -> dict[str, Wanted]:
    return {f"report-{r.id}": Wanted(f"report-{r.id}", r.id, r.viewpoint_id, r.category,
                                     [[v.pitch, v.yaw] for v in r.polygon]) for r in store.list(Status.accepted)}


def _from_feed(feed: Path, scene: SfMData) -> dict[str, Wanted]:
    wanted = {}
    for report, digest in feed_reports(feed, scene):
        key = f"feed-{digest[:16]}"
        corners = [[v.pitch, v.yaw] for v in report.polygon]
        wanted[key] = Wanted(key, None, report.viewpoint_id, report.category, corners)
    return wanted


def _unusable(scene: SfMData, manifest: dict, report: Wanted) -> str:
    view = scene.views.get(report.view_id)
    if view is None or not scene.is_reconstructed(view):
        return f"view {report.view_id} is not a reconstructed view of the scene"
    if manifest["views"].get(str(report.view_id), {}).get("status") != "done":
        return f"view {report.view_id} has no anonymized image (run anonymize)"
    if not isinstance(scene.intrinsics[view.id_intrinsic], Spherical) or view.width != 2 * view.height:
        return f"view {report.view_id} is not an equirectangular panorama"
    try:
        placeable_cap(report.polygon)
    except InputError as exc:
        return str(exc)
    return ""


def _regions(with_landmarks: Callable[[], SfMData], report: Wanted, propagate_reports: bool) -> list[Region]:
    """The report's own region first, then the ones carried to other views (``blur_missing``
    only: releasing masks elsewhere on the strength of one report would risk un-hiding people)."""
    regions = [Region(report.view_id, "report", angles=report.polygon)]
    if propagate_reports and report.category is Category.blur_missing:
        scene = with_landmarks()
        view = scene.views[report.view_id]
        inside = rasterize(report.polygon, view.width, view.height)
        regions += propagate(scene, report.view_id, np.asarray(report.polygon), inside).regions
    return regions


def _update_view(folder: MainFolder, manifest: dict, key: str, view_id: int, applied: dict, settings: Settings,
                 cameras: CameraMasks | None, dry_run: bool) -> ViewChange:
    """Render the view's layers from the applied reports; re-fill it from the original when its
    mask changes, or when its published image was filled with another mask (an interrupted run)."""
    entry = manifest["views"][str(view_id)]
    reports = sorted(k for k, a in applied.items() if any(r["view_id"] == view_id for r in a["regions"]))
    try:
        current = read_mask(folder.mask(key))
        height, width = current.shape
        layers = {name: render([r for a in applied.values() if a["layer"] == name
                                for r in a["regions"] if r["view_id"] == view_id], width, height, width == 2 * height)
                  for name in LAYERS}
        automatic = read_automatic(folder, key, current)
        final = combine(automatic, layers["manual"], layers["excess"])
        stale = sha256_file(folder.mask(key)) != entry.get("mask_sha256")
        change = ViewChange(view_id, reports, float(current.mean()), float(final.mean()),
                            stale or not np.array_equal(final, current))
        if dry_run:
            return change
        write_layers(folder, key, automatic, layers)
        if change.refilled:
            _refill(folder, entry, key, final, settings, cameras)
            entry["masked_share"] = change.masked_after
        prune_layers(folder, key, layers)
        entry["reports"] = reports
        return change
    except EXPECTED_ERRORS as exc:
        return ViewChange(view_id, reports, 0.0, 0.0, False, reason(exc))


def _refill(folder: MainFolder, entry: dict, key: str, mask: np.ndarray, settings: Settings,
            cameras: CameraMasks | None) -> None:
    """Publish the view again from its original with ``mask``."""
    source = Path(entry["source_path"])
    if sha256_file(source) != entry["source_sha256"]:
        raise InputError(f"{source}: the original changed since anonymize ran (rerun anonymize)")
    picture = read_image(source)
    camera = cameras(picture.size) if cameras else None
    paths, entry["mask_sha256"] = publish(folder, key, entry["source"], picture, mask, settings, camera)
    entry["outputs"] |= {name: str(path.relative_to(folder.anonymization)) for name, path in paths.items()}


def _audit_line(folder: MainFolder, run: ApplyRun, change: ViewChange, key: str, changed_by: list[str]) -> bytes:
    line = {"run": run.run_id, "at": datetime.now(UTC).isoformat(timespec="seconds"), "view_id": change.view_id,
            "reports": change.reports, "added": [k for k in changed_by if k in run.applied],
            "undone": [k for k in changed_by if k in run.undone], "refilled": change.refilled,
            "masks": {name: str(folder.mask_layer(key, name).relative_to(folder.anonymization))
                      for name in ("automatic", *LAYERS) if folder.mask_layer(key, name).is_file()}
            | {"mask": str(folder.mask(key).relative_to(folder.anonymization))},
            "masked_before": change.masked_before, "masked_after": change.masked_after}
    return orjson.dumps(line) + b"\n"


def _save(folder: MainFolder, manifest: dict, ledger: dict, scene: SfMData, run: ApplyRun, ledger_path: Path,
          store: ReportStore | None, keys: dict[int, str], touched: dict[str, set[int]]) -> None:
    """Manifest, registered scene, store and audit, then the ledger last: until the ledger is
    written, the next apply does this run again (see the module docstring)."""
    manifest.setdefault("apply_runs", []).append(run.run_id)
    write_manifest(folder.manifest, manifest)
    outputs = {int(k): e["outputs"]["output"] for k, e in manifest["views"].items() if e.get("status") == "done"}
    register(scene, outputs, folder)
    if store is not None:
        store.mark_applied([ledger["reports"][k]["report_id"] for k in run.applied], run.run_id)
        store.mark_applied([int(k.split("-")[1]) for k in run.undone], None)
    lines = [_audit_line(folder, run, c, keys[c.view_id], [k for k, views in touched.items() if c.view_id in views])
             for c in run.changes if not c.error]
    audit = folder.reports_dir / "audit.jsonl"
    earlier = audit.read_bytes() if audit.is_file() else b""
    with atomic_output(audit) as f:  # rewritten whole: a full disk or a kill never leaves half a line
        f.write(earlier + b"".join(lines))
    ledger.setdefault("runs", []).append({"run": run.run_id, "applied": run.applied, "undone": run.undone})
    with atomic_output(ledger_path) as f:
        f.write(orjson.dumps(ledger, option=orjson.OPT_INDENT_2))
