"""One failure policy for every batch: the errors that fail one item (and never the batch), and
the one-line reason they are told with."""

import cv2

from .errors import InputError

#: Bad input, a full disk, an OpenCV error, an image too large for memory: that item fails alone.
EXPECTED_ERRORS = (InputError, OSError, ValueError, MemoryError, cv2.error)


def reason(exc: BaseException) -> str:
    """The error in one line: the first line of its message, or its type when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
