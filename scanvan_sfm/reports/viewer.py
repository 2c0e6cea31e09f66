"""The reporting pages' npm packages (Photo Sphere Viewer and three.js), pinned in
``web/package-lock.json``, which ships inside the package: each is fetched as its tarball
(``npm``), checked against the lock file's integrity, and unpacked into the user cache, on the
first ``serve`` or by ``scanvan-sfm viewer install``; offline, from a folder of those tarballs.
They are never copied into the repository."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson

from .. import npm
from ..errors import InputError

LOCK = Path(__file__).parent / "web" / "package-lock.json"
#: URL prefix under /vendor → (package, folder inside it) that the pages load.
VENDOR = {
    "three": ("three", "build"),
    "psv-core": ("@photo-sphere-viewer/core", ""),
    "psv-markers": ("@photo-sphere-viewer/markers-plugin", ""),
}
OFFLINE = "fetch the tarballs listed in package-lock.json elsewhere and pass their folder with --assets"


def pins(lock: Path = LOCK) -> list[npm.Pin]:
    """Every package of the lock file, with its integrity."""
    try:
        packages = orjson.loads(lock.read_bytes())["packages"]
        return [npm.Pin(path.rpartition("node_modules/")[2], entry["version"], entry["integrity"])
                for path, entry in packages.items() if path]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{lock}: not a usable package-lock.json ({exc!r})") from None


def cache_dir() -> Path:
    return npm.user_cache() / "viewer"


def package_dir(pin: npm.Pin, cache: Path) -> Path:
    """``<cache>/<name>@<version>`` (a scoped name keeps its scope as a folder)."""
    return cache / f"{pin.name}@{pin.version}"


def install_viewer(cache: Path | None = None, assets: Path | None = None) -> dict[str, Path]:
    """Every pinned package unpacked in ``cache`` (default: the user cache), fetched, or taken
    from ``assets``, when it is not there yet; package name → its folder."""
    cache = cache or cache_dir()
    folders = {}
    for pin in pins():
        folder = package_dir(pin, cache)
        if not folder.is_dir():
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as tmp:
                npm.unpack(npm.fetch(pin, Path(tmp), assets, OFFLINE), folder)
        folders[pin.name] = folder
    return folders


def vendor_folders(cache: Path | None = None, assets: Path | None = None) -> dict[str, Path]:
    """URL prefix → the folder it serves, the packages installed first if need be."""
    packages = install_viewer(cache, assets)
    folders = {prefix: packages[name] / inside for prefix, (name, inside) in VENDOR.items()}
    missing = [str(path) for path in folders.values() if not path.is_dir()]
    if missing:
        raise InputError(f"{missing[0]}: not in the viewer package (a changed cache? remove {cache or cache_dir()})")
    return folders
