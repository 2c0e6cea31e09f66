"""Errors that mean "bad input": the CLI prints them on one line and exits with code 2."""

from collections.abc import Sequence
from pathlib import Path


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped as ``repr`` does."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def error_place(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a JSON path suffix: ``(3, "pitchYawOrders", 1, "pitch")`` →
    ``[3].pitchYawOrders[1].pitch``, ``("views", 0)`` → ``.views[0]``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


class InputError(Exception):
    """Bad input, told in one line: unprintable characters (names from the input) are escaped."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class SceneFormatError(InputError):
    """A scene file that cannot be read, with the place where reading failed."""

    def __init__(self, file: str | Path, where: str, message: str):
        self.file, self.where, self.message = str(file), where, message
        super().__init__(f"{file}: {where}: {message}")
