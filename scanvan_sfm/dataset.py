"""The main-folder layout and every artifact in it, in one place (as OpenSfM's ``DataSet``).

    main-folder/
      images/                       sources (sub-folders allowed)
      anonymization/
        segmentation/<key>-probmap-<class>.png, <key>-detections.json
        masks/<key>-mask.png          the mask the image was filled with
        masks/<key>-{automatic,manual,excess}.png   layers, once reports apply (masks.LAYERS)
        blur/<key>.<ext>            filled images
        gaussian_blur/<key>.<ext>   camera/car-roof blurred
        feature_masks/<tool>/…      masks for openMVG, COLMAP, OpenSfM
        camera_mask.png, camera_rig.png     the rig anonymize found (white = scene), and its
                                    look when it turns with the heading (``rig``)
        review/<key>.jpg            a thumbnail of each published image, its mask outlined
        review.html                 the review page of every view (``review``)
        manifest.json               what anonymize did per view (``Manifest``)
        reports/applied.json, audit.jsonl   reports applied to the masks, and what changed
        sfm_data_anonymized.{json,bin}      the registered scene

``key`` is the image path relative to ``images/`` without its extension, as the original named
its outputs, with any root, ``.`` or ``..`` part dropped so that no output can leave its folder;
two sources that share a key (``a.jpg`` and ``a.png``) are refused.

Every write is atomic and checked against the sources (``atomic``, ``guard``). State files
(manifest, ledger) that cannot be read are refused in one line naming the file: nothing is
started afresh over them.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .atomic import atomic_group, atomic_output, remove
from .errors import InputError, error_place
from .guard import safe_relative
from .images import IMAGE_SUFFIXES, Picture, output_suffix, read_image, read_mask, write_image, write_mask
from .sfm import SfMData, write_scene
from .sfm.register import anonymized_scene

#: The classes' probability-map names (the original used "vehicle" for the vehicles class).
PROBMAP_NAMES = {"people": "people", "vehicles": "vehicle"}
FEATURE_MASK_LAYOUTS = ("openmvg", "colmap", "opensfm")
SCENE_NAME = "sfm_data_anonymized"
THUMBNAIL_QUALITY = 85


class ViewEntry(BaseModel):
    """One view in the manifest."""

    model_config = ConfigDict(extra="allow")

    source: str                         # the view's image path in the scene
    source_path: str = ""               # where it was read
    source_sha256: str | None = None
    status: str = "pending"             # pending, done or failed
    reason: str | None = None           # why it failed
    outputs: dict[str, str] = {}        # name → path relative to anonymization/
    masked_share: float | None = None
    detected_share: float | None = None  # of the detector's own mask, before the report layers
    mask_sha256: str | None = None      # the mask file the published image was filled with
    settings_digest: str | None = None
    reports: list[str] | None = None    # the applied reports in its layers

    @model_validator(mode="after")
    def _done_has_outputs(self) -> ViewEntry:
        if self.status == "done" and not {"mask", "output"} <= self.outputs.keys():
            raise ValueError("a done view lists its mask and output")
        return self


class Manifest(BaseModel):
    """``anonymization/manifest.json``: the run's settings and every view's state."""

    model_config = ConfigDict(extra="allow")

    views: dict[str, ViewEntry] = {}
    scene: str | None = None
    images_root: str | None = None
    settings: dict | None = None
    settings_digest: str | None = None
    apply_runs: list[str] | None = None
    relative_root: bool = False         # the registered scene's root_path: relative (--relative-root) or absolute

    @field_validator("views")
    @classmethod
    def _view_ids(cls, views: dict[str, ViewEntry]) -> dict[str, ViewEntry]:
        if not all(key.isdigit() for key in views):
            raise ValueError("view keys are view ids")
        return views


class Region(BaseModel):
    """An area of one view's mask layer that a report put there."""

    view_id: int
    kind: Literal["report", "landmarks", "rays"]
    angles: list[list[float]] | None = None    # spherical polygon (pitch, yaw): panoramas
    pixels: list[list[float]] | None = None    # pixel polygon (x may run past the seam)
    margin: int = 0                            # pixels, grown around ``pixels``
    landmarks: int = 0                         # how many landmarks it rests on


