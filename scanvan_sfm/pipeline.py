"""``scanvan-sfm anonymize``: the scene-driven pipeline, one view at a time in worker processes
(``runner.LocalPool``) or on a Dask cluster (``cluster.DaskCluster``).

Orchestration only: per reconstructed view a worker loads the image, runs the core
(``view.anonymize_frame``: segment → mask → report layers → fill → camera blur → thumbnail) and
saves the results (``dataset``). Every output is written atomically, and the manifest after each
view, so a killed run resumes where it stopped and a rerun skips views whose source and settings
are unchanged and whose published image was filled with the mask that is there now (the manifest
keeps that mask's digest). No output may land on a source image or among them (``guard``). The
anonymized images are then registered into ``sfm_data_anonymized.json`` and ``.bin``, replaced
as a pair, and the review page of every view is written (``review``). Only this process writes
the manifest, the registered scene and the review page, whichever workers run the views.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import auto_mask, guard, review
from .atomic import remove, remove_parts
from .camera_blur import CameraMasks
from .dataset import Dataset, Manifest, ViewEntry, sha256_file
from .errors import InputError
from .failures import EXPECTED_ERRORS, reason
from .images import read_image
from .masks import LAYERS
from .runner import LocalPool, Outcome, Pool, Setup
from .settings import Settings
from .sfm import SfMData, read_scene
from .sfm.io import images_root
from .view import anonymize_frame

STAGES = ("decode", "segment", "mask", "fill", "camera blur", "thumbnail", "encode")


@dataclass
class Task:
    view_id: int
    source: str          # absolute path of the original image
    rel: str             # the view's image path: the output names derive from it
    key: str             # output name without extension
    size: tuple[int, int]


@dataclass
class ViewDone:
    """What a worker sends back for a finished view."""

    outputs: dict[str, str]
    masked: float
    detected: float   # the share of the detector's own mask
    mask_sha256: str
    seconds: dict[str, float]
    peak_rss_mb: float
    jpeg_whole: str | None = None   # why a JPEG output was encoded whole, not block by block


def peak_rss_mb() -> float:
    """This process's peak resident memory."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _release_free_memory() -> None:
    """Give freed heap memory back to the system (glibc); a no-op elsewhere."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ------------------------------------------------------------------------------- worker side

class ViewWorker:
    """A worker's state: the settings, the output folder and the model, loaded once."""

    def __init__(self, settings: Settings, out: str, sources: guard.SourceGuard):
        from .segment import get_segmenter
        guard.install(sources)
        self.settings, self.dataset, self.sources = settings, Dataset(out), sources
        self.error = ""
        try:
            self.segmenter = get_segmenter(settings.model, Path(settings.model_dir) if settings.model_dir else None,
                                           native_log=self.dataset.anonymization / "workers.log",
                                           classes=settings.classes, silhouettes=settings.silhouettes)
            self.cameras = CameraMasks(settings.camera_mask, settings.camera_look) if settings.camera_mask else None
        except EXPECTED_ERRORS as exc:  # told by every view instead of breaking the pool
            self.error = f"the worker could not start: {reason(exc)}"

    def process(self, task: Task) -> ViewDone:
        """Load → core → save, timing each stage."""
        if self.error:
            raise InputError(self.error)
        guard.install(self.sources)  # again: a Dask worker may serve other runs in between
        if str(task.view_id) in os.environ.get("SCANVAN_TEST_KILL_VIEWS", "").split(","):
            os._exit(137)  # test-only: a worker that dies on this view (see tests/test_safety.py)
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[stage] = seconds.get(stage, 0.0) + now - clock
            if stage == "segment":  # the detector's scratch: the fill's arrays come on top of what is left
                _release_free_memory()
            clock = time.perf_counter()

        picture = read_image(task.source)
        if picture.size != task.size:
            raise InputError(f"{task.source}: image is {picture.size[0]}×{picture.size[1]}, "
                             f"the scene says {task.size[0]}×{task.size[1]}")
        lap("decode")
        camera = self.cameras.for_view(picture.pixels) if self.cameras else None
        layers = self.dataset.load_layers(task.key, LAYERS)
        done = anonymize_frame(picture.pixels, self.segmenter, mask_mode=self.settings.mask_mode,
                               guarded=self.settings.guarded, fill_mode=self.settings.fill, camera=camera,
                               layers=layers, lap=lap)
        paths = self.dataset.save_segmentation(task.key, done.segmented.probmaps, {
            "view_id": task.view_id, "image": task.rel, "model": self.segmenter.name,
            "detections": [d.as_dict() for d in done.segmented.segmentation.detections]})
        self.dataset.keep_automatic(task.key, done.automatic, layers)
        published, mask_sha256, jpeg_whole = self.dataset.save_outputs(
            task.key, task.rel, picture, done.mask, done.rendered, self.settings.feature_masks,
            self.settings.out_format)
        lap("encode")
        outputs = {name: self.dataset.relative(path) for name, path in (paths | published).items()}
        return ViewDone(outputs, float(done.mask.mean()), float(done.automatic.mean()), mask_sha256, seconds,
                        peak_rss_mb(), jpeg_whole)


