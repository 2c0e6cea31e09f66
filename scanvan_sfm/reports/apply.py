"""``scanvan-sfm reports apply``: accepted reports into the mask layers, affected views re-filled.

A consumer of the core: it decides the report layers, and the pipeline's load → core → save
re-fills the views. Masks are the source of truth: each accepted ``blur_missing`` report adds its
polygon to the view's ``manual`` layer (``blur_excess``: to the ``excess`` layer, which releases automatic mask
only), optionally carried to the other views that see the same landmarks. Affected views are
re-filled from their originals, the scene is registered again (with the kind of root_path
anonymize chose, as the manifest records it) and the manifest updated.

``anonymization/reports/applied.json`` lists every applied report with the regions it put into
each view, so the layers can always be rebuilt: a report rejected after it was applied is taken
out again on the next apply. ``audit.jsonl`` gets a line per changed view. The affected views are
re-filled in this process, or on a Dask cluster (``--scheduler``) in the same way: each worker
gets the view's key, manifest entry and report regions, and sends back the change and the entry.

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
from ..images import read_image
from ..masks import LAYERS, publishable
from ..runner import InProcess, Outcome, Pool, Setup
from ..settings import Settings
from ..sfm import SfMData, read_scene
from ..sfm.io import images_root
from ..sfm.models import Pinhole, Spherical
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
    worker: str = ""     # the Dask worker that did it (none in this process)


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
    sources: guard.SourceGuard


@dataclass
class Refill:
    """One affected view, as a worker gets it."""

    view_id: int
    key: str
    entry: ViewEntry                      # a copy of its manifest entry
    regions: dict[str, list[Region]]      # layer → the applied reports' regions in this view
    reports: list[str]                    # the applied reports with a region in this view
    intrinsic: Pinhole | Spherical        # its camera, which draws the regions


def apply_reports(scene_path: Path, out: Path, *, db: Path | None = None, feed: Path | None = None,
                  propagate_reports: bool = False, dry_run: bool = False, pool: Pool | None = None,
                  flag_masked_over: float = review.FLAG_MASKED_OVER) -> ApplyRun:
    """See the module docstring; the views are re-filled on ``pool`` (default, and for a dry run:
    this process); the review page flags the views more masked than ``flag_masked_over``."""
    started = time.perf_counter()
    context = _open(scene_path, out, db, feed, dry_run)
    run = ApplyRun(datetime.now(UTC).strftime("apply-%Y%m%dT%H%M%S.%fZ"))
    undone = _plan(context, run, feed, propagate_reports)
    affected = set().union(*run.touched.values())
    if affected:
        settings = Settings.checked(context.manifest.settings or {}, f"{context.dataset.manifest_path}: settings")
        keys = Dataset.output_keys({int(k): e.source for k, e in context.manifest.views.items()})
        run.changes = [ViewChange(v, [], 0.0, 0.0, False, "not in the manifest") for v in affected if v not in keys]
        refills = [_refill_of(context, keys[v], v) for v in sorted(affected) if v in keys]
        _update_views(context, run, refills, settings, dry_run, InProcess() if dry_run or pool is None else pool)
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
    sources = _protect_sources(dataset, manifest, scene, scene_path, dry_run)
    return Context(dataset, manifest, dataset.load_ledger(), scene, cache(partial(read_scene, scene_path)),
                   ReportStore(db) if db is not None else None, sources)


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


def _protect_sources(dataset: Dataset, manifest: Manifest, scene: SfMData, scene_path: Path,
                     dry_run: bool) -> guard.SourceGuard:
    """No write may touch the originals (every view's, and the manifest's) or land among them;
    temp files of a killed apply go. Returns the guard, for the workers."""
    root = images_root(scene, scene_path, manifest.images_root)
    sources = [str(scene.image_path(view, root)) for view in scene.views.values()]
    sources += [e.source_path for e in manifest.views.values() if e.source_path]
    protected = guard.protect(sources, [root])
    protected.check(dataset.anonymization)
    if not dry_run:
        remove_parts(dataset.anonymization)
    return protected


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


def _refill_of(context: Context, key: str, view_id: int) -> Refill:
    applied = context.ledger.reports
    regions = {name: [r for a in applied.values() if a.layer == name for r in a.regions_in(view_id)]
               for name in LAYERS}
    return Refill(view_id, key, context.manifest.views[str(view_id)].model_copy(deep=True), regions,
                  sorted(k for k, a in applied.items() if a.regions_in(view_id)),
                  context.scene.intrinsics[context.scene.views[view_id].id_intrinsic])


def _update_views(context: Context, run: ApplyRun, refills: list[Refill], settings: Settings, dry_run: bool,
                  pool: Pool) -> None:
    """The views on the pool; each change, and its entry, into the run and the manifest."""
    if refills:
        pool.check_storage(refills[0].entry.source_path, context.dataset.anonymization)

    def record(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            refill: Refill = outcome.item
            if outcome.ok:
                change, context.manifest.views[str(refill.view_id)] = outcome.value
            else:
                change = ViewChange(refill.view_id, refill.reports, 0.0, 0.0, False, outcome.reason)
            change.worker = outcome.worker
            run.changes.append(change)

    setup = Setup(ViewRefiller, (settings, str(context.dataset.root), context.sources, dry_run),
                  scope=str(context.dataset.root.absolute()))
    pool.run(refills, setup, record)
    run.changes.sort(key=lambda change: change.view_id)


class ViewRefiller:
    """A worker's state for apply: the settings, the output folder and the camera masks, loaded once."""

    def __init__(self, settings: Settings, out: str, sources: guard.SourceGuard, dry_run: bool):
        self.settings, self.dataset, self.sources, self.dry_run = settings, Dataset(out), sources, dry_run
        self.cameras = CameraMasks(settings.camera_mask, settings.camera_look) if settings.camera_mask else None

    def process(self, refill: Refill) -> tuple[ViewChange, ViewEntry]:
        """Draw the view's layers from the report regions; re-fill it from the original when its
        mask changes, or when its published image was filled with another mask (an interrupted
        run). Order: kept automatic mask and layers → mask and images → empty layers removed."""
        guard.install(self.sources)  # a Dask worker may serve other runs in between
        dataset, key, entry = self.dataset, refill.key, refill.entry
        current = dataset.load_mask(key)
        layers = _layers(refill.regions, refill.intrinsic, current.shape[1], current.shape[0])
        kept = dataset.load_layers(key, ["automatic"])
        automatic = kept.get("automatic", current)
        final = publishable(automatic, layers)
        stale = sha256_file(dataset.mask(key)) != entry.mask_sha256
        change = ViewChange(refill.view_id, refill.reports, float(current.mean()), float(final.mean()),
                            stale or not np.array_equal(final, current))
        if self.dry_run:
            return change, entry
        if layers:
            dataset.save_layers(key, {"automatic": automatic} | layers)
        if change.refilled:
            self._refill(entry, key, final)
            entry.masked_share = change.masked_after
        dataset.remove_layers(key, [n for n in LAYERS if n not in layers] + ([] if layers else ["automatic"]))
        entry.reports = refill.reports
        return change, entry

    def _refill(self, entry: ViewEntry, key: str, mask: np.ndarray) -> None:
        """Publish the view again from its original with ``mask``: load → core → save."""
        source, settings = Path(entry.source_path), self.settings
        if sha256_file(source) != entry.source_sha256:
            raise InputError(f"{source}: the original changed since anonymize ran (rerun anonymize)")
        picture = read_image(source)
        camera = self.cameras.for_view(picture.pixels) if self.cameras else None
        rendered = render_view(picture.pixels, mask, settings.fill, camera)
        paths, entry.mask_sha256, _ = self.dataset.save_outputs(key, entry.source, picture, mask, rendered,
                                                                settings.feature_masks, settings.out_format)
        entry.outputs |= {name: self.dataset.relative(path) for name, path in paths.items()}


def _layers(regions: dict[str, list[Region]], intrinsic: Pinhole | Spherical, width: int,
            height: int) -> dict[str, np.ndarray]:
    """The view's layers drawn from the report regions through the view's camera; empty ones left out."""
    layers = {name: render(regions[name], intrinsic, width, height) for name in LAYERS}
    return {name: layer for name, layer in layers.items() if layer.any()}


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
