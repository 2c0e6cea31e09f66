"""``scanvan-sfm reports apply``: accepted reports into the mask layers, affected views re-filled.

A consumer of the core: it decides the report layers, and the pipeline's load → core → save
re-fills the views. Masks are the source of truth: each accepted ``blur_missing`` report adds its
polygon to the view's ``manual`` layer (``blur_excess``: to the ``excess`` layer, which releases automatic mask
only), optionally carried to the other views that see the same landmarks. Affected views are
re-filled from their originals, the scene is registered again (with the kind of root_path
anonymize chose, as the manifest records it) and the manifest updated.

``anonymization/reports/applied.json`` lists every applied report with the regions it put into
each view, so the layers can always be rebuilt: a report rejected after it was applied is taken
out again on the next apply. ``audit.jsonl`` gets a line per changed view.

An interrupted apply is finished by the next one: the ledger is written last, so its reports are
applied again; a view is re-filled whenever its mask differs from the one its published image was
filled with (the manifest keeps that mask's digest, written after the images); the manifest, the
registered scene and the store are brought up to date before the ledger. The review page comes
after it, on every apply (one killed before it is mended by the next, which has nothing else to do).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path

import numpy as np

from .. import guard, review
from ..atomic import remove_parts
from ..camera_blur import CameraMasks
from ..dataset import AppliedReport, Dataset, Ledger, Manifest, Region, ViewEntry, sha256_file
from ..errors import InputError
from ..failures import EXPECTED_ERRORS, reason
from ..images import read_image
from ..masks import LAYERS, publishable
from ..settings import Settings
from ..sfm import SfMData, read_scene
from ..sfm.io import images_root
from ..view import render as render_view
from .feed import feed_reports
from .layers import check_drawable, polygon_mask, render
from .models import Category, Status
from .propagate import propagate
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
    touched: dict[str, set[int]] = field(default_factory=dict)   # report → the views it changes
    review: Path | None = None

    @property
    def failed(self) -> list[ViewChange]:
        return [c for c in self.changes if c.error]


@dataclass
class Context:
    """What one apply works on."""

    dataset: Dataset
    manifest: Manifest
    ledger: Ledger
    scene: SfMData
    with_landmarks: Callable[[], SfMData]   # the scene with its landmarks, read once when needed
    store: ReportStore | None


def apply_reports(scene_path: Path, out: Path, *, db: Path | None = None, feed: Path | None = None,
                  propagate_reports: bool = False, dry_run: bool = False,
                  flag_masked_over: float = review.FLAG_MASKED_OVER) -> ApplyRun:
    started = time.perf_counter()
    context = _open(scene_path, out, db, feed, dry_run)
    run = ApplyRun(datetime.now(UTC).strftime("apply-%Y%m%dT%H%M%S.%fZ"))
    undone = _plan(context, run, feed, propagate_reports)
    affected = set().union(*run.touched.values())
    if affected:
        settings = Settings.checked(context.manifest.settings or {}, f"{context.dataset.manifest_path}: settings")
        cameras = CameraMasks(settings.camera_mask, settings.camera_look) if settings.camera_mask else None
        keys = Dataset.output_keys({int(k): e.source for k, e in context.manifest.views.items()})
        for view_id in sorted(affected):
            run.changes.append(_update_view(context, keys[view_id], view_id, settings, cameras, dry_run)
                               if view_id in keys else ViewChange(view_id, [], 0.0, 0.0, False, "not in the manifest"))
        _retry_failed(run, context.ledger.reports, undone)
        if not dry_run:
            _save(context, run, keys)
    if not dry_run:
        failures = {c.view_id: c.error for c in run.failed}
        run.review = context.dataset.save_review(review.page(context.manifest, failures, flag_masked_over))
    run.seconds = time.perf_counter() - started
    return run


def _open(scene_path: Path, out: Path, db: Path | None, feed: Path | None, dry_run: bool) -> Context:
    if (db is None) == (feed is None):
        raise InputError("give either --db or --feed")
    dataset = Dataset(out)
    manifest = dataset.load_manifest()
    if not manifest.views:
        raise InputError(f"{dataset.manifest_path}: no anonymize run here (run `scanvan-sfm anonymize` first)")
    dataset.check_root_text(manifest.relative_root)
    scene = read_scene(scene_path, structure=False)
    _protect_sources(dataset, manifest, scene, scene_path, dry_run)
    return Context(dataset, manifest, dataset.load_ledger(), scene,
                   cache(partial(read_scene, scene_path)), ReportStore(db) if db is not None else None)


def _plan(context: Context, run: ApplyRun, feed: Path | None, propagate_reports: bool) -> dict[str, AppliedReport]:
    """Which reports go in (with their regions) and which come out; returns those taken out."""
    applied = context.ledger.reports
    if context.store is not None:
        wanted = _from_store(context.store)
        # a store decides what stays in; a feed only adds
        run.undone = [k for k in applied if k.startswith("report-") and k not in wanted]
    else:
        assert feed is not None  # _open checked that one of the two is given
        wanted = _from_feed(feed, context.scene)
    for key, report in wanted.items():
        if key in applied:
            continue
        if problem := _unusable(context.scene, context.manifest, report):
            run.skipped[key] = problem
            continue
        regions = _regions(context.with_landmarks, report, propagate_reports)
        run.propagated += len(regions) - 1
        applied[key] = AppliedReport(
            report_id=report.report_id, category=report.category.value, view_id=report.view_id,
            polygon=report.polygon, run=run.run_id, regions=regions,
            layer="manual" if report.category is Category.blur_missing else "excess")
        run.applied.append(key)
    run.touched = {k: {r.view_id for r in applied[k].regions} for k in run.applied + run.undone}
    return {key: applied.pop(key) for key in run.undone}


def _protect_sources(dataset: Dataset, manifest: Manifest, scene: SfMData, scene_path: Path, dry_run: bool) -> None:
    """No write may touch the originals (every view's, and the manifest's) or land among them;
    temp files of a killed apply go."""
    root = images_root(scene, scene_path, manifest.images_root)
    sources = [str(scene.image_path(view, root)) for view in scene.views.values()]
    sources += [e.source_path for e in manifest.views.values() if e.source_path]
    guard.protect(sources, [root]).check(dataset.anonymization)
    if not dry_run:
        remove_parts(dataset.anonymization)


def _retry_failed(run: ApplyRun, applied: dict[str, AppliedReport], undone: dict[str, AppliedReport]) -> None:
    """Reports that touch a view that failed are left for the next apply: those being added are
    not recorded as applied, those being taken out stay recorded (the next apply takes them out)."""
    failed = {c.view_id: c.error for c in run.failed}
    for key in [k for k in run.applied if run.touched[k] & failed.keys()]:
        view = min(run.touched[key] & failed.keys())
        del applied[key]
        run.applied.remove(key)
        run.skipped[key] = f"view {view} failed ({failed[view]}); the next apply tries again"
    for key in [k for k in run.undone if run.touched[k] & failed.keys()]:
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


def _unusable(scene: SfMData, manifest: Manifest, report: Wanted) -> str:
    view = scene.views.get(report.view_id)
    if view is None or not scene.is_reconstructed(view):
        return f"view {report.view_id} is not a reconstructed view of the scene"
    entry = manifest.views.get(str(report.view_id))
    if entry is None or entry.status != "done":
        return f"view {report.view_id} has no anonymized image (run anonymize)"
    try:
        check_drawable(scene.intrinsics[view.id_intrinsic], report.polygon, view.width, view.height)
    except InputError as exc:
        return f"view {report.view_id}: {exc}"
    return ""


def _regions(with_landmarks: Callable[[], SfMData], report: Wanted, propagate_reports: bool) -> list[Region]:
    """The report's own region first, then the ones carried to other views (``blur_missing``
    only: releasing masks elsewhere on the strength of one report would risk un-hiding people)."""
    regions = [Region(view_id=report.view_id, kind="report", angles=report.polygon)]
    if propagate_reports and report.category is Category.blur_missing:
        scene = with_landmarks()
        view = scene.views[report.view_id]
        inside = polygon_mask(scene.intrinsics[view.id_intrinsic], report.polygon, view.width, view.height)
        regions += propagate(scene, report.view_id, np.asarray(report.polygon), inside).regions
    return regions


def _layers(applied: dict[str, AppliedReport], scene: SfMData, view_id: int, width: int,
            height: int) -> dict[str, np.ndarray]:
    """The view's layers drawn from the applied reports; empty ones left out."""
    intrinsic = scene.intrinsics[scene.views[view_id].id_intrinsic]
    layers = {name: render([r for a in applied.values() if a.layer == name for r in a.regions_in(view_id)],
                           intrinsic, width, height) for name in LAYERS}
    return {name: layer for name, layer in layers.items() if layer.any()}


