"""Landmark maps (``structure``, ``control_points``) in openMVG's JSON, scanned and written with numba.

The scanner accepts any whitespace but expects the members in openMVG's order; the caller falls
back to the generic reader when it reports an unexpected layout. Numbers are validated against
the JSON grammar here and converted to doubles by numpy, which rounds correctly.
"""

import numba
import numpy as np

from .floattext import MAX_DOUBLE_TEXT, write_bytes, write_double

NEED_MORE = -1
BAD = -2

DONE, MORE_DATA, FULL, ERROR, OBS_FULL = 0, 1, 2, 3, 4  # scan statuses
START, AFTER_ENTRY, AFTER_COMMA = 0, 1, 2  # array states

_KEY = np.frombuffer(b'"key"', np.uint8)
_VALUE = np.frombuffer(b'"value"', np.uint8)
_X = np.frombuffer(b'"X"', np.uint8)
_OBSERVATIONS = np.frombuffer(b'"observations"', np.uint8)
_ID_FEAT = np.frombuffer(b'"id_feat"', np.uint8)
_XY = np.frombuffer(b'"x"', np.uint8)


@numba.njit(cache=True, inline="always")
def _ws(buf, pos, end):
    while pos < end and (buf[pos] == 32 or buf[pos] == 10 or buf[pos] == 13 or buf[pos] == 9):
        pos += 1
    return pos


@numba.njit(cache=True)
def _char(buf, pos, end, c):
    pos = _ws(buf, pos, end)
    if pos >= end:
        return NEED_MORE
    return pos + 1 if buf[pos] == c else BAD


@numba.njit(cache=True)
def _member(buf, pos, end, name):
    """Skip ``"name":``; the member names here never need escapes."""
    pos = _ws(buf, pos, end)
    if pos + len(name) > end:
        return NEED_MORE
    for i in range(len(name)):
        if buf[pos + i] != name[i]:
            return BAD
    return _char(buf, pos + len(name), end, 58)


@numba.njit(cache=True)
def _uint(buf, pos, end):
    """A uint32 written as a JSON integer; returns (pos, value)."""
    pos = _ws(buf, pos, end)
    start = pos
    value = 0
    while pos < end and 48 <= buf[pos] <= 57:
        value = value * 10 + (buf[pos] - 48)
        if value > 0xFFFFFFFF:
            return BAD, 0
        pos += 1
    if pos >= end:
        return NEED_MORE, 0
    if pos == start or (buf[start] == 48 and pos - start > 1):
        return BAD, 0
    return pos, value


@numba.njit(cache=True)
def _digits(buf, pos, end):
    start = pos
    while pos < end and 48 <= buf[pos] <= 57:
        pos += 1
    return pos, pos - start


@numba.njit(cache=True)
def _unsigned_number(buf, pos, end):
    """Past a JSON number's digits, fraction and exponent; BAD or NEED_MORE where they break off."""
    pos, n = _digits(buf, pos, end)
    if n == 0 or (n > 1 and buf[pos - n] == 48):
        return BAD if pos < end else NEED_MORE
    if pos < end and buf[pos] == 46:
        pos, n = _digits(buf, pos + 1, end)
        if n == 0:
            return BAD if pos < end else NEED_MORE
    if pos < end and (buf[pos] == 101 or buf[pos] == 69):
        pos += 1
        if pos < end and (buf[pos] == 43 or buf[pos] == 45):
            pos += 1
        pos, n = _digits(buf, pos, end)
        if n == 0:
            return BAD if pos < end else NEED_MORE
    return pos


@numba.njit(cache=True)
def _number(buf, pos, end, tok, row):
    """Check one JSON number (or NaN/Infinity, refused once converted) and copy its text to tok[row]."""
    pos = _ws(buf, pos, end)
    start = pos
    if pos < end and buf[pos] == 45:
        pos += 1
    if pos < end and (buf[pos] == 78 or buf[pos] == 73):  # NaN, Infinity
        while pos < end and (65 <= buf[pos] <= 90 or 97 <= buf[pos] <= 122):
            pos += 1
    else:
        pos = _unsigned_number(buf, pos, end)
        if pos < 0:
            return pos
    if pos >= end:
        return NEED_MORE
    length = pos - start
    if length >= MAX_DOUBLE_TEXT:
        return BAD
    for i in range(length):
        tok[row, i] = buf[start + i]
    tok[row, length:] = 0
    return pos


@numba.njit(cache=True)
def _numbers(buf, pos, end, tok, row, count):
    """``[n, n, …]`` with exactly ``count`` numbers."""
    pos = _char(buf, pos, end, 91)
    for i in range(count):
        if pos < 0:
            return pos
        if i:
            pos = _char(buf, pos, end, 44)
            if pos < 0:
                return pos
        pos = _number(buf, pos, end, tok, row + i)
    if pos < 0:
        return pos
    return _char(buf, pos, end, 93)


