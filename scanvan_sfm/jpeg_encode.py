"""Quantized DCT coefficients → a baseline JPEG file, entropy coding compiled with numba.

The file holds one scan (interleaved for several components), the given Huffman tables when they
code every symbol (one pass: a source's own tables) or else tables made for the image's own symbol
counts (two passes; JPEG Annex K.2, as libjpeg's ``optimize_coding``), the given quantization
tables, and the given APPn segments. Coefficients come per component on its block grid padded to whole MCUs,
shape (rows, columns, 64), in natural (row-major) order within a block.
"""

from __future__ import annotations

import heapq
import struct
from dataclasses import dataclass

import numba
import numpy as np

#: Natural index of each zig-zag position.
ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
    21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53,
    60, 61, 54, 47, 55, 62, 63], dtype=np.int64)
JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # what libjpeg writes by default
MAX_SEGMENT = 65533  # payload bytes in one marker segment
#: The most bytes one block can take: 64 codes of at most 16 + 11 bits, each byte maybe stuffed.
MAX_BLOCK_BYTES = 2 * 64 * 27 // 8 + 2


class EncodeError(ValueError):
    """Coefficients a baseline JPEG cannot hold."""


@dataclass
class Component:
    coefficients: np.ndarray   # (rows, columns, 64) int16, rows = MCU rows × v, columns = MCU columns × h
    h: int                     # sampling factors
    v: int
    quant: int                 # quantization table slot
    huffman: int               # 0 for luma, 1 for chroma


#: Bit index from the isolated lowest bit times the de Bruijn constant (``_lowest_bit``).
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DE_BRUIJN_INDEX = np.zeros(64, np.int64)
_DE_BRUIJN_INDEX[[(((1 << i) * 0x03F79D71B4CB0A89) % (1 << 64)) >> 58 for i in range(64)]] = np.arange(64)
_SHIFT = np.uint64(58)


#: Bits of each magnitude a baseline value can have (``category``).
_BITS = np.array([int(a).bit_length() for a in range(2048)], np.int64)


@numba.njit(cache=True, inline="always")
def category(value):
    """Bits of ``abs(value)``: the size part of a Huffman symbol (12: too large for baseline)."""
    a = abs(value)
    return _BITS[a] if a < 2048 else 12


@numba.njit(cache=True, inline="always")
def _lowest_bit(mask):
    return _DE_BRUIJN_INDEX[((mask & (~mask + np.uint64(1))) * _DE_BRUIJN) >> _SHIFT]


@numba.njit(cache=True, inline="always")
def put_bits(out, pos, acc, nacc, code, size):
    """Append ``size`` bits of ``code``; whole bytes go to ``out`` (an 0xFF is followed by 0x00)."""
    acc = (acc << size) | (code & ((1 << size) - 1))
    nacc += size
    while nacc >= 8:
        nacc -= 8
        byte = (acc >> nacc) & 0xFF
        out[pos] = byte
        pos += 1
        if byte == 0xFF:
            out[pos] = 0
            pos += 1
    return pos, acc & ((1 << nacc) - 1), nacc


@numba.njit(cache=True, inline="always")
def emit(counts, codes, sizes, out, state, table, symbol, value):
    """Count ``symbol`` of ``table`` (``out`` None), or write its code and the low bits of
    ``value`` (size: the symbol's low 4 bits; negative values one less, as JPEG codes them). A
    failed state (position -1: no code) stays failed."""
    if out is None:
        counts[table, symbol] += 1
        return state
    if state[0] < 0 or sizes[table, symbol] == 0:  # an earlier failure, or no code for it in the given table
        return (-1, 0, 0)
    n = symbol & 15
    bits = (codes[table, symbol] << n) | ((value if value >= 0 else value - 1) & ((1 << n) - 1))
    return put_bits(out, state[0], state[1], state[2], bits, sizes[table, symbol] + n)