class AppliedReport(BaseModel):
    """A report in the masks: its own polygon and every region it put into a view's layer."""

    report_id: int | None = None
    category: str
    view_id: int
    polygon: list[list[float]]                 # (pitch, yaw)
    run: str
    regions: list[Region]
    layer: Literal["manual", "excess"]

    def regions_in(self, view_id: int) -> list[Region]:
        return [r for r in self.regions if r.view_id == view_id]


class Ledger(BaseModel):
    """``anonymization/reports/applied.json``: every applied report and the regions it put in."""

    model_config = ConfigDict(extra="allow")

    reports: dict[str, AppliedReport] = {}
    runs: list[dict] = []

    @field_validator("reports")
    @classmethod
    def _report_keys(cls, reports: dict[str, AppliedReport]) -> dict[str, AppliedReport]:
        for key in reports:
            kind, _, rest = key.partition("-")
            if not (kind == "report" and rest.isdigit() or kind == "feed" and rest):
                raise ValueError(f"{key!r} is not report-<id> or feed-<digest>")
        return reports


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unknown_layout(layout: str) -> str:
    return f"unknown feature-mask layout {layout!r} (choose from {', '.join(FEATURE_MASK_LAYOUTS)})"


def check_layouts(layouts) -> None:
    """Refuse unknown feature-mask layouts up front."""
    for layout in layouts:
        if layout not in FEATURE_MASK_LAYOUTS:
            raise InputError(_unknown_layout(layout))


def feature_mask_path(layout: str, out_dir: Path, image_path: str) -> Path:
    """Where each tool looks for the mask of ``image_path`` (relative to its image folder).

    openMVG: ``<basename>_mask.png`` beside the image; COLMAP: ``<image name>.png`` in the mask
    folder; OpenSfM: ``masks/<image name>.png``.
    """
    rel = PurePosixPath(safe_relative(image_path))
    if layout == "openmvg":
        return out_dir / rel.parent / f"{rel.stem}_mask.png"
    if layout == "colmap":
        return out_dir / rel.parent / f"{rel.name}.png"
    if layout == "opensfm":
        return out_dir / "masks" / rel.parent / f"{rel.name}.png"
    raise ValueError(_unknown_layout(layout))


def write_feature_mask(layout: str, mask: np.ndarray, out_dir: Path, image_path: str) -> Path:
    """All three tools read 0 = ignore, non-zero = use: the anonymized area is 0."""
    path = feature_mask_path(layout, out_dir, image_path)
    write_mask(path, ~mask)
    return path


