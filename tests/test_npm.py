"""npm packages as pinned tarballs (``scanvan_sfm.npm``): the viewer's, fetched with npm or taken
from a folder of tarballs, checked against the lock file, and unpacked safely and atomically."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile

import orjson
import pytest

from helpers import cli
from scanvan_sfm import npm
from scanvan_sfm.errors import InputError
from scanvan_sfm.reports import viewer


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def tarball(path, members) -> bytes:
    """A gzipped tar of ``members``: (name, bytes) files, or (name, TarInfo type, link target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, *rest in members:
            info = tarfile.TarInfo(name)
            if len(rest) == 1:
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
            else:
                info.type, info.linkname = rest
                tar.addfile(info)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_the_lock_file_ships_in_the_package_and_pins_every_served_package():
    assert viewer.LOCK.is_file() and viewer.LOCK.parent.name == "web"
    pinned = {pin.name: pin for pin in viewer.pins()}
    assert {name for name, _ in viewer.VENDOR.values()} <= set(pinned)
    assert all(pin.integrity.startswith("sha512-") for pin in pinned.values())
    assert not {"swagger-ui-dist", "@scarf/scarf"} & set(pinned)  # no install-time analytics
    lock = orjson.loads(viewer.LOCK.read_bytes())["packages"]
    assert not any(entry.get("hasInstallScript") for entry in lock.values())
    assert all(entry["resolved"].startswith("https://registry.npmjs.org/") for path, entry in lock.items() if path)


def test_offline_install_from_the_tarballs(viewer_tarballs, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no npm: the tarballs must do
    cache = tmp_path / "cache"
    folders = viewer.vendor_folders(cache, viewer_tarballs)
    assert set(folders) == set(viewer.VENDOR)
    assert (folders["three"] / "three.module.js").is_file() and (folders["psv-core"] / "index.module.js").is_file()
    core = orjson.loads((folders["psv-core"] / "package.json").read_bytes())
    assert core["name"] == "@photo-sphere-viewer/core" and core["version"] == "5.15.1"
    assert sorted(p.name for p in cache.iterdir()) == ["@photo-sphere-viewer", "three@0.185.1"]  # nothing left over
    assert viewer.vendor_folders(cache) == folders  # installed: neither npm nor the tarballs are needed again


def test_a_tampered_tarball_is_refused_and_nothing_is_installed(viewer_tarballs, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assets = tmp_path / "assets"
    shutil.copytree(viewer_tarballs, assets)
    (three,) = [t for t in assets.iterdir() if t.name.startswith("three")]
    data = bytearray(three.read_bytes())
    data[len(data) // 2] ^= 0x01
    three.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"assets: no tarball of three@0.185.1 with the pinned integrity"):
        viewer.install_viewer(tmp_path / "cache", assets)
    assert not (tmp_path / "cache" / "three@0.185.1").exists()
    with pytest.raises(InputError, match="npm is not available to fetch .*--assets"):
        viewer.install_viewer(tmp_path / "cache")


def test_only_regular_files_of_the_assets_folder_are_read(tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "a.tgz").mkdir()                   # a folder: was an "Is a directory" error
    os.mkfifo(assets / "b.tgz")                  # a pipe: hashing it waited for a writer forever
    (assets / "c.tgz").symlink_to("/dev/zero")   # a device: hashing it never ended
    data = tarball(assets / "d.tgz", [("package/index.js", b"ok")])
    pin = npm.Pin("pkg", "1.0.0", sri(data))
    assert npm.fetch(pin, tmp_path, assets) == assets / "d.tgz"
    (assets / "d.tgz").unlink()
    with pytest.raises(InputError, match="no tarball of pkg@1.0.0"):
        npm.fetch(pin, tmp_path, assets)


def test_npm_pack_fetches_the_pinned_tarball(tmp_path):
    pin = next(p for p in viewer.pins() if p.name == "@photo-sphere-viewer/markers-plugin")
    fetched = npm.fetch(pin, tmp_path)
    assert fetched.parent == tmp_path and npm.has_integrity(fetched, pin.integrity)
    wrong = npm.Pin(pin.name, pin.version, sri(b"another tarball"))
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(InputError, match="differs from its pinned integrity"):
        npm.fetch(wrong, again)
    assert not list(again.iterdir())  # not kept


def test_unpacking_never_leaves_the_target(tmp_path):
    hostile = tmp_path / "hostile.tgz"
    for name in ("package/../../evil.js", "/etc/evil.js", "../evil.js", "C:/evil.js"):
        tarball(hostile, [("package/index.js", b"ok"), (name, b"evil")])
        with pytest.raises(InputError, match="outside the package folder"):
            npm.unpack(hostile, tmp_path / "target")
        assert not (tmp_path / "target").exists() and not list(tmp_path.glob(".target.*"))
    assert not list(tmp_path.rglob("evil.js"))
    links = tmp_path / "links.tgz"
    tarball(links, [("package/index.js", b"ok"), ("package/passwd", tarfile.SYMTYPE, "/etc/passwd"),
                    ("package/up", tarfile.SYMTYPE, "../.."), ("package/hard", tarfile.LNKTYPE, "/etc/passwd"),
                    ("package/up/escaped.js", b"through the link")])
    target = npm.unpack(links, tmp_path / "target")
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["index.js", "up", "up/escaped.js"]
    assert (target / "up").is_dir() and not (target / "up").is_symlink()  # links are left out, as npm does
    assert (target / "index.js").read_bytes() == b"ok"


def test_unpacking_is_all_or_nothing(tmp_path):
    data = tarball(tmp_path / "whole.tgz", [("package/a.js", b"a" * 100_000), ("package/b.js", b"b")])
    (tmp_path / "cut.tgz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.tgz: cannot unpack"):
        npm.unpack(tmp_path / "cut.tgz", tmp_path / "target")
    assert not list(tmp_path.glob("*target*"))
    first = npm.unpack(tmp_path / "whole.tgz", tmp_path / "target")
    tarball(tmp_path / "other.tgz", [("package/a.js", b"another process's copy")])
    assert npm.unpack(tmp_path / "other.tgz", tmp_path / "target") == first  # the copy already there stays
    assert (first / "a.js").read_bytes() == b"a" * 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.tgz", "other.tgz", "target", "whole.tgz"]
    assert npm.has_integrity(tmp_path / "whole.tgz", sri(data))
    assert not npm.has_integrity(tmp_path / "cut.tgz", sri(data))


def test_viewer_install_command(viewer_tarballs, tmp_path):
    installed = cli("viewer", "install", "--dir", tmp_path / "cache", "--assets", viewer_tarballs)
    assert installed.returncode == 0, installed.stderr
    assert f"three: {tmp_path / 'cache' / 'three@0.185.1'}" in installed.stderr
    (tmp_path / "empty").mkdir()
    refused = cli("viewer", "install", "--dir", tmp_path / "other", "--assets", tmp_path / "empty")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "no tarball of" in refused.stderr
