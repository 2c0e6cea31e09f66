"""Exact double → text as openMVG writes it (rapidjson's Grisu2 + Prettify), compiled with numba.

Grisu2 is not Python's shortest repr: about a third of openMVG's doubles print differently from
``repr`` while parsing to the same value, so byte-identical JSON needs this exact algorithm.
"""

import numba
import numpy as np

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
_HIDDEN = _U64(1) << _U64(52)
_SIGNIFICAND_MASK = _HIDDEN - _U64(1)
_EXPONENT_BIAS = 0x3FF + 52

# Cached powers 10^-348 … 10^340 in steps of 8 (mantissa, binary exponent), as in rapidjson.
_POW_F = np.array([
    0xfa8fd5a0081c0288, 0xbaaee17fa23ebf76, 0x8b16fb203055ac76, 0xcf42894a5dce35ea,
    0x9a6bb0aa55653b2d, 0xe61acf033d1a45df, 0xab70fe17c79ac6ca, 0xff77b1fcbebcdc4f,
    0xbe5691ef416bd60c, 0x8dd01fad907ffc3c, 0xd3515c2831559a83, 0x9d71ac8fada6c9b5,
    0xea9c227723ee8bcb, 0xaecc49914078536d, 0x823c12795db6ce57, 0xc21094364dfb5637,
    0x9096ea6f3848984f, 0xd77485cb25823ac7, 0xa086cfcd97bf97f4, 0xef340a98172aace5,
    0xb23867fb2a35b28e, 0x84c8d4dfd2c63f3b, 0xc5dd44271ad3cdba, 0x936b9fcebb25c996,
    0xdbac6c247d62a584, 0xa3ab66580d5fdaf6, 0xf3e2f893dec3f126, 0xb5b5ada8aaff80b8,
    0x87625f056c7c4a8b, 0xc9bcff6034c13053, 0x964e858c91ba2655, 0xdff9772470297ebd,
    0xa6dfbd9fb8e5b88f, 0xf8a95fcf88747d94, 0xb94470938fa89bcf, 0x8a08f0f8bf0f156b,
    0xcdb02555653131b6, 0x993fe2c6d07b7fac, 0xe45c10c42a2b3b06, 0xaa242499697392d3,
    0xfd87b5f28300ca0e, 0xbce5086492111aeb, 0x8cbccc096f5088cc, 0xd1b71758e219652c,
    0x9c40000000000000, 0xe8d4a51000000000, 0xad78ebc5ac620000, 0x813f3978f8940984,
    0xc097ce7bc90715b3, 0x8f7e32ce7bea5c70, 0xd5d238a4abe98068, 0x9f4f2726179a2245,
    0xed63a231d4c4fb27, 0xb0de65388cc8ada8, 0x83c7088e1aab65db, 0xc45d1df942711d9a,
    0x924d692ca61be758, 0xda01ee641a708dea, 0xa26da3999aef774a, 0xf209787bb47d6b85,
    0xb454e4a179dd1877, 0x865b86925b9bc5c2, 0xc83553c5c8965d3d, 0x952ab45cfa97a0b3,
    0xde469fbd99a05fe3, 0xa59bc234db398c25, 0xf6c69a72a3989f5c, 0xb7dcbf5354e9bece,
    0x88fcf317f22241e2, 0xcc20ce9bd35c78a5, 0x98165af37b2153df, 0xe2a0b5dc971f303a,
    0xa8d9d1535ce3b396, 0xfb9b7cd9a4a7443c, 0xbb764c4ca7a44410, 0x8bab8eefb6409c1a,
    0xd01fef10a657842c, 0x9b10a4e5e9913129, 0xe7109bfba19c0c9d, 0xac2820d9623bf429,
    0x80444b5e7aa7cf85, 0xbf21e44003acdd2d, 0x8e679c2f5e44ff8f, 0xd433179d9c8cb841,
    0x9e19db92b4e31ba9, 0xeb96bf6ebadf77d9, 0xaf87023b9bf0ee6b,
], dtype=np.uint64)
_POW_E = np.array([
    -1220, -1193, -1166, -1140, -1113, -1087, -1060, -1034, -1007, -980,
    -954, -927, -901, -874, -847, -821, -794, -768, -741, -715,
    -688, -661, -635, -608, -582, -555, -529, -502, -475, -449,
    -422, -396, -369, -343, -316, -289, -263, -236, -210, -183,
    -157, -130, -103, -77, -50, -24, 3, 30, 56, 83,
    109, 136, 162, 189, 216, 242, 269, 295, 322, 348,
    375, 402, 428, 455, 481, 508, 534, 561, 588, 614,
    641, 667, 694, 720, 747, 774, 800, 827, 853, 880,
    907, 933, 960, 986, 1013, 1039, 1066,
], dtype=np.int64)
_POW10 = np.array([10 ** i for i in range(10)], dtype=np.uint64)

