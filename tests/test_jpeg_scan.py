"""A baseline scan indexed by MCU and spliced: the coefficients libjpeg reads, the same file as
coding every block again, and damaged or hostile scans refused without a crash."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import OPENMVG, SHARED, WITHOUT_SHARED
from scanvan_sfm import jpeg_blocks, jpeg_scan
from scanvan_sfm.images import read_image

if not OPENMVG.is_dir():  # what follows reads it as the module loads
    pytest.skip(WITHOUT_SHARED, allow_module_level=True)

RICOH = OPENMVG / "360_flat_gps" / "images" / "R0010213.JPG"   # baseline 4:2:2, 5376×2688
LUND = SHARED / "images" / "opensfm_lund_01.jpg"               # baseline 4:2:0


def _libjpeg(source) -> list[np.ndarray]:
    frame = jpeg_blocks.read_frame(source.read_bytes())
    coefficients, _, _ = jpeg_blocks.read_coefficients(source, frame)
    rows, columns = frame.mcus
    return [jpeg_blocks._pad(c, (rows * v, columns * h)) for c, (h, v) in zip(coefficients, frame.factors, strict=True)]


def _sources(tmp_path):
    """The Ricoh panorama, and lund crops of odd size in grey, 4:4:4 and 4:2:0 with optimized tables."""
    yield RICOH
    base = Image.open(LUND).crop((3, 5, 1004, 672))
    for name, mode, options in (("grey", "L", {}), ("444", "RGB", {"subsampling": 0}),
                                ("optimized", "RGB", {"optimize": True, "quality": 70})):
        path = tmp_path / f"{name}.jpg"
        base.convert(mode).save(path, "JPEG", **options)
        yield path


def test_the_index_decodes_the_coefficients_libjpeg_reads(tmp_path):
    for source in _sources(tmp_path):
        read = jpeg_blocks.read_source(source)
        assert read.scan is not None and read.read is None, source.name
        for ours, theirs in zip(read.coefficients, _libjpeg(source), strict=True):
            assert np.array_equal(ours, theirs), source.name
        assert np.array_equal(read.quant[read.slots], jpeg_blocks.read_coefficients(source, read.frame)[1][read.slots])


def test_a_splice_is_the_file_that_coding_every_block_again_gives(tmp_path):
    for source in _sources(tmp_path):
        picture = read_image(source)
        height, width = picture.pixels.shape[:2]
        after = picture.pixels.copy()
        for x, y in ((0, 0), (width // 3, height // 2), (width - 9, height - 5)):  # edges and the middle
            after[y:y + height // 9, x:x + width // 13] //= 2
        spliced = jpeg_blocks.read_source(source)
        coded = jpeg_blocks.Source(spliced.frame, spliced.quant, spliced.slots, read=_libjpeg(source))
        written = jpeg_blocks.write(spliced, picture.pixels, after, picture.metadata)
        assert 0 < written.reencoded.mean() < 0.2
        assert written.data == jpeg_blocks.write(coded, picture.pixels, after, picture.metadata).data, source.name


def test_a_kept_mcu_whose_dc_difference_has_no_code_is_coded_with_new_tables(tmp_path):
    source = tmp_path / "flat.jpg"
    Image.new("RGB", (64, 16), (200, 200, 200)).save(source, "JPEG", optimize=True)  # 4 MCUs, 2 DC categories
    scan = jpeg_blocks.read_source(source).scan
    first = int(scan.first_dc[0, 0])
    keep = np.array([[False, True, True, True]])
    fresh = [np.zeros((1, v, h, 64), np.int16) for h, v in scan.factors]
    for c in range(len(fresh)):
        fresh[c][..., 0] = scan.first_dc[0, c]
    assert jpeg_scan.splice(scan, keep, fresh) is not None  # the same DC values: every code is there
    # A first MCU whose DC difference has the source's category, but whose next one does not
    fresh[0][..., 0] = 2 ** (first.bit_length() - 1)
    assert (first - int(fresh[0][0, 0, 0, 0])).bit_length() != first.bit_length()
    assert jpeg_scan.splice(scan, keep, fresh) is None
    picture = read_image(source)
    after = picture.pixels.copy()
    after[:16, :16] = 90
    written = jpeg_blocks.write(jpeg_blocks.read_source(source), picture.pixels, after, {})
    assert jpeg_blocks.read_frame(written.data).huffman != jpeg_blocks.read_frame(source.read_bytes()).huffman
    (tmp_path / "out.jpg").write_bytes(written.data)
    decoded = read_image(tmp_path / "out.jpg").pixels
    assert np.abs(decoded[:, 24:].astype(int) - 200).max() <= 1 and np.abs(decoded[:, :8].astype(int) - 90).max() <= 2


def test_a_truncated_scan_is_not_indexed_and_libjpeg_reads_it(tmp_path):
    data = LUND.read_bytes()
    frame = jpeg_blocks.read_frame(data)
    for cut in (frame.scan_at, frame.scan_at + 1, len(data) // 2, len(data) - 200):
        assert jpeg_scan.index(data[frame.scan_at:cut], frame.huffman, frame.factors, frame.mcus) is None
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[:len(data) // 2])
    source = jpeg_blocks.read_source(truncated)  # libjpeg fills what is missing
    assert source.scan is None and source.read is not None


@st.composite
def _damage(draw, size):
    return draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=6))


SMALL = Image.open(LUND).crop((0, 0, 96, 64))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_scan_is_refused_or_read_as_libjpeg_reads_it(tmp_path, data):
    clean = tmp_path / "clean.jpg"
    if not clean.exists():
        SMALL.save(clean, "JPEG", quality=85)
    original = clean.read_bytes()
    frame = jpeg_blocks.read_frame(original)
    scan = bytearray(original[frame.scan_at:])
    for at, value in data.draw(_damage(len(scan) - 2)):
        scan[at] = value
    indexed = jpeg_scan.index(bytes(scan), frame.huffman, frame.factors, frame.mcus)
    if indexed is None:
        return
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(original[:frame.scan_at] + bytes(scan))
    for ours, theirs in zip(indexed.coefficients(), _libjpeg(damaged), strict=True):
        assert np.array_equal(ours, theirs)
