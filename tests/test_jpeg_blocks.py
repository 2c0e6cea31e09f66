"""JPEG outputs written block by block from their JPEG source: the source's pixels exactly where
nothing changed, the new content where it did, the metadata as it was, and the fallbacks."""

import hashlib
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import OPENMVG, SHARED, WITHOUT_SHARED
from scanvan_sfm import jpeg_blocks
from scanvan_sfm.images import Picture, SourceFile, read_image, write_image
from scanvan_sfm.jpeg_encode import huffman_table

if not OPENMVG.is_dir():  # what follows reads it as the module loads
    pytest.skip(WITHOUT_SHARED, allow_module_level=True)

PANORAMA = SHARED / "images" / "ams_TMX7315120208-000105_pano_0001_002965.jpg"  # progressive, 4:2:0
RICOH = OPENMVG / "360_flat_gps" / "images" / "R0010213.JPG"                    # baseline 4:2:2, EXIF + GPano XMP
LUND = SHARED / "images" / "opensfm_lund_01.jpg"                                # baseline 4:2:0, ICC
SGBLUR = SHARED / "images" / "sgblur_flat_urban_small.jpg"                      # baseline 4:2:0, optimized tables


def _paint(pixels: np.ndarray, boxes) -> np.ndarray:
    """The picture inverted in the (x, y, width, height) boxes: every pixel there changes."""
    inside = np.zeros(pixels.shape[:2], bool)
    for x, y, w, h in boxes:
        inside[y:y + h, x:x + w] = True
    after = pixels.copy()
    after[inside] = 255 - after[inside]
    return after


def _street_boxes(width: int, height: int, share: float) -> list[tuple[int, int, int, int]]:
    """Person- and car-sized boxes along the street band covering about ``share`` of the image."""
    rng = np.random.default_rng(5)
    boxes, covered = [], 0
    while covered < share * width * height:
        w, h = (int(rng.uniform(0.01, 0.02) * width), int(rng.uniform(0.05, 0.1) * height)) if len(boxes) % 2 \
            else (int(rng.uniform(0.03, 0.06) * width), int(rng.uniform(0.03, 0.05) * height))
        boxes.append((int(rng.uniform(0, width - w)), int(rng.uniform(0.4, 0.65) * height), w, h))
        covered += w * h
    return boxes


