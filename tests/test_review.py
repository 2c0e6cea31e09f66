"""The review page's parts: the thumbnail with its mask outlined (view core), and the cards' order,
flags and escaping (``review``). The page itself in a browser: tests/test_review_browser.py."""

from html.parser import HTMLParser

import numpy as np
import pytest

from scanvan_sfm.dataset import Manifest, ViewEntry
from scanvan_sfm.review import cards, page
from scanvan_sfm.view import OUTLINE, thumbnail


def gradient(height: int, width: int) -> np.ndarray:
    """A grey ramp: no pixel of it is the outline's colour."""
    ramp = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)
    return np.repeat(np.broadcast_to(ramp, (height, width))[:, :, None], 3, axis=2).copy()


def outlined(small: np.ndarray) -> np.ndarray:
    return (small == OUTLINE).all(axis=2)


def test_thumbnail_outline_runs_just_outside_the_mask_edge():
    image = gradient(640, 1280)
    mask = np.zeros((640, 1280), bool)
    mask[200:400, 300:700] = True          # rows 50–99, columns 75–174 at a quarter of the size
    small = thumbnail(image, mask)
    assert small.shape == (160, 320, 3) and small.dtype == np.uint8
    expected = np.zeros((160, 320), bool)
    expected[49:101, 74:176] = True
    expected[50:100, 75:175] = False       # the one-pixel ring around the masked rectangle
    assert np.array_equal(outlined(small), expected)
    # elsewhere the picture, shrunk: the ramp's grey at the same place
    assert abs(int(small[10, 160, 0]) - int(image[40, 640, 0])) <= 2


def test_thumbnail_outlines_a_region_smaller_than_one_of_its_pixels():
    image = gradient(4000, 8000)           # 25 × 25 source pixels a thumbnail pixel
    mask = np.zeros((4000, 8000), bool)
    mask[2000:2009, 3000:3009] = True      # a far person after the masks' 4 px dilation
    ring = np.argwhere(outlined(thumbnail(image, mask)))
    assert len(ring) and (np.abs(ring - [80, 120]).max(axis=1) <= 2).all()


@pytest.mark.parametrize("pixels", [np.full((300, 600), 40, np.uint8), np.full((300, 600, 4), 40, np.uint8),
                                    np.full((300, 600, 3), 40 * 257, np.uint16)], ids=["grey", "rgba", "16-bit"])
def test_thumbnail_of_any_published_image_is_8_bit_rgb(pixels):
    mask = np.zeros((300, 600), bool)
    mask[100:200, 100:200] = True
    small = thumbnail(pixels, mask)
    assert small.shape == (160, 320, 3) and small.dtype == np.uint8
    assert small[0, 0].tolist() == [40, 40, 40] and outlined(small).any()


ROOT = "/data/street/images"


def entry(name: str, share: float | None = 0.01, detected: float | None = 0.01, **fields) -> ViewEntry:
    done = fields.get("status", "done") == "done"
    return ViewEntry(source=name, source_path=f"{ROOT}/{name}", status=fields.pop("status", "done"),
                     masked_share=share, detected_share=detected,
                     outputs={"mask": f"masks/{name}-mask.png", "output": f"blur/{name}",
                              "thumbnail": f"review/{name}.jpg"} if done else {}, **fields)


def test_cards_failed_first_then_most_masked_with_their_flags():
    manifest = Manifest(images_root=ROOT, views={
        "0": entry("a.jpg", 0.02),
        "1": entry("b.jpg", 0.30),                               # more than 25 % masked
        "2": entry("c.jpg", 0.0, 0.0),                           # nothing detected
        "3": entry("d.jpg", status="failed", reason=f"{ROOT}/d.jpg: unreadable or truncated image"),
        "4": entry("e.jpg", 0.05, 0.0),                          # a report's mask only
        "5": entry("f.jpg", 0.25),                               # not more than 25 %
        "6": entry("g.jpg", 0.10),                               # its apply failed: the old image stays
        "7": entry("h.jpg", status="pending"),
    })
    shown = cards(manifest, {6: f"{ROOT}/g.jpg: the original changed since anonymize ran (rerun anonymize)"})
    assert [c.view_id for c in shown] == [6, 3, 7, 1, 5, 4, 0, 2]
    flags = {c.view_id: c.flags for c in shown}
    assert flags[3] == {"failed": "failed: d.jpg: unreadable or truncated image"}
    assert flags[6] == {"failed": "failed: g.jpg: the original changed since anonymize ran (rerun anonymize)"}
    assert flags[7] == {"failed": "failed: not processed"}
    assert flags[1] == {"masked": "more than 25 % masked"}
    assert flags[2] == flags[4] == {"undetected": "nothing detected"}
    assert flags[0] == flags[5] == {}
    assert shown[0].image == "blur/g.jpg" and shown[1].image is None  # a failed view shows no image
    tighter = cards(manifest, flag_over=0.04)
    assert {c.view_id for c in tighter if "masked" in c.flags} == {1, 4, 5, 6}


class Parsed(HTMLParser):
    """The page's links, images, cards and text."""

    def __init__(self, text: str):
        super().__init__()
        self.links, self.images, self.cards, self.text = [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs["href"])
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "figure":
            self.cards.append(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_page_escapes_names_and_links_inside_the_output_only():
    hostile = '<img src=x onerror="alert(1)">&#?.jpg'
    manifest = Manifest(images_root=ROOT, views={
        "0": entry(hostile, 0.4),
        "1": entry("sub/b c.jpg", status="failed", reason=f"{ROOT}/sub/b c.jpg: <b>not</b> found"),
    })
    text = page(manifest)
    assert "<img src=x" not in text and "<b>not</b>" not in text and ROOT not in text
    parsed = Parsed(text)
    assert [c["data-view"] for c in parsed.cards] == ["1", "0"]
    assert parsed.images == ["review/%3Cimg%20src%3Dx%20onerror%3D%22alert%281%29%22%3E%26%23%3F.jpg.jpg"]
    assert parsed.links == ["blur/%3Cimg%20src%3Dx%20onerror%3D%22alert%281%29%22%3E%26%23%3F.jpg"]
    assert "failed: b c.jpg: <b>not</b> found" in "".join(parsed.text)  # shown as text
    assert "1 failed · 1 more than 25 % masked" in "".join(parsed.text)
    assert "<script" not in text and "://" not in text  # no script, nothing fetched from anywhere
