"""openMVG's ``.bin`` scene format (cereal PortableBinary), read and written.

Layout: u8 endianness flag, then the seven members in order; strings and vectors carry a u64
count, maps a u64 entry count; polymorphic pointers as in the JSON (shared id tables).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_output
from ..errors import SceneFormatError
from . import landmarks_bin as lb
from .convert import (
    VIEW_TYPES,
    check_finite,
    check_version,
    distortion_field,
    intrinsic_from_data,
    pose_from_data,
    view_from_data,
)
from .models import (
    DISTORTION_FIELD,
    INTRINSIC_TYPES,
    Landmarks,
    Pinhole,
    Pose,
    SfMData,
    Spherical,
    View,
    ViewPriors,
    _Intrinsic,
)
from .polymorphic import MSB, PolymorphicReader, PolymorphicWriter

_DISTORTION_LENGTH = {"disto_k1": 1, "disto_k3": 3, "disto_t2": 5, "fisheye": 4}
_STATUS_MESSAGES = {
    lb.TRUNCATED: "unexpected end of file",
    lb.BAD_LENGTH: "vector of unexpected length",
    lb.TOO_MANY: "observation count larger than the rest of the file",
    lb.NON_FINITE: "non-finite number",
}


class _Cursor:
    """Reads scalars from a buffer, failing with the byte offset."""

    def __init__(self, buf: np.ndarray, path: Path):
        self.buf, self.path, self.pos = buf, path, 0
        if buf[0] == 0:
            raise self.fail("big-endian .bin files are not supported (written on a big-endian machine)")
        if buf[0] != 1:
            raise self.fail("not an openMVG .bin (the first byte must be the endianness flag 1)")
        self.pos = 1

    def fail(self, message: str, at: int | None = None) -> SceneFormatError:
        return SceneFormatError(self.path, f"byte {self.pos if at is None else at}", message)

    def _take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise self.fail("unexpected end of file")
        value = struct.unpack_from("<" + fmt, self.buf.data, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else list(value)

    def u8(self) -> int:
        return self._take("B")

    def u32(self) -> int:
        return self._take("I")

    def count(self, item_bytes: int) -> int:
        """A u64 size tag, checked against what is left of the file."""
        at = self.pos
        n = self._take("Q")
        if n * item_bytes > len(self.buf) - self.pos:
            raise self.fail(f"count {n} larger than the rest of the file", at)
        return n

    def string(self) -> str:
        n = self.count(1)
        start, self.pos = self.pos, self.pos + n
        try:
            return self.buf[start:self.pos].tobytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("invalid UTF-8 in a string", start + exc.start) from None

    def double(self) -> float:
        return self._finite([self._take("d")])[0]

    def doubles(self, expected: int | None = None) -> list[float]:
        at = self.pos
        n = self.count(8)
        if expected is not None and n != expected:
            raise self.fail(f"expected {expected} values, found {n}", at)
        return self._finite(self._take(f"{n}d") if n != 1 else [self._take("d")])

    def _finite(self, values: list[float]) -> list[float]:
        """``values``, just read; a NaN or ±Inf among them fails at its byte."""
        if not all(map(math.isfinite, values)):
            i = next(i for i, v in enumerate(values) if not math.isfinite(v))
            raise self.fail(f"non-finite number {values[i]}", self.pos - 8 * (len(values) - i))
        return values

    def end(self) -> None:
        """Only the end of the file may follow."""
        if self.pos != len(self.buf):
            raise self.fail("data after the end of the scene")


def read_bin(path: str | Path, *, structure: bool = True) -> SfMData:
    """Read an openMVG ``.bin``; ``structure=False`` stops after the cameras (much faster)."""
    return _with_cursor(path, lambda cur: _read(cur, structure))


def read_bin_counts(path: str | Path) -> tuple[SfMData, dict[str, int]]:
    """The cameras, and the landmark and observation counts found by walking the structure."""
    def read(cur: _Cursor) -> tuple[SfMData, dict[str, int]]:
        scene = _read(cur, structure=False)
        counts = {}
        for name in ("structure", "control_points"):
            n, total = _walk(cur, name)
            counts[name], counts[f"{name}_observations"] = n, total
        cur.end()
        return scene, counts
    return _with_cursor(path, read)


def _with_cursor(path: str | Path, read: Callable[[_Cursor], Any]) -> Any:
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise SceneFormatError(path, "byte 0", "empty file")
        data = np.memmap(path, mode="r", dtype=np.uint8)
    except OSError as exc:
        raise SceneFormatError(path, "file", exc.strerror or str(exc)) from None
    return read(_Cursor(data, path))


def _read(cur: _Cursor, structure: bool) -> SfMData:
    poly = PolymorphicReader(lambda where, msg: cur.fail(msg))
    version = check_version(cur.string(), cur.fail)
    root_path = cur.string()
    views = _map(cur, 4 + 4 + 4, lambda: _pointee(cur, poly, _view, View))
    intrinsics = _map(cur, 4 + 4 + 8, lambda: _pointee(cur, poly, _intrinsic, _Intrinsic))
    extrinsics = _map(cur, 4 + 8 * 5 + 9 * 8 + 24, lambda: _pose(cur))
    scene = SfMData(version=version, root_path=root_path, views=views, intrinsics=intrinsics,
                    extrinsics=extrinsics)
    if structure:
        scene.structure = _landmarks(cur, "structure")
        scene.control_points = _landmarks(cur, "control_points")
        cur.end()
    return scene


def _map(cur: _Cursor, min_entry_bytes: int, read_value: Callable[[], Any]) -> dict[int, Any]:
    n = cur.count(min_entry_bytes)
    out = {}
    for _ in range(n):
        at = cur.pos
        key = cur.u32()
        if key in out:
            raise cur.fail(f"duplicate key {key}", at)
        out[key] = read_value()
    return out


def _pointee(cur: _Cursor, poly: PolymorphicReader, read_data, kind: type) -> Any:
    at = cur.pos
    pid = cur.u32()
    name = cur.string() if pid & MSB else None
    name = poly.type_name(pid, name, f"byte {at}")
    at = cur.pos
    ptr = cur.u32()
    return poly.pointee(ptr, lambda: read_data(cur, name), kind, f"byte {at}")


def _view(cur: _Cursor, name: str | None) -> View:
    at = cur.pos
    if name not in VIEW_TYPES:
        raise cur.fail(f"unknown view type {name!r}", at)
    data: dict[str, Any] = {"local_path": cur.string(), "filename": cur.string()}
    for field in ("width", "height", "id_view", "id_intrinsic", "id_pose"):
        data[field] = cur.u32()
    if name == "view_priors":
        data["use_pose_center_prior"] = bool(cur.u8())
        data["center_weight"] = cur.doubles(3)
        data["center"] = cur.doubles(3)
    return view_from_data(name, data, str(cur.path), f"byte {at}")


def _intrinsic(cur: _Cursor, name: str | None) -> Pinhole | Spherical:
    at = cur.pos
    cls = INTRINSIC_TYPES.get(name or "")
    if cls is None:
        raise cur.fail(f"unknown intrinsic type {name!r}", at)
    data: dict[str, Any] = {"width": cur.u32(), "height": cur.u32()}
    if cls is not Spherical:
        data["focal_length"] = cur.double()
        data["principal_point"] = cur.doubles(2)
        field = DISTORTION_FIELD.get(name or "")
        if field:
            data[field] = cur.doubles(_DISTORTION_LENGTH[field])
    else:
        data = {"value0": data}
    return intrinsic_from_data(name, data, str(cur.path), f"byte {at}")


def _pose(cur: _Cursor) -> Pose:
    at = cur.pos
    rows = cur.count(8 + 24)
    if rows != 3:
        raise cur.fail(f"expected 3 rotation rows, found {rows}", at)
    rotation = [cur.doubles(3) for _ in range(3)]
    return pose_from_data({"rotation": rotation, "center": cur.doubles(3)}, str(cur.path), f"byte {at}")


def _walk(cur: _Cursor, name: str) -> tuple[int, int]:
    """Check one landmark map's sizes without reading it; returns (landmarks, observations)."""
    n = cur.count(lb.LANDMARK_HEAD)
    status, end, entry, total = lb.count_observations(cur.buf, cur.pos, n)
    if status != lb.OK:
        raise cur.fail(f"{name}[{entry}]: {_STATUS_MESSAGES[status]}", int(end))
    cur.pos = int(end)
    return n, total


