"""Image files in and out: pixels in RGB(A) order, JPEG metadata carried over.

JPEG is decoded by Pillow, which refuses truncated files and reads EXIF, XMP (GPano panorama
tags included) and ICC in the same pass; PNG, BMP and TIFF by OpenCV, which keeps 16-bit colour.
The EXIF orientation is not applied: openMVG works on the stored pixel grid. A JPEG written from
a JPEG source keeps the source's blocks where the pixels did not change (``jpeg_blocks``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from . import jpeg_blocks
from .atomic import atomic_output
from .errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
JPEG_SUFFIXES = {".jpg", ".jpeg"}
#: Copies of the picture an XMP packet may hold: Adobe's base64 JPEG thumbnails (an ``xmp:Thumbnails``
#: array, ``xap:`` in older files) and Google's second image (``GImage:Data``), as elements or attributes.
XMP_PREVIEWS = re.compile(rb"<(\w+):Thumbnails\b.*?</\1:Thumbnails>|<(GImage:Data)\b.*?</\2>"
                          rb'|\s+GImage:Data\s*=\s*"[^"]*"', re.S)


class ImageError(InputError):
    """An image that cannot be read or written."""


@dataclass(frozen=True)
class SourceFile:
    """The JPEG file a picture was read from, as it was then: its inode, size, and modification and
    change times (a file replaced under the same name, its size and mtime set back, has another
    inode or change time)."""

    path: Path
    stamp: tuple[int, int, int, int]

    @classmethod
    def of(cls, path: Path) -> SourceFile:
        stat = path.stat()
        return cls(path, (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))

    def unchanged(self) -> bool:
        try:
            return SourceFile.of(self.path) == self
        except OSError:
            return False

    @functools.cached_property
    def blocks(self) -> jpeg_blocks.Source:
        """The source as ``jpeg_blocks`` reads it, on first use: a view writes up to two images from it."""
        if not self.unchanged():
            raise jpeg_blocks.Unsupported("the source file changed since it was read")
        try:
            source = jpeg_blocks.read_source(self.path)
        except OSError:  # gone or replaced after the check
            raise jpeg_blocks.Unsupported("the source file changed while it was read") from None
        if not self.unchanged():
            raise jpeg_blocks.Unsupported("the source file changed while it was read")
        return source


@dataclass
class Picture:
    """Pixels (H×W, H×W×3 RGB or H×W×4 RGBA; uint8 or uint16) and the metadata to keep."""

    pixels: np.ndarray
    metadata: dict[str, bytes] = field(default_factory=dict)  # exif, xmp, icc_profile
    source: SourceFile | None = None  # the JPEG it was read from

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def read_image(path: str | Path) -> Picture:
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unsupported image type {path.suffix!r}")
    if not path.is_file():
        raise ImageError(f"{path}: image not found")
    if path.suffix.lower() in JPEG_SUFFIXES:
        return _read_jpeg(path)
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ImageError(f"{path}: unreadable or truncated image")
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB if pixels.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return Picture(pixels)


def _read_jpeg(path: Path) -> Picture:
    try:
        source = SourceFile.of(path)
        with Image.open(path) as img:
            img.load()
            metadata = {k: img.info[k] for k in ("exif", "xmp", "icc_profile") if img.info.get(k)}
            if "exif" in metadata:
                metadata["exif"] = _without_thumbnail(img.getexif(), metadata["exif"])
            if "xmp" in metadata:
                metadata["xmp"] = XMP_PREVIEWS.sub(b"", metadata["xmp"])  # no copy of the original
            pixels = img if img.mode in ("RGB", "L") else img.convert("RGB")
            return Picture(np.asarray(pixels), metadata, source)
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ImageError(f"{path}: unreadable or truncated image ({exc})") from None


def _without_thumbnail(exif: Image.Exif, raw: bytes) -> bytes:
    """The EXIF to publish: a thumbnail (IFD1, a small copy of the unanonymized picture, as
    cameras such as Ricoh's Theta write) is dropped; without one the bytes stay as they are."""
    if not exif.get_ifd(ExifTags.IFD.IFD1):
        return raw
    return exif.tobytes()  # Pillow writes IFD0 and its sub-IFDs, not IFD1


def write_image(path: str | Path, picture: Picture, quality: int = 95, like: Picture | None = None) -> str | None:
    """Write atomically in the format of the extension; JPEG keeps the picture's metadata.

    PNG, BMP and TIFF are lossless; JPEG needs 8-bit pixels and drops an alpha channel. A JPEG
    written with ``like``, the picture as read from a JPEG, copies that file's blocks where the
    pixels equal ``like``'s (``jpeg_blocks``); the rest is encoded with its quantization tables.
    Returns why such a JPEG was encoded whole instead (Pillow, ``quality``), else None.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unsupported output type {path.suffix!r}")
    pixels = picture.pixels
    if suffix in JPEG_SUFFIXES:
        if pixels.dtype != np.uint8:
            raise ImageError(f"{path}: JPEG needs 8-bit pixels; write PNG or TIFF for 16-bit images")
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            pixels = pixels[:, :, :3]
        with atomic_output(path) as f:
            whole = _write_jpeg(f, pixels, picture.metadata, like, quality)
        return whole
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR if pixels.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if suffix == ".png" else []
    ok, encoded = cv2.imencode(suffix, pixels, params)
    if not ok:
        raise ImageError(f"{path}: could not encode the image")
    with atomic_output(path) as f:
        f.write(encoded.tobytes())
    return None


def _write_jpeg(f: BinaryIO, pixels: np.ndarray, metadata: dict[str, bytes], like: Picture | None,
                quality: int) -> str | None:
    """Block by block from ``like``'s JPEG when it can be; else whole, saying why (None: no JPEG source)."""
    whole = None
    if like is not None and like.source is not None:
        try:
            f.write(jpeg_blocks.write(like.source.blocks, like.pixels, pixels, metadata).data)
            return None
        except jpeg_blocks.Unsupported as exc:
            whole = str(exc)
    Image.fromarray(pixels).save(f, "JPEG", quality=quality, **metadata)
    return whole


def read_mask(path: str | Path, original_convention: bool = False) -> np.ndarray:
    """A mask as bool (True = anonymize). The original's masks are 0 = fill, any value < 255."""
    picture = read_image(path)
    gray = picture.pixels if picture.pixels.ndim == 2 else picture.pixels[:, :, :3].min(axis=2)
    return gray < 255 if original_convention else gray > 0


def write_mask(path: str | Path, mask: np.ndarray, original_convention: bool = False) -> None:
    """255 = anonymize, one channel; or the original's 3-channel 0 = fill."""
    if original_convention:
        gray = np.where(mask, 0, 255).astype(np.uint8)
        write_image(path, Picture(np.repeat(gray[:, :, None], 3, axis=2)))
    else:
        write_image(path, Picture(mask.astype(np.uint8) * 255))


def rgb8(pixels: np.ndarray) -> np.ndarray:
    """Pixels as 8-bit RGB: gray expanded, alpha dropped, 16-bit scaled down."""
    if pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    pixels = pixels[:, :, :3]
    return (pixels // 257).astype(np.uint8) if pixels.dtype == np.uint16 else pixels


def output_suffix(source: str, out_format: str) -> str:
    """The published image's extension: the source's (``same``) or the chosen format's."""
    suffix = Path(source).suffix if out_format == "same" else f".{out_format.lstrip('.')}"
    if suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"unknown output format {out_format!r}")
    return suffix


def read_reduced(path: str | Path, width: int) -> np.ndarray:
    """An image's RGB pixels, at least about ``width`` wide: JPEG decoded at a reduced scale
    (1/2 to 1/8, nearly free), other formats read whole. No metadata."""
    path = Path(path)
    if path.suffix.lower() not in JPEG_SUFFIXES:
        return read_image(path).pixels
    if not path.is_file():
        raise ImageError(f"{path}: image not found")
    try:
        with Image.open(path) as img:
            img.draft("RGB", (width, width * img.size[1] // img.size[0]))
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ImageError(f"{path}: unreadable or truncated image ({exc})") from None