def _update_view(context: Context, key: str, view_id: int, settings: Settings, cameras: CameraMasks | None,
                 dry_run: bool) -> ViewChange:
    """Draw the view's layers from the applied reports; re-fill it from the original when its
    mask changes, or when its published image was filled with another mask (an interrupted run).
    Order: kept automatic mask and layers → mask and images → empty layers removed."""
    dataset, entry = context.dataset, context.manifest.views[str(view_id)]
    applied = context.ledger.reports
    reports = sorted(k for k, a in applied.items() if a.regions_in(view_id))
    try:
        current = dataset.load_mask(key)
        layers = _layers(applied, context.scene, view_id, current.shape[1], current.shape[0])
        kept = dataset.load_layers(key, ["automatic"])
        automatic = kept.get("automatic", current)
        final = publishable(automatic, layers)
        stale = sha256_file(dataset.mask(key)) != entry.mask_sha256
        change = ViewChange(view_id, reports, float(current.mean()), float(final.mean()),
                            stale or not np.array_equal(final, current))
        if dry_run:
            return change
        if layers:
            dataset.save_layers(key, {"automatic": automatic} | layers)
        if change.refilled:
            _refill(dataset, entry, key, final, settings, cameras)
            entry.masked_share = change.masked_after
        dataset.remove_layers(key, [n for n in LAYERS if n not in layers] + ([] if layers else ["automatic"]))
        entry.reports = reports
        return change
    except EXPECTED_ERRORS as exc:
        return ViewChange(view_id, reports, 0.0, 0.0, False, reason(exc))


