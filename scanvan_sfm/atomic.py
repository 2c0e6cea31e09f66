"""Write files so that a reader never sees half of one: a temp file, then a rename.

A killed process leaves the old file or the new one, never a mix. There is no fsync: scene files
run to gigabytes and the rename is what readers rely on.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from collections.abc import Iterator


@contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
