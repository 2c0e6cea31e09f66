"""openMVG's JSON scene format (cereal JSONOutputArchive / rapidjson PrettyWriter), read and written.

Reading streams the file in chunks: the small members go through orjson, the landmark maps
through a numba scanner into numpy columns, so memory stays near the size of the scene's arrays.
Writing reproduces openMVG's bytes: 4-space layout, Grisu2 doubles, cereal's id numbering.
"""

from __future__ import annotations

import json
from io import BufferedIOBase
from pathlib import Path
from typing import Any, BinaryIO

import numba
import numpy as np
import orjson

from ..atomic import atomic_output
from ..errors import SceneFormatError
from . import landmarks_json as lj
from .convert import (
    check_finite,
    check_version,
    intrinsic_from_data,
    intrinsic_to_data,
    pose_from_data,
    view_from_data,
    view_to_data,
)
from .floattext import MAX_DOUBLE_TEXT, format_double
from .models import Landmarks, SfMData, View, _Intrinsic
from .polymorphic import MSB, PolymorphicReader, PolymorphicWriter

CHUNK_BYTES = 64 << 20
#: Landmarks and observations gathered per scanner call before they are converted.
SCAN_LANDMARKS, SCAN_OBSERVATIONS = 1 << 16, 1 << 19
#: Below this size a file whose layout the fast scanner does not expect is re-read generically.
GENERIC_LIMIT_BYTES = 512 << 20
LANDMARK_MAPS = ("structure", "control_points")
TOP_LEVEL = ("sfm_data_version", "root_path", "views", "intrinsics", "extrinsics") + LANDMARK_MAPS


class _Unexpected(Exception):
    """The fast scanner met a layout it does not handle, at a byte offset."""

    def __init__(self, offset: int, where: str):
        self.offset, self.where = offset, where


# ------------------------------------------------------------------------------------ reading

