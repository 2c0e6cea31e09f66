"""A baseline JPEG's entropy-coded scan, indexed by MCU and spliced, compiled with numba.

``index`` decodes the scan's Huffman codes once and keeps, for each MCU, where each component's
first block starts, where its AC codes start, and the DC values before and after the MCU.
``splice`` then writes a scan in which the MCUs to keep are the source's own bits, copied, with
only each component's first DC difference coded again against the MCU before it, and the other
MCUs coded anew from their coefficients; all with the source's Huffman tables. A kept MCU thus
decodes to the source's coefficients exactly, and nothing is decoded to pixels or transformed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .jpeg_encode import MAX_BLOCK_BYTES, ZIGZAG, Tables, category, code_block, code_table, emit, put_bits

PEEK = 16  # bits looked up at once: the longest Huffman code
PAD = 256  # zero bytes after the scan: more than one block can read past a check


@dataclass
class Scan:
    """A source scan: its bits (byte stuffing removed), each MCU's bit offsets and DC values."""

    bits: np.ndarray        # uint8, the unstuffed scan, padded with zero bytes
    dc_at: np.ndarray       # (MCUs + 1, components): where a component's first block starts; [-1, 0]: the end
    ac_at: np.ndarray       # (MCUs, components): where that block's AC codes start
    first_dc: np.ndarray    # (MCUs, components): the DC value of the first block
    last_dc: np.ndarray     # (MCUs, components): the DC value of the last block
    tables: Tables          # the Huffman tables, by ``jpeg_encode`` row
    factors: np.ndarray     # (components, 2): sampling factors h, v
    mcus: tuple[int, int]   # MCU rows and columns

    def coefficients(self) -> list[np.ndarray]:
        """Each component's quantized coefficients (MCU rows × v, MCU columns × h, 64)."""
        out = tuple(np.zeros((self.mcus[0] * v, self.mcus[1] * h, 64), np.int16) for h, v in self.factors)
        _decode(self.bits, _lookups(self.tables), self.factors, _slots(len(self.factors)), self.mcus[1],
                self.dc_at, self.ac_at, self.first_dc, self.last_dc, out)
        return list(out)


def index(scan: bytes, tables: Tables, factors: list[tuple[int, int]], mcus: tuple[int, int]) -> Scan | None:
    """The scan after an SOS header (to its end marker) indexed by MCU, or None if it does not
    decode as a baseline scan with ``tables`` (then it is read some other way)."""
    bits = _unstuff(np.frombuffer(scan, np.uint8))
    count = mcus[0] * mcus[1]
    sampling = np.array(factors, np.int64)
    dc_at, ac_at = np.zeros((count + 1, len(factors)), np.int64), np.zeros((count, len(factors)), np.int64)
    first_dc, last_dc = np.zeros((count, len(factors)), np.int64), np.zeros((count, len(factors)), np.int64)
    if _decode(bits, _lookups(tables), sampling, _slots(len(factors)), mcus[1], dc_at, ac_at, first_dc, last_dc,
               None) < 0:
        return None
    return Scan(bits, dc_at, ac_at, first_dc, last_dc, tables, sampling, mcus)


def splice(scan: Scan, keep: np.ndarray, fresh: list[np.ndarray]) -> bytes | None:
    """The scan with the MCUs where ``keep`` (MCU rows × columns) is False coded from ``fresh``
    (per component: those MCUs in raster order, shape (MCUs, v, h, 64)) and the others copied;
    None if a value has no code in the source's tables."""
    if keep.shape != scan.mcus or any(len(blocks) != (~keep).sum() for blocks in fresh):
        raise ValueError("the MCUs to keep and the fresh ones do not match the scan")  # numba checks no bounds
    codes, sizes = np.zeros((4, 256), np.int64), np.zeros((4, 256), np.int64)
    for row, table in scan.tables.items():
        codes[row], sizes[row] = code_table(*table)
    blocks = int(scan.factors.prod(axis=1).sum()) * int((~keep).sum())
    out = np.empty(2 * len(scan.bits) + blocks * MAX_BLOCK_BYTES + 1024, np.uint8)
    length = _splice(scan.bits, scan.dc_at, scan.ac_at, scan.first_dc, scan.last_dc, keep.ravel(), tuple(fresh),
                     scan.factors, _slots(len(scan.factors)), codes, sizes, out)
    return None if length < 0 else out[:length].tobytes()


