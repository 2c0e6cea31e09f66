"""The original ScanVan main-folder layout, in one place.

    main-folder/
      images/                       sources (sub-folders allowed)
      anonymization/
        segmentation/<key>-probmap-<class>.png, <key>-detections.json
        masks/<key>-mask.png          the mask the image was filled with
        masks/<key>-{automatic,manual,excess}.png   layers, once reports apply (reports.layers)
        blur/<key>.<ext>            filled images
        gaussian_blur/<key>.<ext>   camera/car-roof blurred
        feature_masks/<tool>/…      masks for openMVG, COLMAP, OpenSfM
        reports/applied.json, audit.jsonl   reports applied to the masks, and what changed

``key`` is the image path relative to ``images/`` without its extension, as the original named
its outputs, with any root, ``.`` or ``..`` part dropped so that no output can leave its folder;
two sources that share a key (``a.jpg`` and ``a.png``) are refused.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

from .errors import InputError
from .guard import safe_relative
from .images import IMAGE_SUFFIXES
from .masks import check_layouts, probmap_name


class MainFolder:
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

    def source(self, rel: str) -> Path:
        return self.images_dir / rel

    # Outputs are named from a key (see ``key``).
    def probmap(self, key: str, cls: str) -> Path:
        path = PurePosixPath(key)
        return self.segmentation_dir / path.parent / probmap_name(path.name, cls)

    def detections(self, key: str) -> Path:
        return self.segmentation_dir / f"{key}-detections.json"

    def mask(self, key: str) -> Path:
        return self.masks_dir / f"{key}-mask.png"

    def mask_layer(self, key: str, layer: str) -> Path:
        """``automatic``, ``manual`` or ``excess`` (see ``reports.layers``)."""
        return self.masks_dir / f"{key}-{layer}.png"

    def blurred(self, key: str, suffix: str) -> Path:
        return self.blur_dir / f"{key}{suffix}"

    def camera_blurred(self, key: str, suffix: str) -> Path:
        return self.gaussian_blur_dir / f"{key}{suffix}"

    @property
    def manifest(self) -> Path:
        return self.anonymization / "manifest.json"

    @property
    def reports_dir(self) -> Path:
        """``applied.json`` (the reports in the masks and their regions) and ``audit.jsonl``."""
        return self.anonymization / "reports"

    def feature_masks(self, layout: str) -> Path:
        check_layouts([layout])
        return self.feature_masks_dir / layout