# --------------------------------------------------------------------------------- main side

@dataclass
class WorkerShare:
    """What one Dask worker did, for the summary."""

    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    peak_mb: float = 0.0


@dataclass
class Run:
    """What ``anonymize`` did, for the summary."""

    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)       # unchanged since the last run
    failed: dict[int, str] = field(default_factory=dict)
    unreconstructed: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    masked: list[float] = field(default_factory=list)
    jpeg_whole: Counter[str] = field(default_factory=Counter)  # views whose JPEG was encoded whole, by reason
    worker_peak_mb: float = 0.0
    workers: dict[str, WorkerShare] = field(default_factory=dict)   # by Dask worker ("": local processes)
    first_done: float | None = None   # seconds from the start to the first finished view
    scene_json: Path | None = None
    scene_bin: Path | None = None
    review: Path | None = None
    camera_mask: auto_mask.AutoMask | None = None   # what --camera-mask auto found
    started: float = field(default_factory=time.perf_counter)
    wall: float = 0.0


def anonymize(scene_path: Path, out: Path, settings: Settings, *, images_root_dir: Path | None = None,
              all_views: bool = False, force: bool = False, workers: int | None = None,
              pool: Pool | None = None, relative_root: bool = False, progress=None,
              flag_masked_over: float = review.FLAG_MASKED_OVER) -> Run:
    """Run the pipeline over the scene's views; see the module docstring. The views run on
    ``pool`` (default: ``workers`` local processes); ``progress(done, total)`` hears of every
    finished view; ``relative_root``: the registered scene's root_path is relative (see
    ``Dataset.save_registered``); the review page flags the views more masked than
    ``flag_masked_over``."""
    run = Run()
    scene = read_scene(scene_path)
    root = images_root(scene, scene_path, images_root_dir)
    selected = {k: v for k, v in scene.views.items() if all_views or scene.is_reconstructed(v)}
    run.unreconstructed = [k for k in scene.views if k not in selected]
    dataset = Dataset(out)
    dataset.check_root_text(relative_root)
    sources = guard.protect((scene.image_path(view, root) for view in scene.views.values()), [root])
    sources.check(dataset.anonymization)
    dataset.anonymization.mkdir(parents=True, exist_ok=True)
    pool = pool or LocalPool(workers)
    if seen := next((p for v in selected.values() if (p := scene.image_path(v, root)).is_file()), None):
        pool.check_storage(str(seen), dataset.anonymization)  # a source this process sees, there too
    remove_parts(dataset.anonymization)
    settings, run.camera_mask = auto_mask.resolve(settings, scene, selected, root, dataset, workers)
    manifest = dataset.load_manifest()
    manifest.scene, manifest.images_root = str(scene_path), os.path.abspath(root)
    manifest.relative_root = relative_root
    manifest.settings, manifest.settings_digest = settings.model_dump(mode="json"), settings.digest()
    tasks = _tasks(scene, selected, root, manifest, dataset, force, run)
    dataset.save_manifest(manifest)
    if progress:
        progress(0, len(tasks))
    if tasks:
        setup = Setup(ViewWorker, (settings, str(dataset.root), sources), scope=str(dataset.root.absolute()))
        _run_tasks(tasks, setup, dataset, manifest, run, pool, progress)
    outputs = {k: manifest.views[str(k)].outputs["output"] for k in selected
               if str(k) in manifest.views and manifest.views[str(k)].status == "done"}
    run.scene_json, run.scene_bin = dataset.save_registered(scene, outputs, relative_root)
    run.review = dataset.save_review(review.page(manifest, flag_over=flag_masked_over))
    run.wall = time.perf_counter() - run.started
    return run