def read_json(path: str | Path, *, structure: bool = True) -> SfMData:
    """Read an openMVG scene JSON; ``structure=False`` leaves both landmark maps empty."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head, maps = _Scanner(f, path, structure).document()
    except OSError as exc:
        raise SceneFormatError(path, "file", exc.strerror or str(exc)) from None
    except _Unexpected as exc:
        if path.stat().st_size > GENERIC_LIMIT_BYTES:
            raise SceneFormatError(path, f"byte {exc.offset}", f"invalid JSON in {exc.where}") from None
        head, maps = _read_generic(path, structure)
    return scene_from_json(head, maps, str(path))


def _read_generic(path: Path, structure: bool) -> tuple[dict, dict[str, Landmarks]]:
    """Whole-file orjson parse: slower, but takes any valid layout and names exact JSON paths."""
    data = path.read_bytes()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SceneFormatError(path, f"byte {exc.pos}", exc.msg) from None
    _refuse_duplicate_members(data, doc, path, "")
    if not isinstance(doc, dict):
        raise SceneFormatError(path, "$", "the scene must be a JSON object")
    maps = {name: _landmarks_from_json(doc.get(name, []) if structure else [], str(path), name)
            for name in LANDMARK_MAPS if name in doc}
    return {k: v for k, v in doc.items() if k not in LANDMARK_MAPS}, maps


class _Scanner:
    """Streams one JSON document through a sliding buffer."""

    def __init__(self, f: BufferedIOBase, path: Path, structure: bool):
        self.f, self.path, self.structure = f, path, structure
        self.buf = np.empty(CHUNK_BYTES, np.uint8)
        self.pos = self.end = 0
        self.offset = 0  # file offset of buf[0]
        self.eof = False

    def _fill(self) -> None:
        if self.eof:
            raise SceneFormatError(self.path, f"byte {self.offset + self.end}", "unexpected end of file")
        keep = self.end - self.pos
        if keep > len(self.buf) // 2:
            self.buf = np.concatenate([self.buf[self.pos:self.end], np.empty(len(self.buf), np.uint8)])
        else:
            self.buf[:keep] = self.buf[self.pos:self.end]
        self.offset += self.pos
        self.pos, self.end = 0, keep
        n = self.f.readinto(self.buf.data[keep:])
        self.end += n
        self.eof = n == 0

    def _call(self, fn, *args):
        """Run a scanner at ``pos`` until it no longer asks for more data."""
        while True:
            result = fn(self.buf, self.pos, self.end, *args)
            if (result[0] if isinstance(result, tuple) else result) != lj.NEED_MORE or self.eof:
                return result
            self._fill()

    def _peek(self) -> int:
        """The next byte that is not white space, left unconsumed."""
        while True:
            self.pos = self._call(_skip_ws)
            if self.pos < self.end:
                return int(self.buf[self.pos])
            self._fill()

    def _char(self, chars: bytes, where: str) -> int:
        c = self._peek()
        if c not in chars:
            raise _Unexpected(self.offset + self.pos, where)
        self.pos += 1
        return c

    def _value(self, where: str) -> Any:
        end = self._call(_value_end)
        if end < 0:
            raise _Unexpected(self.offset + self.pos, where)
        data = self.buf[self.pos:end].tobytes()
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _Unexpected(self.offset + self.pos, where) from None
        if isinstance(value, (dict, list)):
            _refuse_duplicate_members(data, value, self.path, where)
        self.pos = end
        return value

    def document(self) -> tuple[dict, dict[str, Landmarks]]:
        head: dict[str, Any] = {}
        maps: dict[str, Landmarks] = {}
        self._char(b"{", "$")
        if self._peek() == ord("}"):
            self.pos += 1
        else:
            while True:
                key = self._value("$")
                if not isinstance(key, str):
                    raise _Unexpected(self.offset + self.pos, "$")
                self._char(b":", key)
                if key in head or key in maps:
                    raise SceneFormatError(self.path, key, "duplicate member")
                if key in LANDMARK_MAPS:
                    self._char(b"[", key)
                    maps[key] = self._landmarks(key)
                else:
                    head[key] = self._value(key)
                if self._char(b",}", "$") == ord("}"):
                    break
        while True:  # only white space may follow
            self.pos = self._call(_skip_ws)
            if self.pos < self.end:
                raise SceneFormatError(self.path, f"byte {self.offset + self.pos}", "data after the end of the scene")
            if self.eof:
                return head, maps
            self.offset, self.pos, self.end = self.offset + self.end, 0, 0
            self.end = self.f.readinto(self.buf.data)
            self.eof = self.end == 0

    def _landmarks(self, name: str) -> Landmarks:
        cap_lm, cap_obs = SCAN_LANDMARKS, SCAN_OBSERVATIONS
        parts: list[tuple[np.ndarray, ...]] = []
        state, done = lj.START, 0
        columns = _scan_columns(cap_lm, cap_obs)
        while True:
            status, pos, state, n, k = lj.scan_landmarks(self.buf, self.pos, self.end, state, *columns)
            if status == lj.ERROR:
                raise _Unexpected(self.offset + pos, f"{name}[{done + n}]")
            self.pos, done = pos, done + n
            if self.structure and n:
                ids, x_tok, counts, obs_view, obs_feat, xy_tok = columns
                parts.append((ids[:n].copy(), _doubles(x_tok[:3 * n], self.path, name).reshape(n, 3),
                              counts[:n].copy(), obs_view[:k].copy(), obs_feat[:k].copy(),
                              _doubles(xy_tok[:2 * k], self.path, name).reshape(k, 2)))
            if status == lj.DONE:
                return _concat(parts)
            if status == lj.MORE_DATA:
                self._fill()
            elif status == lj.OBS_FULL and n == 0:
                cap_obs *= 2
                columns = _scan_columns(cap_lm, cap_obs)


def _scan_columns(cap_lm: int, cap_obs: int) -> tuple[np.ndarray, ...]:
    """Output arrays of one scan_landmarks call: ids, X text, counts, views, features, x text."""
    return (np.empty(cap_lm, np.uint32), np.empty((cap_lm * 3, MAX_DOUBLE_TEXT), np.uint8),
            np.empty(cap_lm, np.int64), np.empty(cap_obs, np.uint32), np.empty(cap_obs, np.uint32),
            np.empty((cap_obs * 2, MAX_DOUBLE_TEXT), np.uint8))


def _doubles(tokens: np.ndarray, path: Path, name: str) -> np.ndarray:
    try:
        return tokens.view(f"S{MAX_DOUBLE_TEXT}").ravel().astype(np.float64)
    except ValueError as exc:
        raise SceneFormatError(path, name, f"invalid number ({exc})") from None


def _concat(parts: list[tuple[np.ndarray, ...]]) -> Landmarks:
    if not parts:
        return Landmarks()
    ids, X, counts, obs_view, obs_feat, obs_xy = (np.concatenate(col) for col in zip(*parts, strict=True))
    offsets = np.zeros(len(ids) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Landmarks(ids, X, offsets, obs_view, obs_feat, obs_xy)


def _refuse_duplicate_members(data: bytes, value: Any, path: Path, where: str) -> None:
    """orjson silently keeps the last of duplicate members: refuse them, naming one.

    Each member has one colon outside strings: a text with more than its value printed back
    lost a duplicate in parsing.
    """
    try:
        printed = orjson.dumps(value)
    except orjson.JSONEncodeError:  # deeper than orjson prints (255 levels); a scene has 8
        raise SceneFormatError(path, where or "$", "nested too deep") from None
    if _colons(np.frombuffer(data, np.uint8)) != _colons(np.frombuffer(printed, np.uint8)):
        found = _duplicate_member(json.loads(data, object_pairs_hook=_Members), where)
        raise SceneFormatError(path, found or where or "$", "duplicate member")


class _Members(list):
    """A JSON object as its (name, value) pairs, duplicates kept."""


def _duplicate_member(value: Any, where: str) -> str:
    """The JSON path of a duplicate member, an object's own before its children's ("" if none)."""
    if isinstance(value, _Members):
        names: set[str] = set()
        for name, _ in value:
            if name in names:
                return f"{where}.{name}" if where else name
            names.add(name)
        children = [(child, f"{where}.{name}" if where else name) for name, child in value]
    elif isinstance(value, list):
        children = [(child, f"{where}[{i}]") for i, child in enumerate(value)]
    else:
        return ""
    return next((found for child, w in children if (found := _duplicate_member(child, w))), "")


@numba.njit(cache=True)
def _colons(buf):
    """Colons outside strings: the number of object members in a valid JSON text."""
    n = 0
    in_string = False
    i = 0
    while i < len(buf):
        c = buf[i]
        if in_string:
            if c == 92:
                i += 1
            elif c == 34:
                in_string = False
        elif c == 34:
            in_string = True
        elif c == 58:
            n += 1
        i += 1
    return n


@numba.njit(cache=True)
def _skip_ws(buf, pos, end):
    return lj._ws(buf, pos, end)


@numba.njit(cache=True)
def _value_end(buf, pos, end):
    """End of the JSON value at ``pos`` (strings, nesting; scalars up to a delimiter)."""
    pos = lj._ws(buf, pos, end)
    depth = 0
    while pos < end:
        c = buf[pos]
        if c == 34:
            pos += 1
            while pos < end and buf[pos] != 34:
                pos += 2 if buf[pos] == 92 else 1
            if pos >= end:
                return lj.NEED_MORE
        elif c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            if depth == 0:
                return pos
            depth -= 1
            if depth < 0:
                return lj.BAD
        elif depth == 0 and (c == 44 or c == 58 or c == 32 or c == 10 or c == 13 or c == 9):
            return pos
        pos += 1
        if depth == 0 and (c == 34 or c == 125 or c == 93):
            return pos
    return lj.NEED_MORE


# ---------------------------------------------------------------------- JSON values → models

def scene_from_json(head: dict, maps: dict[str, Landmarks], file: str) -> SfMData:
    """Build the scene from the parsed top-level members (landmark maps already columnar)."""
    for name in TOP_LEVEL:
        if name not in head and name not in maps:
            raise SceneFormatError(file, name, "missing member")
    unknown = set(head) - set(TOP_LEVEL)
    if unknown:
        raise SceneFormatError(file, sorted(unknown)[0], "unknown member")
    version = check_version(_typed(head["sfm_data_version"], str, file, "sfm_data_version"),
                            lambda msg: SceneFormatError(file, "sfm_data_version", msg))
    for name, lm in maps.items():
        _check_finite(lm, file, name)
    poly = PolymorphicReader(lambda where, msg: SceneFormatError(file, where, msg))
    return SfMData(
        version=version,
        root_path=_typed(head["root_path"], str, file, "root_path"),
        views=_map(head["views"], file, "views", lambda v, w: _pointee(v, poly, view_from_data, View, file, w)),
        intrinsics=_map(head["intrinsics"], file, "intrinsics",
                        lambda v, w: _pointee(v, poly, intrinsic_from_data, _Intrinsic, file, w)),
        extrinsics=_map(head["extrinsics"], file, "extrinsics", lambda v, w: pose_from_data(v, file, w)),
        structure=maps["structure"], control_points=maps["control_points"],
    )


def _check_finite(lm: Landmarks, file: str, name: str) -> None:
    """NaN, Infinity or a number too large for a double among the coordinates is refused."""
    bad = lm.first_non_finite()
    if bad is None:
        return
    i, k, j = bad
    entry = f"{name}[{i}].value"
    where = (f"{entry}.X[{j}]" if k is None
             else f"{entry}.observations[{k - int(lm.obs_offsets[i])}].value.x[{j}]")
    raise SceneFormatError(file, where, "non-finite number")


def _typed(value: Any, kind: type, file: str, where: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SceneFormatError(file, where, f"expected {_KIND_NAMES[kind]}")
    return value


_KIND_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "an array"}


def _uint(value: Any, file: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise SceneFormatError(file, where, "expected an unsigned 32-bit integer")
    return value


def _member(obj: dict, name: str, file: str, where: str) -> Any:
    if name not in obj:
        raise SceneFormatError(file, where, f"missing member {name!r}")
    return obj[name]


def _map(entries: Any, file: str, where: str, build) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for i, entry in enumerate(_typed(entries, list, file, where)):
        w = f"{where}[{i}]"
        _typed(entry, dict, file, w)
        key = _uint(_member(entry, "key", file, w), file, f"{w}.key")
        if key in out:
            raise SceneFormatError(file, f"{w}.key", f"duplicate key {key}")
        out[key] = build(_member(entry, "value", file, w), f"{w}.value")
    return out


def _pointee(value: Any, poly: PolymorphicReader, build, kind: type, file: str, where: str) -> Any:
    """A cereal polymorphic shared pointer: its object, built from ``data`` or referred back to."""
    _typed(value, dict, file, where)
    pid = _uint(_member(value, "polymorphic_id", file, where), file, f"{where}.polymorphic_id")
    name = None
    if pid & MSB:
        name = _typed(_member(value, "polymorphic_name", file, where), str, file, f"{where}.polymorphic_name")
    name = poly.type_name(pid, name, f"{where}.polymorphic_id")
    w = f"{where}.ptr_wrapper"
    wrapper = _typed(_member(value, "ptr_wrapper", file, where), dict, file, w)
    ptr = _uint(_member(wrapper, "id", file, w), file, f"{w}.id")
    return poly.pointee(ptr, lambda: build(name, _member(wrapper, "data", file, w), file, f"{w}.data"),
                        kind, f"{w}.id")


def _landmarks_from_json(entries: Any, file: str, where: str) -> Landmarks:
    """The generic (slow) path for one landmark map."""
    ids, X, counts, obs_view, obs_feat, obs_xy = [], [], [], [], [], []
    for i, entry in enumerate(_typed(entries, list, file, where)):
        w = f"{where}[{i}]"
        _typed(entry, dict, file, w)
        ids.append(_uint(_member(entry, "key", file, w), file, f"{w}.key"))
        value = _typed(_member(entry, "value", file, w), dict, file, f"{w}.value")
        X.append(_doubles_json(_member(value, "X", file, f"{w}.value"), 3, file, f"{w}.value.X"))
        observations = _typed(_member(value, "observations", file, f"{w}.value"), list, file, f"{w}.value.observations")
        counts.append(len(observations))
        for j, obs in enumerate(observations):
            o = f"{w}.value.observations[{j}]"
            _typed(obs, dict, file, o)
            obs_view.append(_uint(_member(obs, "key", file, o), file, f"{o}.key"))
            ov = _typed(_member(obs, "value", file, o), dict, file, f"{o}.value")
            obs_feat.append(_uint(_member(ov, "id_feat", file, f"{o}.value"), file, f"{o}.value.id_feat"))
            obs_xy.append(_doubles_json(_member(ov, "x", file, f"{o}.value"), 2, file, f"{o}.value.x"))
    offsets = np.zeros(len(ids) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Landmarks(np.array(ids, np.uint32), np.array(X, np.float64).reshape(-1, 3), offsets,
                     np.array(obs_view, np.uint32), np.array(obs_feat, np.uint32),
                     np.array(obs_xy, np.float64).reshape(-1, 2))


def _doubles_json(value: Any, n: int, file: str, where: str) -> list[float]:
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise SceneFormatError(file, where, f"expected an array of {n} numbers")
    return [float(v) for v in value]


# ------------------------------------------------------------------------------------ writing

def write_json(scene: SfMData, path: str | Path) -> None:
    """Write the scene as openMVG does, byte for byte for the same entry order; NaN and ±Inf are refused."""
    check_finite(scene, path)
    poly = PolymorphicWriter()
    members = {
        "sfm_data_version": scene.version,
        "root_path": scene.root_path,
        "views": [_entry(k, _pointer(v, v.polymorphic_name, view_to_data, poly)) for k, v in scene.views.items()],
        "intrinsics": [_entry(k, _pointer(v, v.type, intrinsic_to_data, poly)) for k, v in scene.intrinsics.items()],
        "extrinsics": [_entry(k, {"rotation": [list(r) for r in p.rotation], "center": list(p.center)})
                       for k, p in scene.extrinsics.items()],
    }
    with atomic_output(path) as f:
        f.write(b"{")
        for i, (name, value) in enumerate(members.items()):
            f.write(f'{"," if i else ""}\n    {_string(name)}: {_pretty(value, 4)}'.encode())
        for name in LANDMARK_MAPS:
            f.write(f',\n    "{name}": ['.encode())
            _write_landmarks(f, getattr(scene, name))
        f.write(b"\n}")


def _entry(key: int, value: Any) -> dict:
    return {"key": key, "value": value}


def _pointer(obj: Any, name: str | None, to_data, poly: PolymorphicWriter) -> dict:
    pid, written_name = poly.type_id(name)
    out: dict[str, Any] = {"polymorphic_id": pid}
    if written_name is not None:
        out["polymorphic_name"] = written_name
    ptr, new = poly.pointer_id(obj)
    out["ptr_wrapper"] = {"id": ptr, "data": to_data(obj)} if new else {"id": ptr}
    return out


def _write_landmarks(f: BinaryIO, lm: Landmarks) -> None:
    if not len(lm):
        f.write(b"]")
        return
    out = np.empty(CHUNK_BYTES, np.uint8)
    offsets = lm.obs_offsets
    start = 0
    while start < len(lm):
        need = lj.LANDMARK_BYTES + int(offsets[start + 1] - offsets[start]) * lj.OBSERVATION_BYTES
        if need > len(out):
            out = np.empty(need, np.uint8)
        size, start = lj.write_landmarks(out, lm.ids, lm.X, offsets, lm.obs_view, lm.obs_feat,
                                         lm.obs_xy, start, 8)
        f.write(out.data[:size])
    f.write(b"\n    ]")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(s: str) -> str:
    """A JSON string as rapidjson escapes it: quote, backslash and control characters only."""
    return '"' + "".join(_ESCAPES.get(c, f"\\u{ord(c):04X}" if ord(c) < 0x20 else c) for c in s) + '"'


def _pretty(value: Any, indent: int) -> str:
    """rapidjson PrettyWriter layout: every member and element on its own line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, str):
        return _string(value)
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return "{}"
        body = ",\n".join(f"{pad}{_string(k)}: {_pretty(v, indent + 4)}" for k, v in value.items())
        return "{\n" + body + "\n" + " " * indent + "}"
    if not value:
        return "[]"
    body = ",\n".join(pad + _pretty(v, indent + 4) for v in value)
    return "[\n" + body + "\n" + " " * indent + "]"
