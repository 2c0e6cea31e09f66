"""``scanvan-sfm anonymize``: the scene-driven pipeline, one view at a time in worker processes.

Per reconstructed view: segment → mask → fill (→ camera blur). Every output is written
atomically, and the manifest after each view, so a killed run resumes where it stopped and a
rerun skips views whose source and settings are unchanged and whose published image was filled
with the mask that is there now (the manifest keeps that mask's digest). No output may land on a
source image or among them (``guard``). A worker that dies (killed, out of memory) costs its
views one retry, one at a time, then they fail alone. The anonymized images are then registered
into ``sfm_data_anonymized.json`` and ``.bin``, replaced as a pair.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import orjson

from . import __version__
from . import guard
from .atomic import atomic_group, atomic_output, remove, remove_parts
from .camera_blur import CameraMasks, camera_blur
from .dataset import MainFolder
from .errors import InputError
from .failures import EXPECTED_ERRORS, reason
from .fill import fill
from .images import Picture, read_image, write_image, write_mask
from .masks import CLASSES, GuardedSettings, probmap_to_uint8, write_feature_mask
from .reports.layers import merge_layers
from .sfm import SfMData, read_scene, write_scene
from .sfm.io import images_root
from .sfm.register import anonymized_scene
from .steps import is_panorama, mask_from_maps, output_suffix, write_segmentation

STAGES = ("decode", "segment", "mask", "fill", "camera blur", "encode")
#: glibc keeps freed memory instead of handing each large image array back to the system and
#: faulting it in again for the next view (a third of the workers' time went to that).
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(256 << 20), "MALLOC_TOP_PAD_": str(64 << 20)}


@dataclass(frozen=True)
class Settings:
    """Everything that decides a view's outputs: a change redoes the view."""

    model: str = "nanodet"
    model_dir: str | None = None
    fill: str = "fast"
    out_format: str = "same"          # or jpg, png, tif: the filled images' format
    mask_mode: str = "guarded"
    camera_mask: str | None = None
    camera_mask_sha256: str | None = None
    feature_masks: tuple[str, ...] = ()
    guarded: GuardedSettings = GuardedSettings()

    @classmethod
    def from_json(cls, data: dict) -> Settings:
        """The settings as the manifest records them."""
        return cls(**(data | {"feature_masks": tuple(data.get("feature_masks", ())),
                              "guarded": GuardedSettings(**{k: tuple(v) if isinstance(v, list) else v
                                                            for k, v in data.get("guarded", {}).items()})}))

    def digest(self) -> str:
        data = asdict(self) | {"version": __version__}
        data.pop("model_dir")
        data.pop("camera_mask")
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass
class Task:
    view_id: int
    source: str          # absolute path of the original image
    rel: str             # the view's image path: the output names derive from it
    key: str             # output name without extension
    size: tuple[int, int]


@dataclass
class Result:
    view_id: int
    ok: bool
    reason: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    masked: float = 0.0
    mask_sha256: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_keys(rels: dict[int, str]) -> dict[int, str]:
    """Output name (no extension) per view: the image path without its extension, sub-folders
    kept, never leaving the output folders (``MainFolder.key``); where two paths would share one
    (``a.jpg``, ``a.png``), the extension stays in, and where they still would, the view id."""
    stems = {view: MainFolder.key(rel) for view, rel in rels.items()}
    counts = Counter(stems.values())
    keys = {view: stems[view] if counts[stems[view]] == 1 else guard.safe_relative(rels[view]) for view in rels}
    while clashing := [view for view, key in keys.items() if Counter(keys.values())[key] > 1]:
        for view in clashing:
            keys[view] = f"{keys[view]}-view{view}"
    return keys


# ------------------------------------------------------------------------------- worker side

_worker: dict = {}