@numba.njit(cache=True)
def _entry_open(buf, pos, end):
    """``{"key": N, "value": {`` of a map entry; returns (pos, N)."""
    key = 0
    pos = _char(buf, pos, end, 123)
    if pos >= 0:
        pos = _member(buf, pos, end, _KEY)
    if pos >= 0:
        pos, key = _uint(buf, pos, end)
    if pos >= 0:
        pos = _char(buf, pos, end, 44)
    if pos >= 0:
        pos = _member(buf, pos, end, _VALUE)
    if pos >= 0:
        pos = _char(buf, pos, end, 123)
    return pos, key


@numba.njit(cache=True)
def _entry_close(buf, pos, end):
    """``}}`` closing the value and the entry."""
    if pos >= 0:
        pos = _char(buf, pos, end, 125)
    if pos >= 0:
        pos = _char(buf, pos, end, 125)
    return pos


@numba.njit(cache=True)
def _observation(buf, pos, end, obs_view, obs_feat, xy_tok, k):
    pos, obs_view[k] = _entry_open(buf, pos, end)
    if pos >= 0:
        pos = _member(buf, pos, end, _ID_FEAT)
    if pos >= 0:
        pos, obs_feat[k] = _uint(buf, pos, end)
    if pos >= 0:
        pos = _char(buf, pos, end, 44)
    if pos >= 0:
        pos = _member(buf, pos, end, _XY)
    if pos >= 0:
        pos = _numbers(buf, pos, end, xy_tok, 2 * k, 2)
    return _entry_close(buf, pos, end)


@numba.njit(cache=True)
def _observations(buf, pos, end, obs_view, obs_feat, xy_tok, k):
    """The observations of an array whose ``[`` is read, stored from index ``k``; returns (pos,
    observations read), or (NEED_MORE, -1) when the arrays have no room for them."""
    n = 0
    pos = _ws(buf, pos, end)
    if pos >= end:
        return NEED_MORE, 0
    if buf[pos] == 93:
        return pos + 1, 0
    while True:
        if k + n >= len(obs_view):
            return NEED_MORE, -1
        pos = _observation(buf, pos, end, obs_view, obs_feat, xy_tok, k + n)
        if pos < 0:
            return pos, 0
        n += 1
        pos = _ws(buf, pos, end)
        if pos >= end:
            return NEED_MORE, 0
        if buf[pos] == 93:
            return pos + 1, n
        if buf[pos] != 44:
            return BAD, 0
        pos += 1


@numba.njit(cache=True)
def _landmark(buf, pos, end, ids, x_tok, counts, obs_view, obs_feat, xy_tok, i, k):
    """One map entry; returns (pos, observations written)."""
    pos, ids[i] = _entry_open(buf, pos, end)
    if pos >= 0:
        pos = _member(buf, pos, end, _X)
    if pos >= 0:
        pos = _numbers(buf, pos, end, x_tok, 3 * i, 3)
    if pos >= 0:
        pos = _char(buf, pos, end, 44)
    if pos >= 0:
        pos = _member(buf, pos, end, _OBSERVATIONS)
    if pos >= 0:
        pos = _char(buf, pos, end, 91)
    if pos < 0:
        return pos, 0
    pos, n = _observations(buf, pos, end, obs_view, obs_feat, xy_tok, k)
    if pos < 0:
        return pos, n
    counts[i] = n
    return _entry_close(buf, pos, end), n


@numba.njit(cache=True)
def scan_landmarks(buf, pos, end, state, ids, x_tok, counts, obs_view, obs_feat, xy_tok):
    """Scan map entries from ``pos`` until the array closes, the data or the arrays run out.

    Returns (status, pos, state, landmarks, observations). On MORE_DATA, FULL (no room for
    another landmark) and OBS_FULL (no room for the next landmark's observations), ``pos`` is
    where the unfinished entry starts; on ERROR, the entry that does not parse.
    """
    i = 0
    k = 0
    while True:
        pos = _ws(buf, pos, end)
        if pos >= end:
            return MORE_DATA, pos, state, i, k
        c = buf[pos]
        if c == 93 and state != AFTER_COMMA:
            return DONE, pos + 1, state, i, k
        if state == AFTER_ENTRY:
            if c != 44:
                return ERROR, pos, state, i, k
            pos += 1
            state = AFTER_COMMA
            continue
        if i >= len(ids):
            return FULL, pos, state, i, k
        entry_pos, n = _landmark(buf, pos, end, ids, x_tok, counts, obs_view, obs_feat, xy_tok, i, k)
        if entry_pos == NEED_MORE:
            return (OBS_FULL if n < 0 else MORE_DATA), pos, state, i, k
        if entry_pos < 0:
            return ERROR, pos, state, i, k
        pos = entry_pos
        state = AFTER_ENTRY
        i += 1
        k += n