def _slots(components: int) -> np.ndarray:
    """Each component's Huffman table slot: luma 0, chroma 1 (``jpeg_blocks`` takes no other scan)."""
    return np.minimum(np.arange(components), 1)


def _lookups(tables: Tables) -> np.ndarray:
    """Per table row, every 16-bit prefix → (code length << 8) | symbol; 0 where no code starts."""
    lookup = np.zeros((4, 1 << PEEK), np.int32)
    for row, (bits, values) in tables.items():
        codes, sizes = code_table(bits, values)
        for symbol in values:
            size = int(sizes[symbol])
            start = int(codes[symbol]) << (PEEK - size)
            lookup[row, start:start + (1 << (PEEK - size))] = size << 8 | symbol
    return lookup


@numba.njit(cache=True)
def _unstuff(data):
    """The entropy-coded bytes up to the first marker, each stuffed 0x00 after 0xFF dropped, and
    ``PAD`` zero bytes after them (room to read past the end)."""
    out = np.zeros(len(data) + PAD, np.uint8)
    n, i = 0, 0
    while i < len(data):
        byte = data[i]
        if byte == 0xFF:
            if i + 1 >= len(data) or data[i + 1] != 0:
                break  # a marker: the scan ends
            i += 1
        out[n] = byte
        n += 1
        i += 1
    return out[:n + PAD]


@numba.njit(cache=True, inline="always")
def _peek(bits, pos, size):
    """``size`` (≤ 16) bits from bit ``pos`` on."""
    at = pos >> 3
    window = (np.int64(bits[at]) << 16) | (np.int64(bits[at + 1]) << 8) | np.int64(bits[at + 2])
    return (window >> (24 - (pos & 7) - size)) & ((1 << size) - 1)


@numba.njit(cache=True, inline="always")
def _value(bits, pos, size):
    """The signed value coded in ``size`` bits (JPEG's EXTEND)."""
    if size == 0:
        return 0
    raw = _peek(bits, pos, size)
    return raw if raw >= 1 << (size - 1) else raw - (1 << size) + 1