class Dataset:
    """A main folder: its layout, and the load/save of every artifact by view key."""

    def __init__(self, root: str | Path, images_dir: str | Path | None = None):
        """``images_dir``: where the sources are, when not ``root/images`` (a scene's root)."""
        self.root = Path(root)
        self.images_dir = Path(images_dir) if images_dir is not None else self.root / "images"
        self.anonymization = self.root / "anonymization"
        self.segmentation_dir = self.anonymization / "segmentation"
        self.masks_dir = self.anonymization / "masks"
        self.blur_dir = self.anonymization / "blur"
        self.gaussian_blur_dir = self.anonymization / "gaussian_blur"
        self.feature_masks_dir = self.anonymization / "feature_masks"
        self.review_dir = self.anonymization / "review"
        self.review_path = self.anonymization / "review.html"
        self.reports_dir = self.anonymization / "reports"
        self.manifest_path = self.anonymization / "manifest.json"
        self.camera_mask_path = self.anonymization / "camera_mask.png"
        self.camera_look_path = self.anonymization / "camera_rig.png"
        self.ledger_path = self.reports_dir / "applied.json"
        self.audit_path = self.reports_dir / "audit.jsonl"

    # ------------------------------------------------------------------------- sources and keys

    def images(self) -> list[str]:
        """Source images as POSIX paths relative to ``images/``, sorted."""
        if not self.images_dir.is_dir():
            raise InputError(f"{self.images_dir}: no images folder")
        return sorted(p.relative_to(self.images_dir).as_posix() for p in self.images_dir.rglob("*")
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    def colliding(self, images: list[str]) -> set[str]:
        """Images whose key another image shares: their outputs would overwrite each other."""
        counts = Counter(self.key(rel) for rel in images)
        return {rel for rel in images if counts[self.key(rel)] > 1}

    @staticmethod
    def key(rel: str) -> str:
        """An image path without its extension, made safe (``guard.safe_relative``): what its
        outputs are named after."""
        path = PurePosixPath(safe_relative(rel))
        return str(path.with_suffix("")) if path.suffix else str(path)

    @classmethod
    def output_keys(cls, rels: dict[int, str]) -> dict[int, str]:
        """Output name (no extension) per view: the image path without its extension, sub-folders
        kept, never leaving the output folders (``key``); where two paths would share one
        (``a.jpg``, ``a.png``), the extension stays in, and where they still would, the view id."""
        stems = {view: cls.key(rel) for view, rel in rels.items()}
        counts = Counter(stems.values())
        keys = {view: stems[view] if counts[stems[view]] == 1 else safe_relative(rels[view]) for view in rels}
        while clashing := [view for view, key in keys.items() if Counter(keys.values())[key] > 1]:
            for view in clashing:
                keys[view] = f"{keys[view]}-view{view}"
        return keys

    def source(self, rel: str) -> Path:
        return self.images_dir / rel

    def relative(self, path: Path) -> str:
        """An output's path as the manifest records it: relative to ``anonymization/``."""
        return str(path.relative_to(self.anonymization))

    # ------------------------------------------------------------------------------ file names

    def probmap(self, key: str, cls: str) -> Path:
        path = PurePosixPath(key)
        return self.segmentation_dir / path.parent / f"{path.name}-probmap-{PROBMAP_NAMES[cls]}.png"

    def detections(self, key: str) -> Path:
        return self.segmentation_dir / f"{key}-detections.json"

    def mask(self, key: str) -> Path:
        return self.masks_dir / f"{key}-mask.png"

    def mask_layer(self, key: str, layer: str) -> Path:
        """``automatic``, ``manual`` or ``excess`` (see ``masks.LAYERS``)."""
        return self.masks_dir / f"{key}-{layer}.png"

    def blurred(self, key: str, suffix: str) -> Path:
        return self.blur_dir / f"{key}{suffix}"

    def camera_blurred(self, key: str, suffix: str) -> Path:
        return self.gaussian_blur_dir / f"{key}{suffix}"

    def thumbnail(self, key: str) -> Path:
        return self.review_dir / f"{key}.jpg"

    def feature_masks(self, layout: str) -> Path:
        check_layouts([layout])
        return self.feature_masks_dir / layout

    def scene_paths(self) -> tuple[Path, Path]:
        return self.anonymization / f"{SCENE_NAME}.json", self.anonymization / f"{SCENE_NAME}.bin"

    # --------------------------------------------------------------------------- segmentation

    def save_segmentation(self, key: str, probmaps: dict[str, np.ndarray], info: dict) -> dict[str, Path]:
        """The 8-bit probability maps (the original's format) and ``info`` with the detections."""
        paths = {}
        for cls in PROBMAP_NAMES:
            paths[f"probmap_{cls}"] = self.probmap(key, cls)
            write_image(paths[f"probmap_{cls}"], Picture(probmaps[cls]))
        paths["detections"] = self.detections(key)
        with atomic_output(paths["detections"]) as f:
            f.write(orjson.dumps(info, option=orjson.OPT_INDENT_2))
        return paths

    def load_probmaps(self, key: str) -> dict[str, np.ndarray]:
        maps = {}
        for cls in PROBMAP_NAMES:
            path = self.probmap(key, cls)
            pixels = read_image(path).pixels
            if pixels.ndim != 2 or pixels.dtype != np.uint8:
                raise InputError(f"{path}: a probability map is an 8-bit grayscale PNG")
            maps[cls] = pixels
        return maps

    # ----------------------------------------------------------------------------------- masks

    def load_mask(self, key: str, original_convention: bool = False) -> np.ndarray:
        path = self.mask(key)
        if not path.is_file():
            raise InputError(f"{path}: mask not found")
        return read_mask(path, original_convention)

    def save_mask(self, key: str, mask: np.ndarray, original_convention: bool = False) -> Path:
        write_mask(self.mask(key), mask, original_convention)
        return self.mask(key)

    def save_feature_masks(self, layouts, rel: str, mask: np.ndarray) -> dict[str, Path]:
        return {f"feature_mask_{layout}": write_feature_mask(layout, mask, self.feature_masks(layout), rel)
                for layout in layouts}

    def load_layers(self, key: str, names) -> dict[str, np.ndarray]:
        """The view's mask layers among ``names`` that exist."""
        return {name: read_mask(self.mask_layer(key, name)) for name in names
                if self.mask_layer(key, name).is_file()}

    def save_layers(self, key: str, layers: dict[str, np.ndarray]) -> None:
        for name, layer in layers.items():
            write_mask(self.mask_layer(key, name), layer)

    def keep_automatic(self, key: str, automatic: np.ndarray, layers: dict[str, np.ndarray]) -> None:
        """While a view has report layers its automatic mask is kept beside them; without, a kept
        one is stale (an apply killed before its layers) and goes."""
        if layers:
            self.save_layers(key, {"automatic": automatic})
        else:
            self.remove_layers(key, ["automatic"])

    def remove_layers(self, key: str, names) -> None:
        for name in names:
            remove(self.mask_layer(key, name))

    def save_camera_mask(self, car: np.ndarray, look: np.ndarray | None) -> tuple[Path, Path | None]:
        """The rig found in the scene (True = rig) as a camera mask file (white = scene), and its
        look, if any; a file that already holds the same is left as it is."""
        _save_unchanged(self.camera_mask_path, np.where(car, 0, 255).astype(np.uint8))
        if look is None:
            remove(self.camera_look_path)
            return self.camera_mask_path, None
        _save_unchanged(self.camera_look_path, look)
        return self.camera_mask_path, self.camera_look_path

    def remove_camera_mask(self) -> None:
        """No rig found: an earlier run's files go."""
        remove(self.camera_mask_path)
        remove(self.camera_look_path)

    # -------------------------------------------------------------------------- published images

    def save_published(self, path: Path, pixels: np.ndarray, like: Picture) -> str | None:
        """A filled or camera-blurred image, with the source's metadata; as JPEG from a JPEG
        source, the source's unchanged blocks copied. Returns why it was encoded whole instead."""
        return write_image(path, Picture(pixels, like.metadata), like=like)

    def save_outputs(self, key: str, rel: str, picture: Picture, mask: np.ndarray, rendered,
                     feature_masks, out_format: str) -> tuple[dict[str, Path], str, str | None]:
        """A view's mask (and feature masks), then its published images (``view.Rendered``) and
        their thumbnail; returns the paths written, the mask file's digest, which the manifest
        records once the images are written too (so a view killed before that is done again,
        thumbnail and all), and why a JPEG was encoded whole (``save_published``)."""
        paths = {"mask": self.save_mask(key, mask)} | self.save_feature_masks(feature_masks, rel, mask)
        suffix = output_suffix(rel, out_format)
        paths["blur"] = paths["output"] = self.blurred(key, suffix)
        whole = self.save_published(paths["blur"], rendered.filled, picture)
        if rendered.blurred is not None:
            paths["gaussian_blur"] = paths["output"] = self.camera_blurred(key, suffix)
            whole = self.save_published(paths["gaussian_blur"], rendered.blurred, picture) or whole
        paths["thumbnail"] = self.thumbnail(key)
        write_image(paths["thumbnail"], Picture(rendered.thumbnail), quality=THUMBNAIL_QUALITY)
        return paths, sha256_file(paths["mask"]), whole

    def filled_image(self, rel: str) -> Path:
        """The filled output of an image, whatever format it was written in."""
        key = Path(self.key(rel))
        found = sorted(p for p in (self.blur_dir / key.parent).glob(f"{key.name}.*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.stem == key.name)
        if not found:
            raise InputError(f"{self.blur_dir / key}.*: no filled image (run the fill step first)")
        return found[0]

    # ----------------------------------------------------------------------------- state files

    def load_manifest(self) -> Manifest:
        return _load_state(self.manifest_path, Manifest)

    def save_manifest(self, manifest: Manifest) -> None:
        manifest.views = dict(sorted(manifest.views.items(), key=lambda kv: int(kv[0])))
        _save_state(self.manifest_path, manifest)

    def load_ledger(self) -> Ledger:
        return _load_state(self.ledger_path, Ledger)

    def save_ledger(self, ledger: Ledger) -> None:
        _save_state(self.ledger_path, ledger)

    def save_review(self, page: str) -> Path:
        with atomic_output(self.review_path) as f:
            f.write(page.encode())
        return self.review_path

    def append_audit(self, lines: list[dict]) -> None:
        """Rewritten whole, atomically: a full disk or a kill never leaves half a line."""
        earlier = self.audit_path.read_bytes() if self.audit_path.is_file() else b""
        with atomic_output(self.audit_path) as f:
            f.write(earlier + b"".join(orjson.dumps(line) + b"\n" for line in lines))

    def save_registered(self, scene: SfMData, outputs: dict[int, str], relative: bool = False) -> tuple[Path, Path]:
        """The scene with each view at its published image (``outputs``: view id → path relative
        to ``anonymization/``), as JSON and ``.bin``: both new, or both as they were. Its root is
        the published images' folder (``blur`` or ``gaussian_blur``): an absolute path, which
        openMVG's tools find from any directory, or, ``relative``, the folder's name (openMVG
        resolves it against the current directory: only tools run from ``anonymization/`` find
        the images, but the tree can be moved)."""
        folders = {PurePosixPath(p).parts[0] for p in outputs.values()} or {"blur"}
        folder = min(folders)  # one folder: every view has the camera blur, or none has
        root = folder if relative else os.path.abspath(self.anonymization / folder)
        registered = anonymized_scene(scene, {k: str(PurePosixPath(*PurePosixPath(p).parts[1:]))
                                              for k, p in outputs.items()}, root)
        paths = self.scene_paths()
        with atomic_group():
            for path in paths:
                write_scene(registered, path)
        return paths

    def check_root_text(self, relative: bool) -> None:
        """Refuse, before any work, an output folder whose absolute path a scene file cannot hold
        as its root_path (not UTF-8 text); a relative root has no such need."""
        if relative:
            return
        try:
            os.path.abspath(self.anonymization).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{ascii(str(self.root))}: the output folder's path is not UTF-8 text, which an "
                             "absolute root_path must be; pass --relative-root") from None

    def portable(self, registered: SfMData) -> SfMData:
        """A registered scene as ``relative`` writes it: an absolute root inside ``anonymization/``
        made relative to it (any other root is kept). What a run decides, wherever its output is."""
        root = Path(registered.root_path)
        if not root.is_absolute() or not root.is_relative_to(os.path.abspath(self.anonymization)):
            return registered
        return registered.model_copy(update={"root_path": root.relative_to(os.path.abspath(self.anonymization))
                                             .as_posix()})


def _save_unchanged(path: Path, pixels: np.ndarray) -> None:
    """A lossless image, unless the file there holds these pixels already."""
    if path.is_file():
        try:
            if np.array_equal(read_image(path).pixels, pixels):
                return
        except InputError:
            pass  # unreadable (not ours): written anew
    write_image(path, Picture(pixels))


def _load_state(path: Path, model: type[BaseModel]):
    if not path.is_file():
        return model()
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise InputError(f"{path}: {validation_message(exc)} (not written by this tool? move it away to start "
                         "afresh)") from None


def validation_message(exc: ValidationError) -> str:
    """A pydantic error in one line: the place as a JSON path, and what is wrong there."""
    error = exc.errors()[0]
    return f"{error_place(error['loc']).lstrip('.') or '$'}: {error['msg']}"


def _save_state(path: Path, state: BaseModel) -> None:
    with atomic_output(path) as f:
        f.write(orjson.dumps(state.model_dump(exclude_none=True), option=orjson.OPT_INDENT_2))