# ------------------------------------------------------------------------------------ writing

@numba.njit(cache=True, inline="always")
def _indent(out, pos, n):
    out[pos] = 10
    for i in range(n):
        out[pos + 1 + i] = 32
    return pos + 1 + n


@numba.njit(cache=True)
def _write_uint(out, pos, value):
    digits = 1
    v = value
    while v >= 10:
        v //= 10
        digits += 1
    for i in range(digits - 1, -1, -1):
        out[pos + i] = 48 + value % 10
        value //= 10
    return pos + digits


@numba.njit(cache=True)
def _write_doubles(out, pos, values, indent, scratch):
    """A JSON array of doubles, one per line, the array opening already written."""
    for j in range(len(values)):
        if j:
            out[pos] = 44
            pos += 1
        pos = _indent(out, pos, indent)
        pos = write_double(out, pos, values[j], scratch)
    return _indent(out, pos, indent - 4)


_KEY_OPEN = np.frombuffer(b'"key": ', np.uint8)
_VALUE_OPEN = np.frombuffer(b'"value": {', np.uint8)
_X_OPEN = np.frombuffer(b'"X": [', np.uint8)
_OBS_OPEN = np.frombuffer(b'"observations": [', np.uint8)
_ID_FEAT_OPEN = np.frombuffer(b'"id_feat": ', np.uint8)
_XY_OPEN = np.frombuffer(b'"x": [', np.uint8)

#: Upper bounds of the text of one landmark and of one of its observations.
LANDMARK_BYTES = 256 + 3 * (MAX_DOUBLE_TEXT + 32)
OBSERVATION_BYTES = 256 + 2 * (MAX_DOUBLE_TEXT + 40)


@numba.njit(cache=True)
def _write_entry_open(out, pos, indent, key):
    """``{"key": N, "value": {`` laid out as openMVG does, the entry at ``indent``."""
    out[pos] = 123
    pos = _indent(out, pos + 1, indent + 4)
    pos = write_bytes(out, pos, _KEY_OPEN)
    pos = _write_uint(out, pos, key)
    out[pos] = 44
    pos = _indent(out, pos + 1, indent + 4)
    return write_bytes(out, pos, _VALUE_OPEN)


@numba.njit(cache=True)
def _write_entry_close(out, pos, indent):
    pos = _indent(out, pos, indent + 4)
    out[pos] = 125
    pos = _indent(out, pos + 1, indent)
    out[pos] = 125
    return pos + 1


@numba.njit(cache=True)
def write_landmarks(out, ids, X, offsets, obs_view, obs_feat, xy, start, indent):
    """Write entries from ``start`` as long as they fit in ``out``; each one preceded by
    ``,`` unless it is the array's first. Returns (bytes written, next entry)."""
    scratch = np.empty(MAX_DOUBLE_TEXT, np.uint8)
    pos = 0
    i = start
    while i < len(ids):
        n = offsets[i + 1] - offsets[i]
        if pos + LANDMARK_BYTES + n * OBSERVATION_BYTES > len(out):
            break
        if i:
            out[pos] = 44
            pos += 1
        pos = _indent(out, pos, indent)
        pos = _write_entry_open(out, pos, indent, ids[i])
        pos = _indent(out, pos, indent + 8)
        pos = write_bytes(out, pos, _X_OPEN)
        pos = _write_doubles(out, pos, X[i], indent + 12, scratch)
        out[pos] = 93
        out[pos + 1] = 44
        pos = _indent(out, pos + 2, indent + 8)
        pos = write_bytes(out, pos, _OBS_OPEN)
        for k in range(offsets[i], offsets[i + 1]):
            if k > offsets[i]:
                out[pos] = 44
                pos += 1
            pos = _indent(out, pos, indent + 12)
            pos = _write_entry_open(out, pos, indent + 12, obs_view[k])
            pos = _indent(out, pos, indent + 20)
            pos = write_bytes(out, pos, _ID_FEAT_OPEN)
            pos = _write_uint(out, pos, obs_feat[k])
            out[pos] = 44
            pos = _indent(out, pos + 1, indent + 20)
            pos = write_bytes(out, pos, _XY_OPEN)
            pos = _write_doubles(out, pos, xy[k], indent + 24, scratch)
            out[pos] = 93
            pos = _write_entry_close(out, pos + 1, indent + 12)
        if n:
            pos = _indent(out, pos, indent + 8)
        out[pos] = 93
        pos = _write_entry_close(out, pos + 1, indent)
        i += 1
    return pos, i
