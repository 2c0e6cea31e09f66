"""Originals are never written: every output path is checked against the source images.

A command that reads sources calls ``protect(sources)`` before it writes anything; from then on
every write and removal of this process (``atomic.atomic_output``, ``atomic.remove``) is refused
when it would land on a source image (same real path, or the same inode through a hard link) or
anywhere inside a folder that holds sources. Paths are resolved first, so neither ``..`` nor a
symbolic link gets round it, and folders are also compared by device and inode, so neither does
a bind mount. Worker processes install the same guard (``install``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError


class WriteRefused(InputError):
    """An output that would overwrite or sit among the original images."""


@dataclass(frozen=True)
class SourceGuard:
    folders: frozenset[str]                # real paths of the folders that hold sources
    folder_inodes: frozenset[tuple[int, int]]  # (device, inode) of those folders
    files: frozenset[str]                  # real paths of the sources
    inodes: frozenset[tuple[int, int]]     # (device, inode) of the sources

    def check(self, path: str | Path) -> None:
        """Refuse ``path`` (to be written or removed) when it is or sits among the sources."""
        real = os.path.realpath(path)
        if real in self.files or _inode(real) in self.inodes:
            raise WriteRefused(f"{path}: refused to write onto the source image {real}")
        for folder in _ancestors(real):
            if folder in self.folders or _inode(folder) in self.folder_inodes:
                raise WriteRefused(f"{path}: refused to write inside the images folder {folder} "
                                   "(choose another --out)")


def guard_for(sources: Iterable[str | Path], roots: Iterable[str | Path] = (), *,
              their_folders: bool = True) -> SourceGuard:
    """The guard of these source files, of the folders that hold them (unless ``their_folders``
    is false) and of the image roots that hold any of them (a root that absolute image paths
    ignore, such as the current folder, is not one)."""
    files, inodes, holders = set(), set(), set()
    for source in map(str, sources):
        if "\0" in source:
            continue  # no such file can be opened, nor written
        real = os.path.realpath(source)
        files.add(real)
        holders |= {os.path.dirname(real), os.path.realpath(os.path.dirname(os.path.abspath(source)))}
        if (inode := _inode(real)) is not None:
            inodes.add(inode)
    folders = set(holders) if their_folders else set()
    for root in map(os.path.realpath, roots):
        if any(holder == root or holder.startswith(root.rstrip(os.sep) + os.sep) for holder in holders):
            folders.add(root)
    folder_inodes = {inode for folder in folders if (inode := _inode(folder)) is not None}
    return SourceGuard(frozenset(folders), frozenset(folder_inodes), frozenset(files), frozenset(inodes))


_installed: SourceGuard | None = None


def install(guard: SourceGuard | None) -> None:
    """Check every later write of this process against ``guard`` (``None``: no guard)."""
    global _installed
    _installed = guard


def protect(sources: Iterable[str | Path], roots: Iterable[str | Path] = (), *,
            their_folders: bool = True) -> SourceGuard:
    """Build the guard (see ``guard_for``), install it, and return it (for worker processes)."""
    guard = guard_for(sources, roots, their_folders=their_folders)
    install(guard)
    return guard


def check_write(path: str | Path) -> None:
    """Raise ``WriteRefused`` when the installed guard forbids writing ``path``."""
    if _installed is not None:
        _installed.check(path)


def _inode(real: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(real)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _ancestors(real: str) -> Iterable[str]:
    """``real`` and every folder above it."""
    current = real
    while True:
        yield current
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def safe_relative(path: str) -> str:
    """A scene's image path as a relative path that cannot leave the folder it is joined to: no
    root, no ``.`` or ``..`` parts (``../../images/01.jpg`` → ``images/01.jpg``,
    ``/data/01.jpg`` → ``data/01.jpg``)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "_"