def _init_worker(settings: Settings, out: str, sources: guard.SourceGuard) -> None:
    """Load the model once per worker; a failure is told by every view instead of breaking the pool."""
    from .segment import get_segmenter
    guard.install(sources)
    _worker["settings"] = settings
    _worker["folder"] = MainFolder(out)
    try:
        _worker["segmenter"] = get_segmenter(settings.model, Path(settings.model_dir) if settings.model_dir else None,
                                             native_log=_worker["folder"].anonymization / "workers.log")
        _worker["cameras"] = CameraMasks(settings.camera_mask) if settings.camera_mask else None
    except EXPECTED_ERRORS as exc:
        _worker["error"] = f"the worker could not start: {reason(exc)}"


def publish(folder: MainFolder, key: str, rel: str, picture: Picture, mask, settings: Settings, camera,
            lap=lambda stage: None) -> tuple[dict[str, Path], str]:
    """Write a view's mask (and feature masks), fill the original with it (and blur the camera
    area), write the published images; returns the paths written and the mask file's digest,
    which the manifest records once the images are written too."""
    paths = {"mask": folder.mask(key)}
    write_mask(paths["mask"], mask)
    for layout in settings.feature_masks:
        paths[f"feature_mask_{layout}"] = write_feature_mask(layout, mask, folder.feature_masks(layout), rel)
    lap("mask")
    panorama = is_panorama(picture.size)
    filled = fill(picture.pixels, mask, settings.fill, wrap=panorama, workers=1)
    lap("fill")
    suffix = output_suffix(rel, settings.out_format)
    paths["blur"] = paths["output"] = folder.blurred(key, suffix)  # the output is what is published
    write_image(paths["blur"], Picture(filled, picture.metadata))
    lap("encode")
    if camera is not None:
        blurred = camera_blur(filled, camera)
        lap("camera blur")
        paths["gaussian_blur"] = paths["output"] = folder.camera_blurred(key, suffix)
        write_image(paths["gaussian_blur"], Picture(blurred, picture.metadata))
        lap("encode")
    return paths, sha256_file(paths["mask"])


def process_view(task: Task) -> Result:
    """One view through every step; bad input fails this view only."""
    if "error" in _worker:
        return Result(task.view_id, False, reason=_worker["error"])
    if str(task.view_id) in os.environ.get("SCANVAN_TEST_KILL_VIEWS", "").split(","):
        os._exit(137)  # test-only: a worker that dies on this view (see tests/test_safety.py)
    settings, folder, segmenter = _worker["settings"], _worker["folder"], _worker["segmenter"]
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now

    try:
        picture = read_image(task.source)
        if picture.size != task.size:
            raise InputError(f"{task.source}: image is {picture.size[0]}×{picture.size[1]}, "
                             f"the scene says {task.size[0]}×{task.size[1]}")
        lap("decode")
        panorama = is_panorama(picture.size)
        camera = _worker["cameras"](picture.size) if _worker["cameras"] else None
        segmentation = segmenter.segment(picture.pixels, panorama, camera)
        _release_free_memory()  # the detector's scratch: the fill's arrays come on top of what is left
        lap("segment")
        key = task.key
        paths = write_segmentation(folder, key, segmentation, {"view_id": task.view_id, "image": task.rel,
                                                               "model": segmenter.name})
        people, vehicles = (probmap_to_uint8(segmentation.maps[c]) for c in CLASSES)
        automatic = mask_from_maps(settings.mask_mode, people, vehicles, (picture.size[1], picture.size[0]),
                                   settings.guarded, camera)
        mask = merge_layers(folder, key, automatic)
        published, mask_sha256 = publish(folder, key, task.rel, picture, mask, settings, camera, lap)
        outputs = {name: str(path.relative_to(folder.anonymization)) for name, path in (paths | published).items()}
        return Result(task.view_id, True, outputs=outputs, masked=float(mask.mean()), mask_sha256=mask_sha256,
                      seconds=seconds, peak_rss_mb=peak_rss_mb())
    except EXPECTED_ERRORS as exc:
        return Result(task.view_id, False, reason=reason(exc), seconds=seconds, peak_rss_mb=peak_rss_mb())


# --------------------------------------------------------------------------------- main side