@numba.njit(cache=True, inline="always")
def code_block(block, pred, dc, ac, codes, sizes, counts, out, state):
    """One block: its DC difference from ``pred``, then its AC coefficients as runs of zeros and
    values in zig-zag order. Returns the state and False if a value needs more bits than baseline
    allows or has no code in the tables."""
    diff = np.int64(block[0]) - pred
    if category(diff) > 11:
        return state, False
    state = emit(counts, codes, sizes, out, state, dc, category(diff), diff)
    if state[0] < 0:
        return state, False
    mask = np.uint64(0)  # the non-zero AC coefficients, by zig-zag position
    for k in range(1, 64):
        mask |= np.uint64(block[ZIGZAG[k]] != 0) << np.uint64(k)
    last = 0
    while mask:
        k = _lowest_bit(mask)
        mask &= mask - np.uint64(1)
        while k - last > 16:
            state = emit(counts, codes, sizes, out, state, ac, 0xF0, 0)  # 16 zeros
            last += 16
        value = np.int64(block[ZIGZAG[k]])
        if category(value) > 10:
            return state, False
        state = emit(counts, codes, sizes, out, state, ac, (k - last - 1) * 16 + category(value), value)
        last = k
    if last < 63:
        state = emit(counts, codes, sizes, out, state, ac, 0, 0)  # end of block
    return state, state[0] >= 0


@numba.njit(cache=True)
def _scan(comps, factors, tables, mcus_y, mcus_x, codes, sizes, counts, out):
    """One pass over the MCUs. ``out`` None: count each table's symbols (``counts``: DC of table
    t in row 2t, AC in 2t + 1). Else write the entropy-coded data to ``out``. Returns its length,
    or -1 if a value needs more bits than baseline allows, has no code in the tables, or ``out``
    is too short."""
    pred = np.zeros(len(comps), np.int64)
    state = (0, 0, 0)
    for my in range(mcus_y):
        for mx in range(mcus_x):
            for c in range(len(comps)):
                comp, h, v = comps[c], factors[c, 0], factors[c, 1]
                for by in range(v):
                    for bx in range(h):
                        if out is not None and state[0] + MAX_BLOCK_BYTES > len(out):
                            return -1
                        block = comp[my * v + by, mx * h + bx]
                        state, ok = code_block(block, pred[c], 2 * tables[c], 2 * tables[c] + 1, codes, sizes, counts,
                                           out, state)
                        if not ok:
                            return -1
                        pred[c] = block[0]
    pos, acc, nacc = state
    if out is not None and nacc:
        pos, acc, nacc = put_bits(out, pos, acc, nacc, 0x7F, 8 - nacc)  # pad with 1-bits
    return pos


def huffman_table(counts: np.ndarray) -> tuple[list[int], list[int]]:
    """BITS (how many codes of each length 1…16) and HUFFVAL (symbols by code length) for the
    symbol counts: Huffman code lengths, limited to 16 bits (Annex K.3), with the all-ones code
    left unused (a reserved symbol takes it, then goes)."""
    used = [int(s) for s in np.flatnonzero(counts)]
    heap = [(int(counts[s]), s, [s]) for s in used] + [(0, 256, [256])]
    heapq.heapify(heap)
    lengths = dict.fromkeys([*used, 256], 0)
    while len(heap) > 1:
        (w1, t1, s1), (w2, t2, s2) = heapq.heappop(heap), heapq.heappop(heap)
        for symbol in s1 + s2:
            lengths[symbol] += 1
        heapq.heappush(heap, (w1 + w2, min(t1, t2), s1 + s2))
    bits = [0] * (max(lengths.values()) + 1)
    for length in lengths.values():
        bits[length] += 1
    for i in range(len(bits) - 1, 16, -1):  # Annex K.3: move codes longer than 16 bits up
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    bits = (bits + [0] * 17)[:17]
    bits[max(i for i in range(17) if bits[i])] -= 1  # the reserved symbol's code
    return bits[1:], sorted(used, key=lambda s: (lengths[s], s))


def code_table(bits: list[int], values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each symbol's code and code length (Annex C)."""
    codes, sizes = np.zeros(256, np.int64), np.zeros(256, np.int64)
    code, k = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[k]], sizes[values[k]] = code, length
            code += 1
            k += 1
        code <<= 1
    return codes, sizes


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def metadata_segments(metadata: dict[str, bytes]) -> bytes:
    """JFIF, EXIF, XMP and ICC segments, as Pillow writes ``exif``, ``xmp`` and ``icc_profile``."""
    payloads = []
    if exif := metadata.get("exif"):
        payloads.append((0xE1, exif))
    if xmp := metadata.get("xmp"):
        payloads.append((0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp))
    if icc := metadata.get("icc_profile"):
        chunks = [icc[i:i + MAX_SEGMENT - 14] for i in range(0, len(icc), MAX_SEGMENT - 14)]
        payloads += [(0xE2, b"ICC_PROFILE\x00" + bytes([i, len(chunks)]) + chunk)
                     for i, chunk in enumerate(chunks, start=1)]
    if any(len(payload) > MAX_SEGMENT for _, payload in payloads):
        raise EncodeError("EXIF or XMP too long for one JPEG segment")
    return JFIF + b"".join(_segment(marker, payload) for marker, payload in payloads)