@numba.njit(cache=True)
def _decode(bits, lookup, factors, slots, mcus_x, dc_at, ac_at, first_dc, last_dc, out):
    """Walk every MCU's codes, filling the offsets and DC values (and, unless ``out`` is None,
    the coefficients). Returns the bits read, or -1 if a code is not in its table, a value is
    out of the baseline range, a block overruns 64 coefficients or the data ends first (checked
    before each block: one block reads less than ``PAD`` bytes)."""
    end = (len(bits) - PAD) * 8
    pred = np.zeros(len(factors), np.int64)
    pos = 0
    for m in range(len(ac_at)):
        my, mx = m // mcus_x, m % mcus_x
        for c in range(len(factors)):
            h, v = factors[c, 0], factors[c, 1]
            dc_at[m, c] = pos
            for b in range(h * v):
                if pos > end:
                    return -1
                dc_codes, ac_codes = lookup[2 * slots[c]], lookup[2 * slots[c] + 1]
                if out is None:
                    pos, ac, pred[c] = _read_block(bits, pos, dc_codes, ac_codes, pred[c], None)
                else:
                    block = out[c][my * v + b // h, mx * h + b % h]
                    pos, ac, pred[c] = _read_block(bits, pos, dc_codes, ac_codes, pred[c], block)
                if pos < 0:
                    return -1
                if b == 0:
                    ac_at[m, c] = ac
                    first_dc[m, c] = pred[c]
            last_dc[m, c] = pred[c]
    if pos > end:
        return -1
    dc_at[len(ac_at), 0] = pos
    return pos


@numba.njit(cache=True, inline="always")
def _read_block(bits, pos, dc_lookup, ac_lookup, pred, block):
    """One block's codes from bit ``pos``, into ``block`` (natural order) unless it is None. Returns where the block
    ends, where its AC codes start (both -1: refused) and its DC value: ``pred`` plus its difference,
    kept whole as libjpeg keeps it, though ``block`` holds it in 16 bits."""
    entry = dc_lookup[_peek(bits, pos, PEEK)]
    size = entry & 255
    if entry == 0 or size > 11:
        return -1, -1, pred
    pos += entry >> 8
    dc = pred + _value(bits, pos, size)
    if block is not None:
        block[0] = dc
    pos += size
    ac = pos
    k = 1
    while k < 64:
        entry = ac_lookup[_peek(bits, pos, PEEK)]
        if entry == 0:
            return -1, -1, dc
        pos += entry >> 8
        run, size = (entry >> 4) & 15, entry & 15
        if size == 0:
            if run != 15:
                break  # end of block
            k += 16
            continue
        k += run
        if k > 63 or size > 10:
            return -1, -1, dc
        if block is not None:
            block[ZIGZAG[k]] = _value(bits, pos, size)
        pos += size
        k += 1
    return (pos, ac, dc) if k <= 64 else (-1, -1, dc)


@numba.njit(cache=True)
def _copy(bits, start, stop, out, state):
    """Append the bits ``start``…``stop`` of ``bits`` to the output state."""
    pos, acc, nacc = state
    while start < stop:
        size = min(16, stop - start)
        pos, acc, nacc = put_bits(out, pos, acc, nacc, _peek(bits, start, size), size)
        start += size
    return pos, acc, nacc


@numba.njit(cache=True)
def _splice(bits, dc_at, ac_at, first_dc, last_dc, keep, fresh, factors, slots, codes, sizes, out):
    """The spliced scan's length in ``out``, or -1 if a value has no code (``splice``)."""
    counts = np.zeros((1, 1), np.int64)  # unused: ``emit`` counts only without an output
    pred = np.zeros(len(factors), np.int64)
    state = (0, 0, 0)
    j = 0
    for m in range(len(keep)):
        for c in range(len(factors)):
            dc, ac = 2 * slots[c], 2 * slots[c] + 1
            if keep[m]:
                stop = dc_at[m, c + 1] if c + 1 < len(factors) else dc_at[m + 1, 0]
                if state[0] + 2 * (stop - ac_at[m, c]) // 8 + MAX_BLOCK_BYTES > len(out):
                    return -1
                diff = first_dc[m, c] - pred[c]
                if category(diff) > 11:
                    return -1
                state = emit(counts, codes, sizes, out, state, dc, category(diff), diff)
                if state[0] < 0:
                    return -1
                state = _copy(bits, ac_at[m, c], stop, out, state)
                pred[c] = last_dc[m, c]
                continue
            block = fresh[c][j]
            for b in range(factors[c, 0] * factors[c, 1]):
                if state[0] + MAX_BLOCK_BYTES > len(out):
                    return -1
                state, ok = code_block(block[b // factors[c, 0], b % factors[c, 0]], pred[c], dc, ac, codes, sizes,
                                       counts, out, state)
                if not ok:
                    return -1
                pred[c] = block[b // factors[c, 0], b % factors[c, 0], 0]
        if not keep[m]:
            j += 1
    pos, acc, nacc = state
    if nacc:
        pos, acc, nacc = put_bits(out, pos, acc, nacc, 0x7F, 8 - nacc)  # pad with 1-bits
    return pos