#: Longest text one double can take (sign, 17 digits, point, exponent) with room to spare.
MAX_DOUBLE_TEXT = 32  # the last 8 bytes of the scratch buffer serve as a bit cast


@numba.njit(cache=True, inline="always")
def _mul(af, ae, bf, be):
    """DiyFp product: high 64 bits of the 128-bit product, rounded."""
    a = af >> _U64(32)
    b = af & _MASK32
    c = bf >> _U64(32)
    d = bf & _MASK32
    ac = a * c
    bc = b * c
    ad = a * d
    bd = b * d
    tmp = (bd >> _U64(32)) + (ad & _MASK32) + (bc & _MASK32) + (_U64(1) << _U64(31))
    return ac + (ad >> _U64(32)) + (bc >> _U64(32)) + (tmp >> _U64(32)), ae + be + 64


@numba.njit(cache=True)
def _count_digits32(n):
    for k in range(1, 9):
        if n < _POW10[k]:
            return k
    return 9


@numba.njit(cache=True)
def _grisu_round(buf, length, delta, rest, ten_kappa, wp_w):
    while rest < wp_w and delta - rest >= ten_kappa and (
            rest + ten_kappa < wp_w or wp_w - rest > rest + ten_kappa - wp_w):
        buf[length - 1] -= 1
        rest += ten_kappa


@numba.njit(cache=True)
def _grisu2(value_bits, buf):
    """Shortest-ish digits of a positive finite double into ``buf``; returns (length, K)."""
    vf, ve, pf, pe, mf = _boundaries(value_bits)
    # Cached power of ten for m+.
    k = 347 + 8 - (((61 + pe) * 78913) >> 18)
    index = k // 8
    big_k = 348 - (k & ~7)
    cf = _POW_F[index]
    ce = _POW_E[index]
    # Normalize v.
    shift = 0
    while (vf << _U64(shift)) & (_U64(1) << _U64(63)) == _U64(0):
        shift += 1
    wf, _ = _mul(vf << _U64(shift), ve - shift, cf, ce)
    wpf, wpe = _mul(pf, pe, cf, ce)
    wmf, _ = _mul(mf, pe, cf, ce)
    return _digit_gen(wf, wpf - _U64(1), wpe, wmf + _U64(1), big_k, buf)


@numba.njit(cache=True)
def _boundaries(value_bits):
    """The value (vf, ve) and its normalized boundaries m+ (pf, pe) and m- (mf, at pe)."""
    biased_e = np.int64((value_bits >> _U64(52)) & _U64(0x7FF))
    significand = value_bits & _SIGNIFICAND_MASK
    if biased_e != 0:
        vf = significand + _HIDDEN
        ve = biased_e - _EXPONENT_BIAS
    else:
        vf = significand
        ve = 1 - _EXPONENT_BIAS
    pf = (vf << _U64(1)) + _U64(1)
    pe = ve - 1
    while (pf & (_HIDDEN << _U64(1))) == _U64(0):
        pf <<= _U64(1)
        pe -= 1
    pf <<= _U64(10)
    pe -= 10
    if vf == _HIDDEN:
        mf = (vf << _U64(2)) - _U64(1)
        me = ve - 2
    else:
        mf = (vf << _U64(1)) - _U64(1)
        me = ve - 1
    mf <<= _U64(me - pe)
    return vf, ve, pf, pe, mf