def _refill(dataset: Dataset, entry: ViewEntry, key: str, mask: np.ndarray, settings: Settings,
            cameras: CameraMasks | None) -> None:
    """Publish the view again from its original with ``mask``: load → core → save."""
    source = Path(entry.source_path)
    if sha256_file(source) != entry.source_sha256:
        raise InputError(f"{source}: the original changed since anonymize ran (rerun anonymize)")
    picture = read_image(source)
    camera = cameras.for_view(picture.pixels) if cameras else None
    rendered = render_view(picture.pixels, mask, settings.fill, camera)
    paths, entry.mask_sha256, _ = dataset.save_outputs(key, entry.source, picture, mask, rendered,
                                                    settings.feature_masks, settings.out_format)
    entry.outputs |= {name: dataset.relative(path) for name, path in paths.items()}


def _audit_line(dataset: Dataset, run: ApplyRun, change: ViewChange, key: str) -> dict:
    changed_by = [k for k, views in run.touched.items() if change.view_id in views]
    masks = {name: dataset.relative(dataset.mask_layer(key, name))
             for name in ("automatic", *LAYERS) if dataset.mask_layer(key, name).is_file()}
    return {"run": run.run_id, "at": datetime.now(UTC).isoformat(timespec="seconds"), "view_id": change.view_id,
            "reports": change.reports, "added": [k for k in changed_by if k in run.applied],
            "undone": [k for k in changed_by if k in run.undone], "refilled": change.refilled,
            "masks": masks | {"mask": dataset.relative(dataset.mask(key))},
            "masked_before": change.masked_before, "masked_after": change.masked_after}


def _save(context: Context, run: ApplyRun, keys: dict[int, str]) -> None:
    """Manifest, registered scene, store and audit, then the ledger last: until the ledger is
    written, the next apply does this run again (see the module docstring)."""
    dataset, manifest, ledger = context.dataset, context.manifest, context.ledger
    manifest.apply_runs = [*(manifest.apply_runs or []), run.run_id]
    dataset.save_manifest(manifest)
    outputs = {int(k): e.outputs["output"] for k, e in manifest.views.items() if e.status == "done"}
    dataset.save_registered(context.with_landmarks(), outputs, manifest.relative_root)
    if context.store is not None:
        context.store.mark_applied([int(k.split("-")[1]) for k in run.applied], run.run_id)
        context.store.mark_applied([int(k.split("-")[1]) for k in run.undone], None)
    dataset.append_audit([_audit_line(dataset, run, c, keys[c.view_id]) for c in run.changes if not c.error])
    ledger.runs.append({"run": run.run_id, "applied": run.applied, "undone": run.undone})
    dataset.save_ledger(ledger)
