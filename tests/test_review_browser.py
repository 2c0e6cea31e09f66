"""The review page of a real run, opened from disk in Debian's Chromium (the ``browser`` fixture,
driven by Playwright): the bundled lund scene with one image truncated (a failed view) and one
replaced by a flat grey picture (nothing detected). A screenshot goes to ``out/screenshots/``."""

import shutil
from urllib.parse import unquote, urljoin

import cv2
import numpy as np
import orjson
import pytest
from PIL import Image

from helpers import PROJECT, SHOTS, cli
from scanvan_sfm.images import read_image, read_mask
from scanvan_sfm.view import thumbnail
from test_review import Parsed


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """anonymize on a copy of fixtures/lund: view 4 (05.jpg) truncated, view 6 (07.jpg) flat grey;
    views more than 2 % masked flagged."""
    scene = tmp_path_factory.mktemp("lund") / "lund"
    shutil.copytree(PROJECT / "fixtures" / "lund", scene, ignore=shutil.ignore_patterns("golden"))
    data = (scene / "images" / "05.jpg").read_bytes()
    (scene / "images" / "05.jpg").write_bytes(data[:len(data) // 2])
    Image.new("RGB", (1024, 768), (128, 140, 150)).save(scene / "images" / "07.jpg", quality=90)
    out = scene.parent / "out"
    result = cli("anonymize", scene / "sfm_data_bin.json", "--out", out, "--flag-masked-over", 2)
    assert result.returncode == 1, result.stderr  # one view failed
    return scene, out / "anonymization"


def test_review_page_opens_from_disk_sorted_and_flagged(browser, run):
    scene, anonymization = run
    manifest = orjson.loads((anonymization / "manifest.json").read_bytes())["views"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems, requested = [], []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("request", lambda r: requested.append(r.url))
    page.goto((anonymization / "review.html").as_uri())
    for image in page.locator("img").all():  # lazy: each loads once it is near the screen
        image.scroll_into_view_if_needed()
    page.wait_for_function("[...document.images].every(i => i.complete)")
    assert page.evaluate("[...document.images].map(i => i.naturalWidth)") == [320] * 9  # view 4 has none

    cards = page.evaluate("[...document.querySelectorAll('figure')].map(f => [f.dataset.view, f.dataset.masked,"
                          " f.dataset.flags])")
    assert cards[0] == ["4", "", "failed"]  # the failed view first, then the most masked
    shares = [float(share) for _, share, _ in cards[1:]]
    assert shares == sorted(shares, reverse=True) and shares[-1] == 0.0
    assert {view: float(share) for view, share, _ in cards[1:]} == {
        view: entry["masked_share"] for view, entry in manifest.items() if entry["status"] == "done"}
    crowded = {view: "masked" for view, entry in manifest.items() if (entry.get("masked_share") or 0) > 0.02}
    flagged = {view: flags for view, _, flags in cards if flags}
    assert crowded and flagged == {"4": "failed", "6": "undetected"} | crowded
    assert "failed: 05.jpg: unreadable or truncated image" in page.text_content("#view-4")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review-page.png"), full_page=True)

    page.check("#flagged-only")
    assert page.locator("figure:visible").count() == 2 + len(crowded)
    page.uncheck("#flagged-only")
    assert page.locator("figure:visible").count() == 10

    with page.context.expect_page() as opened:
        page.click("#view-2 a")  # a click opens the published image
    full = opened.value
    full.wait_for_load_state()
    assert unquote(full.url) == (anonymization / "blur" / "03.jpg").as_uri()
    assert full.evaluate("document.images[0].naturalWidth") == 1024
    full.close()
    page.close()
    assert not problems, problems
    assert requested and all(url.startswith(anonymization.as_uri() + "/") for url in requested), requested


def test_review_page_never_shows_an_original(run):
    scene, anonymization = run
    text = (anonymization / "review.html").read_text()
    assert str(scene) not in text and "images/" not in text
    parsed, base = Parsed(text), (anonymization / "review.html").as_uri()
    targets = [unquote(urljoin(base, link)) for link in parsed.links + parsed.images]
    assert len(targets) == 18 and all(t.startswith(anonymization.as_uri() + "/") for t in targets)
    # the thumbnail is the published image's, filled, not the original's
    manifest = orjson.loads((anonymization / "manifest.json").read_bytes())["views"]["2"]
    ours = read_image(anonymization / manifest["outputs"]["thumbnail"]).pixels.astype(int)
    mask = read_mask(anonymization / manifest["outputs"]["mask"])
    published = thumbnail(read_image(anonymization / manifest["outputs"]["output"]).pixels, mask)
    original = thumbnail(read_image(scene / "images" / "03.jpg").pixels, mask)
    inside = cv2.resize(mask.astype(np.uint8), (320, 240), interpolation=cv2.INTER_AREA) == 1
    assert inside.sum() > 100
    assert np.abs(ours - published)[inside].mean() < 6   # JPEG at quality 85: measured 4.2
    assert np.abs(ours - original)[inside].mean() > 20   # measured 27