@numba.njit(cache=True)
def _digit_gen(wf, wpf, wpe, wmf, big_k, buf):
    """Grisu's DigitGen: the digits of the scaled m+ down to the precision of m+ − m-."""
    delta = wpf - wmf
    one_shift = _U64(-wpe)
    one_f = _U64(1) << one_shift
    wp_w = wpf - wf
    p1 = wpf >> one_shift
    p2 = wpf & (one_f - _U64(1))
    kappa = _count_digits32(p1)
    length = 0
    while kappa > 0:
        div = _POW10[kappa - 1]
        d = p1 // div
        p1 = p1 % div
        if d != _U64(0) or length != 0:
            buf[length] = np.uint8(48 + d)
            length += 1
        kappa -= 1
        tmp = (p1 << one_shift) + p2
        if tmp <= delta:
            big_k += kappa
            _grisu_round(buf, length, delta, tmp, _POW10[kappa] << one_shift, wp_w)
            return length, big_k
    while True:
        p2 *= _U64(10)
        delta *= _U64(10)
        d = p2 >> one_shift
        if d != _U64(0) or length != 0:
            buf[length] = np.uint8(48 + d)
            length += 1
        p2 &= one_f - _U64(1)
        kappa -= 1
        if p2 < delta:
            big_k += kappa
            index = -kappa
            scale = _POW10[index] if index < 9 else _U64(0)
            _grisu_round(buf, length, delta, p2, one_f, wp_w * scale)
            return length, big_k


@numba.njit(cache=True)
def _write_exponent(out, pos, k):
    if k < 0:
        out[pos] = 45  # '-'
        pos += 1
        k = -k
    if k >= 100:
        out[pos] = 48 + k // 100
        out[pos + 1] = 48 + (k // 10) % 10
        out[pos + 2] = 48 + k % 10
        return pos + 3
    if k >= 10:
        out[pos] = 48 + k // 10
        out[pos + 1] = 48 + k % 10
        return pos + 2
    out[pos] = 48 + k
    return pos + 1


@numba.njit(cache=True)
def write_bytes(out, pos, text):
    """Copy the bytes ``text`` to ``out[pos:]``; return the new position."""
    for i in range(len(text)):
        out[pos + i] = text[i]
    return pos + len(text)


_ZERO = np.frombuffer(b"0.0", dtype=np.uint8)
_NAN = np.frombuffer(b"NaN", dtype=np.uint8)
_INF = np.frombuffer(b"Infinity", dtype=np.uint8)


@numba.njit(cache=True)
def write_double(out, pos, value, digits):
    """Write ``value`` as rapidjson does at ``out[pos:]``; return the new position.

    ``digits`` is a scratch buffer of MAX_DOUBLE_TEXT bytes.
    """
    cast = digits[MAX_DOUBLE_TEXT - 8:]
    cast.view(np.float64)[0] = value
    bits = cast.view(np.uint64)[0]
    if value != value:
        return write_bytes(out, pos, _NAN)
    if bits >> _U64(63):
        out[pos] = 45
        pos += 1
        bits &= ~(_U64(1) << _U64(63))
    if bits == _U64(0):
        return write_bytes(out, pos, _ZERO)
    if bits == _U64(0x7FF0000000000000):
        return write_bytes(out, pos, _INF)
    length, k = _grisu2(bits, digits)
    return _prettify(out, pos, digits, length, k)


@numba.njit(cache=True)
def _prettify(out, pos, digits, length, k):
    """The digits ``digits[:length]`` × 10^k in rapidjson's layout; returns the new position."""
    kk = length + k
    if k >= 0 and kk <= 21:  # 1234e7 -> 12340000000.0
        for i in range(length):
            out[pos + i] = digits[i]
        for i in range(length, kk):
            out[pos + i] = 48
        out[pos + kk] = 46
        out[pos + kk + 1] = 48
        return pos + kk + 2
    if 0 < kk <= 21:  # 1234e-2 -> 12.34
        for i in range(kk):
            out[pos + i] = digits[i]
        out[pos + kk] = 46
        for i in range(kk, length):
            out[pos + i + 1] = digits[i]
        return pos + length + 1
    if -6 < kk <= 0:  # 1234e-6 -> 0.001234
        offset = 2 - kk
        out[pos] = 48
        out[pos + 1] = 46
        for i in range(2, offset):
            out[pos + i] = 48
        for i in range(length):
            out[pos + offset + i] = digits[i]
        return pos + offset + length
    out[pos] = digits[0]
    if length == 1:  # 1e30
        out[pos + 1] = 101
        return _write_exponent(out, pos + 2, kk - 1)
    out[pos + 1] = 46  # 1234e30 -> 1.234e33
    for i in range(1, length):
        out[pos + 1 + i] = digits[i]
    out[pos + length + 1] = 101
    return _write_exponent(out, pos + length + 2, kk - 1)


def format_double(value: float) -> str:
    """One double as openMVG's JSON writer prints it."""
    out = np.empty(MAX_DOUBLE_TEXT, dtype=np.uint8)
    end = write_double(out, 0, float(value), np.empty(MAX_DOUBLE_TEXT, dtype=np.uint8))
    return out[:end].tobytes().decode("ascii")
