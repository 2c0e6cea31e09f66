"""Landmark maps in cereal PortableBinary (little-endian), read and written with numba.

Per entry: u32 key | u64 3 | 3 × f64 X | u64 m | m × (u32 view | u32 id_feat | u64 2 | 2 × f64 x).
"""

import numba
import numpy as np

OK, TRUNCATED, BAD_LENGTH, TOO_MANY, NON_FINITE = 0, 1, 2, 3, 4
LANDMARK_HEAD = 4 + 8 + 24 + 8
OBSERVATION = 4 + 4 + 8 + 16


@numba.njit(cache=True, inline="always")
def _u64(buf, pos):
    return buf[pos:pos + 8].view(np.uint64)[0]


@numba.njit(cache=True, inline="always")
def _u32(buf, pos):
    return buf[pos:pos + 4].view(np.uint32)[0]


@numba.njit(cache=True, inline="always")
def _f64(buf, pos):
    return buf[pos:pos + 8].view(np.float64)[0]


@numba.njit(cache=True, inline="always")
def _first_non_finite(buf, pos, count):
    """Offset of the first of ``count`` doubles from ``pos`` that is NaN or ±Inf, or -1.

    Those are the doubles whose 11 exponent bits (in the top two bytes) are all set.
    """
    for j in range(count):
        top = pos + 8 * j + 6
        if buf[top + 1] & 0x7F == 0x7F and buf[top] & 0xF0 == 0xF0:
            return pos + 8 * j
    return -1


@numba.njit(cache=True)
def count_observations(buf, pos, n):
    """Walk ``n`` entries from ``pos`` checking sizes and that coordinates are finite;
    returns (status, pos, entry, observations)."""
    end = len(buf)
    total = 0
    for i in range(n):
        if pos + LANDMARK_HEAD > end:
            return TRUNCATED, pos, i, total
        if _u64(buf, pos + 4) != 3:
            return BAD_LENGTH, pos + 4, i, total
        bad = _first_non_finite(buf, pos + 12, 3)
        if bad >= 0:
            return NON_FINITE, bad, i, total
        m = _u64(buf, pos + 36)
        if m > np.uint64((end - pos - LANDMARK_HEAD) // OBSERVATION):
            return TOO_MANY, pos + 36, i, total
        pos += LANDMARK_HEAD
        for _ in range(np.int64(m)):
            if _u64(buf, pos + 8) != 2:
                return BAD_LENGTH, pos + 8, i, total
            bad = _first_non_finite(buf, pos + 16, 2)
            if bad >= 0:
                return NON_FINITE, bad, i, total
            pos += OBSERVATION
        total += np.int64(m)
    return OK, pos, n, total


@numba.njit(cache=True)
def read_landmarks(buf, pos, ids, X, offsets, obs_view, obs_feat, obs_xy):
    """Fill the columns from entries already checked by count_observations; returns the end."""
    k = 0
    for i in range(len(ids)):
        ids[i] = _u32(buf, pos)
        for j in range(3):
            X[i, j] = _f64(buf, pos + 12 + 8 * j)
        m = np.int64(_u64(buf, pos + 36))
        pos += LANDMARK_HEAD
        offsets[i] = k
        for _ in range(m):
            obs_view[k] = _u32(buf, pos)
            obs_feat[k] = _u32(buf, pos + 4)
            obs_xy[k, 0] = _f64(buf, pos + 16)
            obs_xy[k, 1] = _f64(buf, pos + 24)
            pos += OBSERVATION
            k += 1
    offsets[len(ids)] = k
    return pos


@numba.njit(cache=True, inline="always")
def _put_u32(out, pos, v):
    out[pos:pos + 4].view(np.uint32)[0] = v


@numba.njit(cache=True, inline="always")
def _put_u64(out, pos, v):
    out[pos:pos + 8].view(np.uint64)[0] = v


@numba.njit(cache=True, inline="always")
def _put_f64(out, pos, value):
    out[pos:pos + 8].view(np.float64)[0] = value


@numba.njit(cache=True)
def write_landmarks(out, ids, X, offsets, obs_view, obs_feat, obs_xy):
    """The whole map (count first), little-endian, into ``out``; returns the bytes written."""
    _put_u64(out, 0, len(ids))
    pos = 8
    for i in range(len(ids)):
        _put_u32(out, pos, ids[i])
        _put_u64(out, pos + 4, 3)
        for j in range(3):
            _put_f64(out, pos + 12 + 8 * j, X[i, j])
        _put_u64(out, pos + 36, offsets[i + 1] - offsets[i])
        pos += LANDMARK_HEAD
        for k in range(offsets[i], offsets[i + 1]):
            _put_u32(out, pos, obs_view[k])
            _put_u32(out, pos + 4, obs_feat[k])
            _put_u64(out, pos + 8, 2)
            _put_f64(out, pos + 16, obs_xy[k, 0])
            _put_f64(out, pos + 24, obs_xy[k, 1])
            pos += OBSERVATION
    return pos


def map_bytes(n_landmarks: int, n_observations: int) -> int:
    return 8 + n_landmarks * LANDMARK_HEAD + n_observations * OBSERVATION