@dataclass
class Run:
    """What ``anonymize`` did, for the summary."""

    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)       # unchanged since the last run
    failed: dict[int, str] = field(default_factory=dict)
    unreconstructed: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    masked: list[float] = field(default_factory=list)
    worker_peak_mb: float = 0.0
    first_done: float | None = None   # seconds from the start to the first finished view
    scene_json: Path | None = None
    scene_bin: Path | None = None
    started: float = field(default_factory=time.perf_counter)
    wall: float = 0.0


def load_manifest(path: Path) -> dict:
    if not path.is_file():
        return {"views": {}}
    try:
        manifest = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return {"views": {}}  # written atomically, so only a hand-edit breaks it: start afresh
    return manifest if isinstance(manifest.get("views"), dict) else {"views": {}}


def anonymize(scene_path: Path, out: Path, settings: Settings, *, images_root_dir: Path | None = None,
              all_views: bool = False, force: bool = False, workers: int | None = None,
              progress=None) -> Run:
    """Run the pipeline over the scene's views; see the module docstring. ``progress(done, total)``
    hears of every finished view."""
    run = Run()
    scene = read_scene(scene_path)
    root = images_root(scene, scene_path, images_root_dir)
    selected = {k: v for k, v in scene.views.items() if all_views or scene.is_reconstructed(v)}
    run.unreconstructed = [k for k in scene.views if k not in selected]
    rels = {k: v.image_path.replace("\\", "/") for k, v in selected.items()}
    keys = output_keys(rels)
    folder = MainFolder(out)
    sources = guard.protect((scene.image_path(view, root) for view in scene.views.values()), [root])
    sources.check(folder.anonymization)
    folder.anonymization.mkdir(parents=True, exist_ok=True)
    remove_parts(folder.anonymization)
    manifest = load_manifest(folder.manifest)
    digest = settings.digest()
    manifest.update({"scene": str(scene_path), "images_root": str(root), "settings": _settings_json(settings),
                     "settings_digest": digest})
    entries = manifest["views"]
    tasks = []
    for view_id, view in selected.items():
        source = scene.image_path(view, root)
        entry = {"source": rels[view_id], "source_path": str(source.absolute())}
        try:
            entry["source_sha256"] = sha256_file(source)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            entry |= {"status": "failed", "reason": f"{source}: {getattr(exc, 'strerror', None) or exc}"}
            entries[str(view_id)] = entry
            run.failed[view_id] = entry["reason"]
            continue
        previous = entries.get(str(view_id), {})
        if not force and _unchanged(previous, entry, digest, folder):
            run.skipped.append(view_id)
            run.masked.append(previous.get("masked_share", 0.0))
            continue
        kept = {"outputs": previous["outputs"]} if "outputs" in previous else {}  # removed if no longer made
        entries[str(view_id)] = entry | kept | {"status": "pending"}
        tasks.append(Task(view_id, str(source), rels[view_id], keys[view_id], (view.width, view.height)))
    write_manifest(folder.manifest, manifest)
    if progress:
        progress(0, len(tasks))
    if tasks:
        _run_tasks(tasks, settings, folder, manifest, digest, run, workers, progress, sources)
    outputs = {k: entries[str(k)]["outputs"]["output"] for k in selected
               if entries.get(str(k), {}).get("status") == "done"}
    run.scene_json, run.scene_bin = register(scene, outputs, folder)
    run.wall = time.perf_counter() - run.started
    return run


def _unchanged(previous: dict, entry: dict, digest: str, folder: MainFolder) -> bool:
    outputs = previous.get("outputs", {})
    return (previous.get("status") == "done" and previous.get("source_sha256") == entry["source_sha256"]
            and previous.get("settings_digest") == digest
            and all((folder.anonymization / p).is_file() for p in outputs.values())
            and previous.get("mask_sha256") == sha256_file(folder.anonymization / outputs["mask"]))


