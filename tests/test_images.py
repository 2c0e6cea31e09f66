"""Image I/O: formats in, metadata kept in JPEG, lossless elsewhere, bad files refused."""

import hashlib

import cv2
import numpy as np
import pytest

from helpers import OPENMVG, SHARED, WITHOUT_SHARED
from scanvan_sfm.images import ImageError, Picture, read_image, write_image

if not OPENMVG.is_dir():  # what follows reads it as the module loads
    pytest.skip(WITHOUT_SHARED, allow_module_level=True)

RICOH = OPENMVG / "360_flat_gps" / "images" / "R0010210.JPG"
LUND = SHARED / "images" / "opensfm_lund_01.jpg"


def test_jpeg_keeps_exif_xmp_gpano_and_icc(tmp_path):
    for source in (RICOH, LUND):
        before = hashlib.sha256(source.read_bytes()).hexdigest()
        picture = read_image(source)
        write_image(tmp_path / "out.jpg", picture)
        again = read_image(tmp_path / "out.jpg")
        assert again.metadata == picture.metadata and set(picture.metadata) >= {"exif", "xmp"}
        assert hashlib.sha256(source.read_bytes()).hexdigest() == before  # the original is untouched
        assert np.abs(again.pixels.astype(int) - picture.pixels).mean() < 2
    assert b"GPano" in read_image(RICOH).metadata["xmp"] and "icc_profile" in read_image(LUND).metadata


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_lossless_formats_round_trip(tmp_path, suffix):
    rgb = read_image(LUND).pixels
    for pixels in (rgb, rgb[:, :, 0], np.dstack([rgb, rgb[:, :, 1]])):
        write_image(tmp_path / f"x{suffix}", Picture(pixels))
        assert np.array_equal(read_image(tmp_path / f"x{suffix}").pixels, pixels)


def test_sixteen_bit_colour_survives(tmp_path):
    deep = (read_image(LUND).pixels.astype(np.uint16) * 257) + 3
    for suffix in (".png", ".tif"):
        write_image(tmp_path / f"deep{suffix}", Picture(deep))
        back = read_image(tmp_path / f"deep{suffix}").pixels
        assert back.dtype == np.uint16 and np.array_equal(back, deep)
    with pytest.raises(ImageError, match="JPEG needs 8-bit"):
        write_image(tmp_path / "deep.jpg", Picture(deep))


def test_channel_order_is_rgb_for_every_format(tmp_path):
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[:, :, 0] = 250  # red
    for suffix in (".png", ".jpg", ".bmp", ".tif"):
        write_image(tmp_path / f"red{suffix}", Picture(pixels))
        back = read_image(tmp_path / f"red{suffix}").pixels
        assert back[:, :, 0].min() > 240 and back[:, :, 2].max() < 10
        assert cv2.imread(str(tmp_path / f"red{suffix}"))[:, :, 2].min() > 240  # what other tools see


@pytest.mark.parametrize("name,data", [
    ("cut.jpg", LUND.read_bytes()[:40000]),
    ("cut.png", None),
    ("garbage.jpg", b"\xff\xd8\xff not a jpeg"),
    ("empty.png", b""),
])
def test_bad_images_are_refused(tmp_path, name, data):
    if data is None:
        write_image(tmp_path / "whole.png", read_image(LUND))
        data = (tmp_path / "whole.png").read_bytes()[:30000]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageError, match=name):
        read_image(tmp_path / name)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="unsupported"):
        read_image(tmp_path / "x.gif")


def test_the_exif_thumbnail_of_the_original_is_not_published(tmp_path):
    """A Theta's EXIF carries a 160×80 copy of the unanonymized panorama (IFD1): it is dropped;
    every other tag stays (the sub-IFD pointers move, their contents do not)."""
    from PIL import ExifTags, Image

    original = Image.open(RICOH).getexif()
    assert original.get_ifd(ExifTags.IFD.IFD1)  # the thumbnail is there
    write_image(tmp_path / "out.jpg", read_image(RICOH))
    published = Image.open(tmp_path / "out.jpg").getexif()
    assert not published.get_ifd(ExifTags.IFD.IFD1) and b"\xff\xd8" not in read_image(RICOH).metadata["exif"]
    pointers = {ExifTags.Base.ExifOffset, ExifTags.Base.GPSInfo, ExifTags.Base.ExifInteroperabilityOffset}
    for ifd in (None, ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        kept, source = ({k: v for k, v in (e.get_ifd(ifd) if ifd else e).items() if k not in pointers}
                        for e in (published, original))
        assert kept == source
    assert read_image(LUND).metadata["exif"] == Image.open(LUND).info["exif"]  # no thumbnail: the bytes as they are


def test_xmp_thumbnails_of_the_original_are_not_published(tmp_path):
    """Adobe tools keep a base64 JPEG copy of the picture in the XMP (``xmp:Thumbnails``), Google's
    a second image (``GImage:Data``): both are unanonymized copies and are dropped; the GPano tags
    and everything else in the XMP stay as they are."""
    import base64

    from PIL import Image

    ricoh = read_image(RICOH)
    small = tmp_path / "small.jpg"
    Image.fromarray(ricoh.pixels[::32, ::32]).save(small)
    preview = base64.b64encode(small.read_bytes())
    alt = (b'<xmp:Thumbnails><rdf:Alt><rdf:li rdf:parseType="Resource"><xmpGImg:format>JPEG</xmpGImg:format>'
           b"<xmpGImg:image>" + preview + b"</xmpGImg:image></rdf:li></rdf:Alt></xmp:Thumbnails>")
    xmp = ricoh.metadata["xmp"]
    assert b"GPano" in xmp and b"</rdf:Description>" in xmp
    tagged = xmp.replace(b"</rdf:Description>", alt + b"</rdf:Description>", 1)
    tagged = tagged.replace(b"<rdf:Description ", b'<rdf:Description GImage:Data="' + preview + b'" ', 1)
    source = tmp_path / "source.jpg"
    write_image(source, Picture(ricoh.pixels, ricoh.metadata | {"xmp": tagged}))
    assert preview in source.read_bytes()
    published = tmp_path / "out.jpg"
    write_image(published, read_image(source))
    assert preview[:64] not in published.read_bytes()
    assert read_image(published).metadata["xmp"] == xmp  # the rest as it was
    assert read_image(RICOH).metadata["xmp"] == Image.open(RICOH).info["xmp"]  # no preview: the bytes as they are