#: Huffman tables by row (DC of slot t in row 2t, AC in 2t + 1): BITS and HUFFVAL.
Tables = dict[int, tuple[list[int], list[int]]]


def encode(width: int, height: int, components: list[Component], quant: dict[int, np.ndarray],
           segments: bytes = b"", huffman: Tables | None = None, size_hint: int = 0) -> bytes:
    """The baseline JPEG of the coefficients (``quant``: slot → 64 natural-order values), coded
    with ``huffman`` if those tables code every symbol within about ``size_hint`` bytes (the
    source's scan), else with tables made for them."""
    comps = tuple(c.coefficients for c in components)
    factors = np.array([(c.h, c.v) for c in components], np.int64)
    tables = np.array([c.huffman for c in components], np.int64)
    mcus_y, mcus_x = comps[0].shape[0] // components[0].v, comps[0].shape[1] // components[0].h
    rows = range(2 * (int(tables.max()) + 1))
    counts, codes, sizes = (np.zeros((4, 256), np.int64) for _ in range(3))
    length = -1
    if huffman is not None and all(row in huffman for row in rows):
        for row in rows:
            codes[row], sizes[row] = code_table(*huffman[row])
        data = np.empty(2 * size_hint + 1024, np.uint8)
        length = _scan(comps, factors, tables, mcus_y, mcus_x, codes, sizes, counts, data)
        chosen = huffman
    if length < 0:
        if _scan(comps, factors, tables, mcus_y, mcus_x, codes, sizes, counts, None) < 0:
            raise EncodeError("a DCT coefficient out of the baseline range")
        chosen = {row: huffman_table(counts[row]) for row in rows}
        for row in rows:
            codes[row], sizes[row] = code_table(*chosen[row])
        total_bits = int((counts * (sizes + np.arange(256) % 16)).sum())  # codes and their value bits
        data = np.empty(2 * (total_bits // 8) + MAX_BLOCK_BYTES, np.uint8)  # room for a 0x00 after every byte
        length = _scan(comps, factors, tables, mcus_y, mcus_x, codes, sizes, counts, data)
    layout = [(c.h, c.v, c.quant, c.huffman) for c in components]
    return jpeg_file(width, height, layout, quant, segments, chosen, data[:length].tobytes())


def jpeg_file(width: int, height: int, layout: list[tuple[int, int, int, int]], quant: dict[int, np.ndarray],
              segments: bytes, huffman: Tables, scan: bytes) -> bytes:
    """A baseline JPEG file around its entropy-coded ``scan``: ``layout`` gives each component's
    sampling factors, quantization table slot and Huffman table slot (h, v, quant, huffman)."""
    dht = b"".join(bytes([(row % 2) << 4 | row // 2, *huffman[row][0], *huffman[row][1]]) for row in sorted(huffman))
    wide = any(int(q.max()) > 255 for q in quant.values())
    dqt = b"".join(bytes([wide << 4 | slot]) + np.asarray(q, ">u2" if wide else "u1")[ZIGZAG].tobytes()
                   for slot, q in sorted(quant.items()))
    ids = range(1, len(layout) + 1)
    sof = struct.pack(">BHHB", 8, height, width, len(layout)) + b"".join(
        bytes([i, h << 4 | v, q]) for i, (h, v, q, _) in zip(ids, layout, strict=True))
    sos = bytes([len(layout)]) + b"".join(bytes([i, t * 0x11]) for i, (_, _, _, t) in zip(ids, layout, strict=True))
    return b"".join([b"\xff\xd8", segments, _segment(0xDB, dqt), _segment(0xC1 if wide else 0xC0, sof),
                     _segment(0xC4, dht), _segment(0xDA, sos + b"\x00\x3f\x00"), scan, b"\xff\xd9"])
