"""A JPEG written from its JPEG source block by block: the source's quantized DCT coefficients are
copied wherever the pixels did not change, and only the MCUs (minimum coded units: 16×16 pixels
with 4:2:0 chroma) whose pixels changed are encoded anew, with the source's quantization tables
and chroma sampling.

The rule: an MCU is re-encoded when any of its pixels differs from the source's decoded pixels;
every other MCU keeps the source's coefficients, so a decoder gives back the source's pixels there
exactly. With subsampled chroma there is one exception: decoders interpolate chroma across MCU
edges ("fancy upsampling"), so an MCU in the one-MCU ring around a re-encoded one may decode
differently in its one pixel row or column along that edge. Re-encoding the ring as well would
only move that edge one MCU out, so the ring is copied too.

A baseline source (one interleaved Huffman scan, no restart markers) is spliced (``jpeg_scan``):
the kept MCUs' entropy-coded bits are copied, nothing is decoded to pixels, and the file keeps the
source's Huffman tables. Every other kind (extended, progressive, arithmetic coded, restart
markers), or a splice that needs a code the source's tables lack, takes the source's coefficients
as libjpeg reads them and codes one scan anew (``jpeg_encode``); either way the result is a
baseline file with the same coefficients. Sources this
cannot take (not YCbCr or grayscale, not 8-bit, lossless, unreadable coefficients) raise
``Unsupported`` with the reason, and the caller encodes the image whole.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numba
import numpy as np

from . import jpeg_scan
from .jpeg_encode import ZIGZAG, Component, EncodeError, Tables, encode, jpeg_file, metadata_segments

#: Frame headers of DCT-based JPEG (baseline, extended, progressive; Huffman or arithmetic coded).
DCT_FRAMES = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}
OTHER_FRAMES = {0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF}  # lossless, hierarchical
PARAMETERLESS = {0xFF, 0x00, 0x01, *range(0xD0, 0xD8)}  # a fill byte before a marker, a stuffed zero; TEM, RST0-7
#: The orthonormal 8-point DCT-II matrix: JPEG's forward DCT is ``DCT @ block @ DCT.T``, which
#: on a block's 64 values in row-major order is one product with ``DCT_2D``.
DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)]
                for u in range(8)], np.float32)
DCT_2D = np.kron(DCT, DCT)


class Unsupported(Exception):
    """Why a JPEG cannot be written block by block from its source."""


@dataclass
class Frame:
    """The source's size and sampling, from its frame header."""

    width: int
    height: int
    factors: list[tuple[int, int]]   # each component's (h, v) sampling factors
    huffman: Tables | None = None    # a baseline source's Huffman tables, by ``jpeg_encode`` row
    scan_at: int = 0                 # where the first scan's entropy-coded data starts in the file
    scan_bytes: int = 0              # the length of the file from its scan on
    restart: int = 0                 # the restart interval in MCUs (0: no restart markers)
    quant: np.ndarray = field(default_factory=lambda: np.zeros((4, 64), np.uint16))  # tables by slot, natural order
    slots: list[int] = field(default_factory=list)  # each component's quantization table slot

    @property
    def mcu(self) -> tuple[int, int]:
        """An MCU's height and width in pixels."""
        return 8 * max(v for _, v in self.factors), 8 * max(h for h, _ in self.factors)

    @property
    def mcus(self) -> tuple[int, int]:
        """MCU rows and columns, the partial ones at the bottom and right included."""
        mcu_h, mcu_w = self.mcu
        return -(-self.height // mcu_h), -(-self.width // mcu_w)


@dataclass
class Blockwise:
    data: bytes               # the JPEG file
    reencoded: np.ndarray     # MCU rows × columns: True where encoded anew
    mcu: tuple[int, int]      # an MCU's height and width in pixels


@dataclass
class Source:
    """A JPEG source as ``write`` needs it, read once for every image written from it: a baseline
    scan indexed by MCU to splice (``jpeg_scan``), or else the coefficients libjpeg reads."""

    frame: Frame
    quant: np.ndarray                      # the quantization tables (4, 64)
    slots: list[int]                       # each component's table slot
    scan: jpeg_scan.Scan | None = None
    read: list[np.ndarray] | None = None   # libjpeg's coefficients, when there is no scan to splice

    @functools.cached_property
    def coefficients(self) -> list[np.ndarray]:
        """Per component (block rows, block columns, 64): libjpeg's, or decoded from the scan."""
        if self.read is not None:
            return self.read
        assert self.scan is not None, "a source has its coefficients or its scan"
        return self.scan.coefficients()


def read_source(path: Path) -> Source:
    """The source's frame and its indexed scan or DCT coefficients (``Unsupported`` says why it
    cannot be used)."""
    data = path.read_bytes()
    frame = read_frame(data)
    if frame.huffman is not None and not frame.restart:
        scan = jpeg_scan.index(data[frame.scan_at:], frame.huffman, frame.factors, frame.mcus)
        if scan is not None:
            return Source(frame, frame.quant, frame.slots, scan)
    coefficients, quant, slots = read_coefficients(path, frame)
    return Source(frame, quant, slots, read=coefficients)


def write(source: Source, before: np.ndarray, after: np.ndarray, metadata: dict[str, bytes]) -> Blockwise:
    """``after`` as a JPEG that copies ``source``'s blocks where ``after`` equals ``before`` (the
    source's decoded pixels), with the ``metadata`` segments (``jpeg_encode.metadata_segments``)."""
    frame = source.frame
    if before.shape != after.shape or before.shape[:2] != (frame.height, frame.width) or \
            before.ndim != (2 if len(frame.factors) == 1 else 3):
        raise Unsupported("the pixels are not the source's size or channels")
    reencoded = changed_mcus(before, after, frame)
    rows, columns = np.nonzero(reencoded)
    fresh = encode_mcus(after, rows, columns, frame, [source.quant[s] for s in source.slots])
    quant = {s: source.quant[s] for s in set(source.slots)}
    segments = metadata_segments(metadata)
    if source.scan is not None and (scan := jpeg_scan.splice(source.scan, ~reencoded, fresh)) is not None:
        layout = [(h, v, s, min(i, 1)) for i, ((h, v), s) in enumerate(zip(frame.factors, source.slots, strict=True))]
        data = jpeg_file(frame.width, frame.height, layout, quant, segments, source.scan.tables, scan)
    else:  # after a failed splice the source's tables lack a code: only tables made for the image will do
        data = _coded_anew(source, rows, columns, fresh, quant, segments, None if source.scan else frame.huffman)
    return Blockwise(data, reencoded, frame.mcu)


def _coded_anew(source: Source, rows: np.ndarray, columns: np.ndarray, fresh: list[np.ndarray],
                quant: dict[int, np.ndarray], segments: bytes, huffman: Tables | None) -> bytes:
    """The source's coefficients with ``fresh`` in the MCUs at ``rows``, ``columns``, as one scan
    coded anew, with ``huffman`` if those tables code it (``jpeg_encode.encode``)."""
    frame = source.frame
    components = []
    for index, ((h, v), coefs, blocks) in enumerate(zip(frame.factors, source.coefficients, fresh, strict=True)):
        grid = _pad(coefs, (frame.mcus[0] * v, frame.mcus[1] * h))
        grid = grid.copy() if grid is coefs else grid  # the source's stay as read
        grid.reshape(frame.mcus[0], v, frame.mcus[1], h, 64)[rows, :, columns] = blocks
        components.append(Component(grid, h, v, source.slots[index], min(index, 1)))
    try:
        return encode(frame.width, frame.height, components, quant, segments, huffman, frame.scan_bytes)
    except EncodeError as exc:
        raise Unsupported(str(exc)) from None


def read_frame(data: bytes) -> Frame:
    """The frame header, checked for what ``write`` takes (``Unsupported`` says why not), and a
    baseline source's Huffman tables."""
    pos, sof, jfif, adobe, sos, restart = 2, None, False, None, b"", 0
    defined: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    quant = np.zeros((4, 64), np.uint16)
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:  # a stray byte between segments: libjpeg skips it
            pos += 1
            continue
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in PARAMETERLESS:  # a fill byte, FF 00, RSTn or TEM: no length follows (as libjpeg reads them)
            pos += 1 if marker == 0xFF else 2
            continue
        payload = data[pos + 4:pos + 2 + length]
        if marker == 0xDA:
            sos = payload
            break
        if marker == 0xC4:
            defined |= _huffman_tables(payload)
        elif marker == 0xDB:
            _quant_tables(payload, quant)
        elif marker == 0xDD and len(payload) >= 2:
            restart = int.from_bytes(payload[:2], "big")
        elif marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:  # as libjpeg takes it
            jfif = True
        elif marker == 0xEE and payload.startswith(b"Adobe") and len(payload) >= 12:
            adobe = payload[11]  # the colour transform
        elif marker in DCT_FRAMES | OTHER_FRAMES:
            sof = marker, payload
        pos += 2 + length
    if sof is None or sof[0] in OTHER_FRAMES or len(sof[1]) < 6:
        raise Unsupported("not a DCT-based JPEG (lossless or hierarchical)" if sof else "no JPEG frame header")
    marker, payload = sof
    count = payload[5]
    ids = list(payload[6:6 + 3 * count:3])
    factors = [(b >> 4, b & 15) for b in payload[7:7 + 3 * count:3]]
    _check(payload[0], ids, factors, jfif, adobe)
    huffman = _scan_tables(sos, ids, defined) if marker in (0xC0, 0xC1) else None
    return Frame(int.from_bytes(payload[3:5], "big"), int.from_bytes(payload[1:3], "big"),
                 [(1, 1)] if count == 1 else factors, huffman, pos + 2 + 2 + len(sos), len(data) - pos, restart,
                 quant, [payload[8 + 3 * i] & 3 for i in range(count)])


def _quant_tables(payload: bytes, quant: np.ndarray) -> None:
    """A DQT segment's tables into ``quant`` (slot, natural order)."""
    pos = 0
    while pos < len(payload):
        wide, slot = payload[pos] >> 4, payload[pos] & 3
        size = 128 if wide else 64
        values = np.frombuffer(payload[pos + 1:pos + 1 + size], ">u2" if wide else "u1")
        if len(values) == 64:
            quant[slot, ZIGZAG] = values
        pos += 1 + size


def _huffman_tables(payload: bytes) -> dict[tuple[int, int], tuple[list[int], list[int]]]:
    """A DHT segment's tables by (class: 0 DC, 1 AC; slot): BITS and HUFFVAL; those a decoder
    would refuse in a written file (codes that do not fit their lengths, DC symbols over 15) left out."""
    tables, pos = {}, 0
    while pos + 17 <= len(payload):
        bits = list(payload[pos + 1:pos + 17])
        values = list(payload[pos + 17:pos + 17 + sum(bits)])
        kind = payload[pos] >> 4, payload[pos] & 15
        if sum(n << (16 - length) for length, n in enumerate(bits, start=1)) <= 1 << 16 and \
                len(values) == sum(bits) and (kind[0] or max(values, default=0) <= 15):
            tables[kind] = bits, values
        pos += 17 + sum(bits)
    return tables


def _scan_tables(sos: bytes, ids: list[int], defined: dict[tuple[int, int], tuple[list[int], list[int]]]
                 ) -> Tables | None:
    """The first scan's tables as ``jpeg_encode`` rows (luma slot 0, chroma slot 1), when that scan
    holds every component and the chroma ones share their tables; else None."""
    selectors = {sos[1 + 2 * i]: (sos[2 + 2 * i] >> 4, sos[2 + 2 * i] & 15) for i in range(sos[0] if sos else 0)}
    if sorted(selectors) != sorted(ids) or len({selectors[i] for i in ids[1:]}) > 1:
        return None
    rows = {}
    for slot, component in enumerate(ids[:2]):
        dc, ac = selectors[component]
        if (0, dc) not in defined or (1, ac) not in defined:
            return None
        rows[2 * slot], rows[2 * slot + 1] = defined[(0, dc)], defined[(1, ac)]
    return rows


def _check(precision: int, ids: list[int], factors: list[tuple[int, int]], jfif: bool, adobe: int | None) -> None:
    """Refuse what ``write`` cannot take; the colour space as libjpeg infers it."""
    if precision != 8:
        raise Unsupported(f"{precision}-bit samples")
    if len(ids) not in (1, 3):
        raise Unsupported("CMYK or YCCK (4 components)" if len(ids) == 4 else f"{len(ids)} colour components")
    if len(ids) == 3 and not jfif and (adobe == 0 if adobe is not None else ids == [82, 71, 66]):
        raise Unsupported("RGB-coded, not YCbCr")
    h_max, v_max = max(h for h, _ in factors), max(v for _, v in factors)
    if len(ids) == 3 and any(h_max % h or v_max % v for h, v in factors):
        raise Unsupported(f"chroma sampling {factors} not handled")


@functools.cache
def _libjpeg() -> ctypes.CDLL:
    """jpeglib's libjpeg-turbo build. Its C reader is called directly: the public ``read_dct`` also
    decodes the whole image for the header and copies the file to a temporary one."""
    import jpeglib
    jpeglib.version.set("turbo210")
    lib = jpeglib.version._get_lib()
    lib.read_jpeg_dct.argtypes = [ctypes.c_char_p] + [ctypes.c_void_p] * 6
    lib.read_jpeg_dct.restype = ctypes.c_int
    return lib


def read_coefficients(source: Path, frame: Frame) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
    """Each component's quantized coefficients (block rows, block columns, 64), the quantization
    tables (4, 64) and each component's table slot, as libjpeg reads them."""
    h_max, v_max = max(h for h, _ in frame.factors), max(v for _, v in frame.factors)
    coefficients = [np.zeros((-(-frame.height * v // (8 * v_max)), -(-frame.width * h // (8 * h_max)), 64), np.int16)
                    for h, v in frame.factors]  # libjpeg's height_in_blocks, width_in_blocks
    quant, slots = np.zeros((4, 64), np.uint16), np.zeros(4, np.int16)
    pointers = [c.ctypes.data for c in coefficients] + [None] * (4 - len(coefficients))
    if not _libjpeg().read_jpeg_dct(str(source).encode(), *pointers, quant.ctypes.data, slots.ctypes.data):
        raise Unsupported("libjpeg could not read its DCT coefficients")
    return coefficients, quant, [int(s) for s in slots[:len(coefficients)]]


def changed_mcus(before: np.ndarray, after: np.ndarray, frame: Frame) -> np.ndarray:
    """MCU rows × columns: True where any pixel differs."""
    changed = np.zeros(frame.mcus, bool)
    rows = before.shape[0]
    _mark_changed(before.reshape(rows, -1), after.reshape(rows, -1), frame.mcu[0],
                  frame.mcu[1] * before.size // before.shape[0] // before.shape[1], changed)
    return changed


@numba.njit(cache=True)
def _mark_changed(before, after, mcu_rows, mcu_bytes, changed):
    """Set ``changed`` where a byte of the MCU's rows differs (each row's bytes: pixels × channels)."""
    for y in range(before.shape[0]):
        for j in range(changed.shape[1]):
            if changed[y // mcu_rows, j]:
                continue
            for x in range(j * mcu_bytes, min((j + 1) * mcu_bytes, before.shape[1])):
                if before[y, x] != after[y, x]:
                    changed[y // mcu_rows, j] = True
                    break


def encode_mcus(pixels: np.ndarray, rows: np.ndarray, columns: np.ndarray, frame: Frame,
                quant: list[np.ndarray]) -> list[np.ndarray]:
    """The quantized coefficients of the given MCUs, per component (MCUs, v, h, 64): JFIF YCbCr,
    chroma averaged down to the source's sampling, forward DCT, the source's tables."""
    (mcu_h, mcu_w), (grid_h, grid_w) = frame.mcu, frame.mcus
    padded = _pad(pixels, (grid_h * mcu_h, grid_w * mcu_w))
    tiles = padded.reshape(grid_h, mcu_h, grid_w, mcu_w, -1)[rows, :, columns]
    # OpenCV's YCrCb is JFIF's YCbCr (Cb, Cr centred on 128), rounded as libjpeg does
    if tiles.shape[-1] == 3 and len(rows):
        tiles = cv2.cvtColor(tiles.reshape(-1, mcu_w, 3), cv2.COLOR_RGB2YCrCb).reshape(tiles.shape)[..., [0, 2, 1]]
    planes = tiles.astype(np.float32) - 128  # the level shift
    result = []
    for c, (h, v) in enumerate(frame.factors):
        step_y, step_x = mcu_h // (8 * v), mcu_w // (8 * h)  # pixels per sample
        plane = np.mean([planes[:, i::step_y, j::step_x, c] for i in range(step_y) for j in range(step_x)], axis=0)
        blocks = plane.reshape(-1, v, 8, h, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 64)
        coefs = blocks @ DCT_2D.T / quant[c].astype(np.float32)
        result.append(np.rint(coefs).astype(np.int16).reshape(-1, v, h, 64))
    return result


def _pad(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``array`` grown to ``shape`` in its first two axes by repeating its last row and column."""
    widths = [(0, shape[0] - array.shape[0]), (0, shape[1] - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, "edge") if any(w for _, w in widths) else array