def _landmarks(cur: _Cursor, name: str) -> Landmarks:
    start = cur.pos
    n, total = _walk(cur, name)
    lm = Landmarks(np.empty(n, np.uint32), np.empty((n, 3)), np.empty(n + 1, np.int64),
                   np.empty(total, np.uint32), np.empty(total, np.uint32), np.empty((total, 2)))
    lb.read_landmarks(cur.buf, start + 8, lm.ids, lm.X,
                      lm.obs_offsets, lm.obs_view, lm.obs_feat, lm.obs_xy)
    return lm


# ------------------------------------------------------------------------------------ writing

class _Out:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def pack(self, fmt: str, *values: Any) -> None:
        self.parts.append(struct.pack("<" + fmt, *values))

    def string(self, s: str) -> None:
        data = s.encode()
        self.pack("Q", len(data))
        self.parts.append(data)

    def doubles(self, values) -> None:
        self.pack(f"Q{len(values)}d", len(values), *values)


def write_bin(scene: SfMData, path: str | Path) -> None:
    """Write the scene as openMVG's PortableBinary (little-endian); NaN and ±Inf are refused."""
    check_finite(scene, path)
    out = _Out()
    out.pack("B", 1)
    out.string(scene.version)
    out.string(scene.root_path)
    poly = PolymorphicWriter()
    out.pack("Q", len(scene.views))
    for key, view in scene.views.items():
        out.pack("I", key)
        _write_pointer(out, poly, view, view.polymorphic_name, _write_view)
    out.pack("Q", len(scene.intrinsics))
    for key, intrinsic in scene.intrinsics.items():
        out.pack("I", key)
        _write_pointer(out, poly, intrinsic, intrinsic.type, _write_intrinsic)
    out.pack("Q", len(scene.extrinsics))
    for key, pose in scene.extrinsics.items():
        out.pack("IQ", key, 3)
        for row in pose.rotation:
            out.doubles(row)
        out.doubles(pose.center)
    with atomic_output(path) as f:
        f.write(b"".join(out.parts))
        for lm in (scene.structure, scene.control_points):
            buf = np.empty(lb.map_bytes(len(lm), lm.n_observations), np.uint8)
            lb.write_landmarks(buf, lm.ids, lm.X, lm.obs_offsets, lm.obs_view, lm.obs_feat, lm.obs_xy)
            f.write(buf.data)


def _write_pointer(out: _Out, poly: PolymorphicWriter, obj: Any, name: str | None, write_data) -> None:
    pid, written_name = poly.type_id(name)
    out.pack("I", pid)
    if written_name is not None:
        out.string(written_name)
    ptr, new = poly.pointer_id(obj)
    out.pack("I", ptr)
    if new:
        write_data(out, obj)


def _write_view(out: _Out, view: View) -> None:
    out.string(view.local_path)
    out.string(view.filename)
    out.pack("5I", view.width, view.height, view.id_view, view.id_intrinsic, view.id_pose)
    if isinstance(view, ViewPriors):
        # Always all three fields: openMVG's loader reads them even when the prior is off.
        out.pack("B", view.use_pose_center_prior)
        out.doubles(view.center_weight)
        out.doubles(view.center)


def _write_intrinsic(out: _Out, intrinsic: Pinhole | Spherical) -> None:
    out.pack("2I", intrinsic.width, intrinsic.height)
    if isinstance(intrinsic, Pinhole):
        out.pack("d", intrinsic.focal_length)
        out.doubles(intrinsic.principal_point)
        if distortion_field(intrinsic):
            out.doubles(intrinsic.distortion)