def _tasks(scene: SfMData, selected: dict, root: Path, manifest: Manifest, dataset: Dataset, force: bool,
           run: Run) -> list[Task]:
    """The views to do; the manifest entries of the others say why not (up to date, failed)."""
    rels = {k: v.image_path.replace("\\", "/") for k, v in selected.items()}
    keys = Dataset.output_keys(rels)
    tasks = []
    for view_id, view in selected.items():
        source = scene.image_path(view, root)
        entry = ViewEntry(source=rels[view_id], source_path=str(source.absolute()))
        previous = manifest.views.get(str(view_id))
        try:
            entry.source_sha256 = sha256_file(source)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            entry.status, entry.reason = "failed", f"{source}: {getattr(exc, 'strerror', None) or exc}"
            manifest.views[str(view_id)] = entry
            run.failed[view_id] = entry.reason
            continue
        if previous and not force and _unchanged(previous, entry, manifest.settings_digest, dataset):
            run.skipped.append(view_id)
            run.masked.append(previous.masked_share or 0.0)
            continue
        entry.outputs = previous.outputs if previous else {}  # removed below if no longer made
        manifest.views[str(view_id)] = entry
        tasks.append(Task(view_id, str(source), rels[view_id], keys[view_id], (view.width, view.height)))
    return tasks


def _unchanged(previous: ViewEntry, entry: ViewEntry, digest: str | None, dataset: Dataset) -> bool:
    outputs = previous.outputs
    return (previous.status == "done" and previous.source_sha256 == entry.source_sha256
            and previous.settings_digest == digest
            and all((dataset.anonymization / p).is_file() for p in outputs.values())
            and previous.mask_sha256 == sha256_file(dataset.anonymization / outputs["mask"]))


def _run_tasks(tasks: list[Task], setup: Setup, dataset: Dataset, manifest: Manifest, run: Run, pool: Pool,
               progress) -> None:
    """The views on the pool; the manifest is saved once per group of outcomes it reports (one
    view locally, the views that ended together on a cluster)."""
    finished = 0

    def record(outcomes: list[Outcome]) -> None:
        nonlocal finished
        finished += len(outcomes)
        for outcome in outcomes:
            _record(outcome, manifest, run, dataset)
        dataset.save_manifest(manifest)
        if progress:
            progress(finished, len(tasks))

    pool.run(tasks, setup, record)


def _record(outcome: Outcome, manifest: Manifest, run: Run, dataset: Dataset) -> None:
    """A view's outcome into its manifest entry and the run's figures."""
    view_id = outcome.item.view_id
    entry = manifest.views[str(view_id)]
    share = run.workers.setdefault(outcome.worker, WorkerShare())
    if not outcome.ok:
        entry.status, entry.reason = "failed", outcome.reason
        run.failed[view_id] = outcome.reason
        share.failed += 1
        return
    done: ViewDone = outcome.value
    share.done += 1
    share.seconds += sum(done.seconds.values())
    share.peak_mb = max(share.peak_mb, done.peak_rss_mb)
    run.worker_peak_mb = max(run.worker_peak_mb, done.peak_rss_mb)
    if done.jpeg_whole:
        run.jpeg_whole[done.jpeg_whole] += 1
    if run.first_done is None:
        run.first_done = time.perf_counter() - run.started
    for stage, seconds in done.seconds.items():
        run.seconds[stage] = run.seconds.get(stage, 0.0) + seconds
    for old in set(entry.outputs.values()) - set(done.outputs.values()):
        remove(dataset.anonymization / old)  # another format's image would keep what a report hid
    entry.status, entry.reason, entry.outputs = "done", None, done.outputs
    entry.masked_share, entry.detected_share, entry.mask_sha256 = done.masked, done.detected, done.mask_sha256
    entry.settings_digest = manifest.settings_digest
    run.done.append(view_id)
    run.masked.append(done.masked)
