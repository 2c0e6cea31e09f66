"""Write files so that a reader never sees half of one: a temp file, then a rename.

A killed process leaves the old file or the new one, never a mix (and maybe a ``.part`` temp
file, which the next run removes). There is no fsync: scene files run to gigabytes and the rename
is what readers rely on. Files get the usual mode (0666 less the process umask), and every write
and removal is first checked against the source images (``guard``).

For the kill-at-every-write tests, ``SCANVAN_TEST_KILL_AT_WRITE=N:before`` (or ``N:after``) ends
the process with ``os._exit(137)`` at its Nth write or removal, before or after the rename.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from .guard import check_write

PART_SUFFIX = ".part"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
FOLDER_MODE = 0o777 & ~_umask()


class _KillSwitch:
    """The test-only kill point (see the module docstring)."""

    def __init__(self, setting: str):
        count, _, self.when = setting.partition(":")
        self.at = int(count) if count else 0
        self.seen = 0

    def reached(self, when: str) -> None:
        if when == "before":
            self.seen += 1
        if self.at and self.seen == self.at and when == (self.when or "after"):
            os._exit(137)


_kill = _KillSwitch(os.environ.get("SCANVAN_TEST_KILL_AT_WRITE", ""))


_group: ContextVar[list[tuple[str, Path]] | None] = ContextVar("atomic_group", default=None)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path``; it replaces ``path`` only if the block succeeds (inside
    ``atomic_group``: only when the whole group succeeds)."""
    path = Path(path)
    check_write(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=PART_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            yield f
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk: say which file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    group = _group.get()
    if group is None:
        _replace(tmp, path)
    else:
        group.append((tmp, path))


@contextmanager
def atomic_group() -> Iterator[None]:
    """Files that go together (a scene's JSON and ``.bin``): none replaces its old version until
    every one is written whole, so a full disk or a failed writer leaves them all as they were."""
    group: list[tuple[str, Path]] = []
    token = _group.set(group)
    try:
        yield
    except BaseException:
        for tmp, _ in group:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _group.reset(token)
    for tmp, path in group:
        _replace(tmp, path)


def _replace(tmp: str, path: Path) -> None:
    try:
        _kill.reached("before")
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a folder in the way: say which output, not the temp file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    _kill.reached("after")


def remove(path: str | Path) -> None:
    """Delete an output (checked like a write); a missing file is fine."""
    path = Path(path)
    if not path.exists():
        return
    check_write(path)
    _kill.reached("before")
    path.unlink(missing_ok=True)
    _kill.reached("after")


def remove_parts(folder: Path) -> None:
    """The temp files a killed run left under ``folder``."""
    if folder.is_dir():
        for stale in folder.rglob(f".*{PART_SUFFIX}"):
            remove(stale)
