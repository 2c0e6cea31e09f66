"""Errors that mean "bad input": the CLI prints them on one line and exits with code 2."""

from pathlib import Path


class InputError(Exception):
    """Bad input, told in one line."""


class SceneFormatError(InputError):
    """A scene file that cannot be read, with the place where reading failed."""

    def __init__(self, file: str | Path, where: str, message: str):
        self.file, self.where, self.message = str(file), where, message
        super().__init__(f"{file}: {where}: {message}")