def _run_tasks(tasks: list[Task], settings: Settings, folder: MainFolder, manifest: dict, digest: str,
               run: Run, workers: int | None, progress, sources: guard.SourceGuard) -> None:
    """The tasks in worker processes. When a worker dies, the pool is rebuilt; the views it took
    down are tried once more, one at a time, so the one that kills its worker again fails alone."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    for name, value in WORKER_MALLOC.items():  # read by the C library when a worker starts
        os.environ.setdefault(name, value)
    finished = 0

    def record(result: Result) -> None:
        nonlocal finished
        finished += 1
        _record(result, manifest, digest, run, folder)
        write_manifest(folder.manifest, manifest)
        if progress:
            progress(finished, len(tasks))

    queue, retry = deque(tasks), deque()
    while queue or retry:
        first_try = bool(queue)
        with ProcessPoolExecutor(workers if first_try else 1, mp_context=context, initializer=_init_worker,
                                 initargs=(settings, str(folder.root), sources)) as pool:
            lost = _drain(pool, queue if first_try else retry, workers if first_try else 1, record)
        if first_try:
            retry.extend(lost)
        for task in [] if first_try else lost:
            record(Result(task.view_id, False, reason="its worker process died twice (killed, or out of memory)"))


def _drain(pool: ProcessPoolExecutor, queue: deque, at_once: int, record) -> list[Task]:
    """Run the queue's tasks, ``at_once`` in flight, until it is empty or the pool breaks;
    returns the tasks the broken pool took down."""
    running: dict[Future, Task] = {}
    lost: list[Task] = []
    while (queue or running) and not lost:
        while queue and len(running) < at_once:
            task = queue.popleft()
            running[pool.submit(process_view, task)] = task
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
            done, _ = wait(running)  # the pool is gone: every other task ends at once
        for future in done:
            task = running.pop(future)
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool):
                lost.append(task)
            else:
                record(future.result() if exc is None else Result(task.view_id, False, reason=reason(exc)))
    return lost


def _record(result: Result, manifest: dict, digest: str, run: Run, folder: MainFolder) -> None:
    """A view's result into the manifest entry and the run's figures."""
    run.worker_peak_mb = max(run.worker_peak_mb, result.peak_rss_mb)
    if run.first_done is None:
        run.first_done = time.perf_counter() - run.started
    entry = manifest["views"][str(result.view_id)]
    for stage, seconds in result.seconds.items():
        run.seconds[stage] = run.seconds.get(stage, 0.0) + seconds
    if result.ok:
        for old in set(entry.get("outputs", {}).values()) - set(result.outputs.values()):
            remove(folder.anonymization / old)  # another format's image would keep what a report hid
        entry |= {"status": "done", "outputs": result.outputs, "masked_share": result.masked,
                  "mask_sha256": result.mask_sha256, "settings_digest": digest}
        entry.pop("reason", None)
        run.done.append(result.view_id)
        run.masked.append(result.masked)
    else:
        entry |= {"status": "failed", "reason": result.reason}
        run.failed[result.view_id] = result.reason


def register(scene: SfMData, outputs: dict[int, str], folder: MainFolder) -> tuple[Path, Path]:
    """The anonymized scene beside the outputs. Its root is the published images' folder
    (``blur`` or ``gaussian_blur``), relative: it resolves beside the scene file."""
    roots = {PurePosixPath(p).parts[0] for p in outputs.values()} or {"blur"}
    root = min(roots)  # one folder: every view has the camera blur, or none has
    registered = anonymized_scene(scene, {k: str(PurePosixPath(*PurePosixPath(p).parts[1:]))
                                          for k, p in outputs.items()}, root)
    paths = folder.anonymization / "sfm_data_anonymized.json", folder.anonymization / "sfm_data_anonymized.bin"
    with atomic_group():  # both new, or both as they were
        for path in paths:
            write_scene(registered, path)
    return paths


def _settings_json(settings: Settings) -> dict:
    return orjson.loads(orjson.dumps(asdict(settings)))


def write_manifest(path: Path, manifest: dict) -> None:
    manifest["views"] = dict(sorted(manifest["views"].items(), key=lambda kv: int(kv[0])))
    with atomic_output(path) as f:
        f.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