def _touched(boxes, shape, mcu) -> np.ndarray:
    """MCU rows × columns that a box reaches into."""
    rows, columns = -(-shape[0] // mcu[0]), -(-shape[1] // mcu[1])
    touched = np.zeros((rows, columns), bool)
    for x, y, w, h in boxes:
        touched[y // mcu[0]:(y + h - 1) // mcu[0] + 1, x // mcu[1]:(x + w - 1) // mcu[1] + 1] = True
    return touched


def _pixels_of(mcus: np.ndarray, mcu, shape) -> np.ndarray:
    return mcus.repeat(mcu[0], axis=0).repeat(mcu[1], axis=1)[:shape[0], :shape[1]]


@pytest.mark.parametrize("source", [PANORAMA, RICOH], ids=["progressive-420", "baseline-422"])
def test_unchanged_blocks_decode_exactly_as_the_source(tmp_path, source):
    picture = read_image(source)
    shape = picture.pixels.shape[:2]
    boxes = _street_boxes(shape[1], shape[0], 0.08)
    after = _paint(picture.pixels, boxes)
    written = jpeg_blocks.write(jpeg_blocks.read_source(source), picture.pixels, after, picture.metadata)
    touched = _touched(boxes, shape, written.mcu)
    assert written.mcu == ((16, 16) if source == PANORAMA else (8, 16))
    assert np.array_equal(written.reencoded, touched)  # exactly the MCUs the change reaches
    assert 0.05 < written.reencoded.mean() < 0.15

    (tmp_path / "out.jpg").write_bytes(written.data)
    decoded = read_image(tmp_path / "out.jpg").pixels
    assert decoded.shape == picture.pixels.shape
    assert cv2.imread(str(tmp_path / "out.jpg")).shape == picture.pixels.shape  # OpenCV reads it too
    reencoded = _pixels_of(written.reencoded, written.mcu, shape)
    differs = (decoded != picture.pixels).any(axis=2)
    # Outside the re-encoded MCUs only the pixel row or column next to one may differ (chroma is
    # interpolated across MCU edges); everything else is the source's decoded pixels exactly.
    edge = cv2.dilate(reencoded.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~reencoded
    assert not (differs & ~reencoded & ~edge).any()
    assert cv2.absdiff(decoded, picture.pixels)[edge].mean() < 2
    # Inside, the new content (re-encoded with the source's tables), not the old
    assert cv2.absdiff(decoded, after)[reencoded].mean() < 3
    assert cv2.absdiff(decoded, picture.pixels)[reencoded].mean() > 30
    assert len(written.data) < 1.2 * source.stat().st_size


def test_write_image_keeps_the_metadata_and_the_source(tmp_path):
    for source in (RICOH, LUND):
        before = hashlib.sha256(source.read_bytes()).hexdigest()
        picture = read_image(source)
        height, width = picture.pixels.shape[:2]
        painted = _paint(picture.pixels, [(width // 3, height // 2, width // 10, height // 8)])
        assert write_image(tmp_path / "out.jpg", Picture(painted, picture.metadata), like=picture) is None
        again = read_image(tmp_path / "out.jpg")
        assert again.metadata == picture.metadata  # EXIF, XMP and ICC: the same bytes
        assert hashlib.sha256(source.read_bytes()).hexdigest() == before
        assert np.array_equal(again.pixels[:height // 3], picture.pixels[:height // 3])
    assert b"GPano" in read_image(RICOH).metadata["xmp"] and "icc_profile" in read_image(LUND).metadata


@pytest.mark.parametrize("options", [{"progressive": True}, {"restart_marker_rows": 1}, {"subsampling": 0},
                                     {"quality": 100}], ids=["progressive", "restart-markers", "444", "q100"])
def test_other_jpeg_kinds_odd_sizes_and_grey_are_written_block_by_block(tmp_path, options):
    base = Image.open(LUND).crop((3, 5, 1004, 672))  # 1001×667: partial MCUs at the right and bottom
    for mode in ("RGB", "L"):
        source = tmp_path / f"source-{mode}.jpg"
        base.convert(mode).save(source, "JPEG", **options)
        picture = read_image(source)
        after = _paint(picture.pixels, [(0, 0, 21, 9), (990, 300, 11, 40), (500, 660, 40, 7)])
        assert write_image(tmp_path / "out.jpg", Picture(after), like=picture) is None
        decoded = read_image(tmp_path / "out.jpg").pixels
        written = jpeg_blocks.write(jpeg_blocks.read_source(source), picture.pixels, after, {})
        assert written.data == (tmp_path / "out.jpg").read_bytes()
        reencoded = _pixels_of(written.reencoded, written.mcu, after.shape[:2])
        near = cv2.dilate(reencoded.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert np.array_equal(decoded[~near], picture.pixels[~near])
        assert cv2.absdiff(decoded, after)[reencoded].mean() < 4


def _scan_data(data: bytes) -> bytes:
    """A one-scan JPEG's entropy-coded data, after its SOS segment."""
    start = data.index(b"\xff\xda")
    return data[start + 2 + int.from_bytes(data[start + 2:start + 4], "big"):]


def test_a_baseline_source_keeps_its_huffman_tables_and_its_untouched_bytes(tmp_path):
    source = tmp_path / "source.jpg"
    Image.open(LUND).save(source, "JPEG", quality=90)  # libjpeg's standard tables
    picture = read_image(source)
    unchanged = jpeg_blocks.write(jpeg_blocks.read_source(source), picture.pixels, picture.pixels, {})
    assert not unchanged.reencoded.any()
    assert _scan_data(unchanged.data) == _scan_data(source.read_bytes())  # the same bits, one pass
    painted = _paint(picture.pixels, [(200, 150, 300, 200)])
    written = jpeg_blocks.write(jpeg_blocks.read_source(source), picture.pixels, painted, {})
    tables = jpeg_blocks.read_frame(source.read_bytes()).huffman
    assert tables is not None and jpeg_blocks.read_frame(written.data).huffman == tables


def _error_where_reencoded(tmp_path, written: jpeg_blocks.Blockwise, source: np.ndarray, painted: np.ndarray) -> float:
    """The written file decoded: the source's pixels exactly away from the re-encoded MCUs (checked),
    and its mean difference from ``painted`` in them."""
    (tmp_path / "out.jpg").write_bytes(written.data)
    decoded = read_image(tmp_path / "out.jpg").pixels
    reencoded = _pixels_of(written.reencoded, written.mcu, painted.shape[:2])
    near = cv2.dilate(reencoded.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.array_equal(decoded[~near], source[~near])
    return float(cv2.absdiff(decoded, painted)[reencoded].mean())


def test_tables_made_for_the_image_when_the_sources_lack_a_code(tmp_path):
    source = tmp_path / "optimized.jpg"
    Image.new("RGB", (256, 128), (90, 120, 150)).save(source, "JPEG", optimize=True)  # flat: few symbols
    picture = read_image(source)
    painted = picture.pixels.copy()
    painted[32:96, 96:160] = read_image(LUND).pixels[300:364, 400:464]  # a street: symbols the flat lacks
    written = jpeg_blocks.write(jpeg_blocks.read_source(source), picture.pixels, painted, {})
    assert jpeg_blocks.read_frame(written.data).huffman != jpeg_blocks.read_frame(source.read_bytes()).huffman
    assert _error_where_reencoded(tmp_path, written, picture.pixels, painted) < 6


def test_a_code_missing_mid_block_makes_new_tables_not_a_half_written_scan(tmp_path):
    # The source's optimized tables lack AC symbols the inverted boxes need; the first one missing
    # in the middle of a block must stop the one-pass scan, not be written over by the next code.
    picture = read_image(SGBLUR)
    painted = _paint(picture.pixels, [(257, 232, 62, 35)])
    written = jpeg_blocks.write(jpeg_blocks.read_source(SGBLUR), picture.pixels, painted, {})
    assert _error_where_reencoded(tmp_path, written, picture.pixels, painted) < 4
    assert jpeg_blocks.read_frame(written.data).huffman != jpeg_blocks.read_frame(SGBLUR.read_bytes()).huffman


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def test_markers_without_a_length_and_tables_no_decoder_takes(tmp_path):
    source = tmp_path / "source.jpg"
    Image.open(LUND).crop((0, 0, 200, 136)).save(source, "JPEG", quality=80)
    data = source.read_bytes()
    sof, sos = data.index(b"\xff\xc0"), data.index(b"\xff\xda")
    dht = data.index(b"\xff\xc4")
    scan_header = data[sos:sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")]
    # Three 1-bit codes: no prefix code. libjpeg refuses such a table in the file written with it.
    broken = bytes([0, 3, *[0] * 6, 9, *[0] * 8, *range(12)])
    ac = [0, 0xF0] + [run << 4 | size for run in range(16) for size in range(1, 11)]
    broken += bytes([0x10, 3, *[0] * 6, 159, *[0] * 8, *ac])
    broken = _segment(0xC4, broken + bytes([1]) + broken[1:29] + bytes([0x11]) + broken[30:]) + scan_header
    # RST0 then APP1 before the tables: libjpeg reads RST0 without a length; a walk that took the
    # APP1 marker for RST0's length would land 65505 bytes on, in APP2, on the broken tables.
    app1 = bytearray(65529)
    land = sof + 2 + 0xFFE1 - (sof + 2 + 4)  # in APP1's payload
    app1[land:land + 4] = b"\xff\xfe" + (len(app1) - land - 2 + 4 + 10).to_bytes(2, "big")
    crafted = data[:dht] + b"\xff\xd0" + _segment(0xE1, bytes(app1)) + \
        _segment(0xE2, b"Y" * 10 + broken + b"Z" * 10) + data[dht:]
    hostile = tmp_path / "hostile.jpg"
    hostile.write_bytes(crafted)
    assert jpeg_blocks.read_frame(crafted).huffman == jpeg_blocks.read_frame(data).huffman
    picture = read_image(hostile)
    after = _paint(picture.pixels, [(50, 40, 40, 30)])
    assert write_image(tmp_path / "out.jpg", Picture(after), like=picture) is None
    assert cv2.imread(str(tmp_path / "out.jpg")) is not None
    decoded = read_image(tmp_path / "out.jpg").pixels
    assert np.array_equal(decoded[:31], picture.pixels[:31])
    # Tables no decoder takes are never taken, even as the last ones before the scan.
    assert jpeg_blocks.read_frame(data[:sos] + broken + data[sos:]).huffman == jpeg_blocks.read_frame(data).huffman


def test_stray_bytes_and_ff00_between_segments_are_skipped_as_libjpeg_skips_them(tmp_path):
    source = tmp_path / "source.jpg"
    Image.open(LUND).crop((0, 0, 96, 64)).save(source, "JPEG", quality=90)
    data = source.read_bytes()
    sos, dqt = data.index(b"\xff\xda"), data.index(b"\xff\xdb")
    fake = bytearray(data[dqt:dqt + 2 + int.from_bytes(data[dqt + 2:dqt + 4], "big")])
    fake[5] += 40  # another luma DC quantization value
    # libjpeg drops FF 00, skips 00 0C and reads APP1; a walk that took 00 0C for FF 00's length
    # would land in APP1's payload, on the fake table
    crafted = data[:sos] + b"\xff\x00\x00\x0c" + _segment(0xE1, b"x" * 6 + bytes(fake)) + data[sos:]
    assert np.array_equal(jpeg_blocks.read_frame(crafted).quant, jpeg_blocks.read_frame(data).quant)
    hostile = tmp_path / "ff00.jpg"
    hostile.write_bytes(crafted)
    picture = read_image(hostile)
    after = _paint(picture.pixels, [(0, 0, 16, 16)])
    assert write_image(tmp_path / "out.jpg", Picture(after), like=picture) is None
    assert np.array_equal(read_image(tmp_path / "out.jpg").pixels[:, 24:], picture.pixels[:, 24:])

    # An RGB-coded source (Adobe transform 0, component ids 1, 2, 3) with a stray byte before its Adobe segment
    Image.open(LUND).crop((0, 0, 96, 64)).save(source, "JPEG", keep_rgb=True)
    data = bytearray(source.read_bytes())
    sof, sos, adobe = data.index(b"\xff\xc0"), data.index(b"\xff\xda"), data.index(b"\xff\xee")
    data[sof + 10:sof + 17:3] = data[sos + 5:sos + 10:2] = b"\x01\x02\x03"
    app14 = data[adobe:adobe + 2 + int.from_bytes(data[adobe + 2:adobe + 4], "big")]
    data[adobe:adobe + len(app14)] = b""
    sos = data.index(b"\xff\xda")
    hostile.write_bytes(data[:sos] + b"\x00" + app14 + data[sos:])
    picture = read_image(hostile)
    assert np.array_equal(picture.pixels, read_image(source).pixels)
    after = _paint(picture.pixels, [(0, 0, 16, 16)])
    assert write_image(tmp_path / "out.jpg", Picture(after), like=picture) == "RGB-coded, not YCbCr"

def test_unsupported_sources_are_encoded_whole_with_the_reason(tmp_path):
    source = tmp_path / "cmyk.jpg"
    Image.open(LUND).convert("CMYK").save(source, "JPEG")
    picture = read_image(source)
    after = _paint(picture.pixels, [(100, 100, 50, 50)])
    assert write_image(tmp_path / "out.jpg", Picture(after), like=picture) == "CMYK or YCCK (4 components)"
    assert cv2.absdiff(read_image(tmp_path / "out.jpg").pixels, after).mean() < 2  # Pillow, quality 95

    copy = tmp_path / "copy.jpg"
    copy.write_bytes(LUND.read_bytes())
    picture = read_image(copy)
    copy.write_bytes(RICOH.read_bytes())  # another image under the same name: its blocks must not be copied
    reason = write_image(tmp_path / "out.jpg", Picture(picture.pixels), like=picture)
    assert reason == "the source file changed since it was read"
    assert cv2.absdiff(read_image(tmp_path / "out.jpg").pixels, picture.pixels).mean() < 2

    # Replaced by a file of the same size and modification time whose pixels differ (a quantization value)
    copy.write_bytes(LUND.read_bytes())
    picture, stat = read_image(copy), copy.stat()
    other = bytearray(LUND.read_bytes())
    other[other.index(b"\xff\xdb") + 5] += 7
    (tmp_path / "other.jpg").write_bytes(other)
    os.utime(tmp_path / "other.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(tmp_path / "other.jpg", copy)
    assert copy.stat().st_size == stat.st_size and copy.stat().st_mtime_ns == stat.st_mtime_ns
    reason = write_image(tmp_path / "out.jpg", Picture(picture.pixels), like=picture)
    assert reason == "the source file changed since it was read"


def test_a_source_gone_just_after_its_check_is_encoded_whole(tmp_path, monkeypatch):
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(LUND.read_bytes())
    picture = read_image(copy)
    copy.unlink()
    monkeypatch.setattr(SourceFile, "unchanged", lambda self: True)  # deleted between the check and the read
    reason = write_image(tmp_path / "out.jpg", Picture(picture.pixels), like=picture)
    assert reason == "the source file changed while it was read"
    assert cv2.absdiff(read_image(tmp_path / "out.jpg").pixels, picture.pixels).mean() < 2


def test_an_rgb_coded_source_with_a_jfif_marker_libjpeg_ignores_is_encoded_whole(tmp_path):
    rgb = tmp_path / "rgb.jpg"
    Image.open(LUND).crop((0, 0, 96, 64)).save(rgb, "JPEG", keep_rgb=True)  # Adobe transform 0: RGB-coded
    # A 12-byte JFIF APP0: Pillow reads it, libjpeg wants 14 bytes to take it as JFIF and so decodes RGB
    source = tmp_path / "short_jfif.jpg"
    source.write_bytes(rgb.read_bytes()[:2] + b"\xff\xe0\x00\x0eJFIF\x00\x01\x01\x00\x00\x01\x00\x01" +
                       rgb.read_bytes()[2:])
    picture = read_image(source)
    assert np.array_equal(picture.pixels, read_image(rgb).pixels)
    after = _paint(picture.pixels, [(0, 0, 16, 16)])
    assert write_image(tmp_path / "out.jpg", Picture(after), like=picture) == "RGB-coded, not YCbCr"
    assert cv2.absdiff(read_image(tmp_path / "out.jpg").pixels, after).mean() < 2  # Pillow, quality 95

def test_huffman_tables_stay_within_16_bits_and_leave_the_all_ones_code_free():
    fibonacci = [1, 1]
    while len(fibonacci) < 40:  # counts that make an unlimited Huffman code 39 bits deep
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    for counts in (np.array(fibonacci + [0] * 216), np.random.default_rng(1).integers(0, 1000, 256), np.eye(256)[7]):
        bits, values = huffman_table(counts)
        assert len(bits) == 16 and sum(bits) == len(values) == np.count_nonzero(counts)
        assert sorted(values) == list(np.flatnonzero(counts))
        assert sum(n / 2 ** length for length, n in enumerate(bits, start=1)) < 1  # a prefix code, one code spare
