"""The reporting pages in a real headless Chromium (Debian's, driven by Playwright): a visitor
draws a polygon by clicking on the sphere, or on a photo of the lund scene, and sends it; a
moderator accepts it; the photo's report is applied and propagated.

Screenshots of each page go to ``out/screenshots/``.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from helpers import PROJECT, SHOTS, cli, inside_polygon, needs_shared, off_edges
from scanvan_sfm.images import read_mask
from scanvan_sfm.reports.models import ReportIn
from scanvan_sfm.reports.photo import TOLERANCE
from scanvan_sfm.reports.spherical import camera_rays, rasterize
from scanvan_sfm.reports.store import ReportStore
from scanvan_sfm.sfm import read_scene
from scanvan_sfm.sfm.cameras import project_camera
from service_helpers import TOKEN, LiveServer, config

pytestmark = needs_shared


def expected_angles(dx: float, dy: float, height: float, vfov: float, yaw: float, pitch: float) -> tuple[float, float]:
    """Report angles (pitch from the top, yaw from the left edge) of a click ``dx, dy`` pixels off the
    centre of a perspective view of vertical field ``vfov`` looking at viewer ``yaw, pitch``."""
    f = height / 2 / math.tan(vfov / 2)
    forward = np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)])
    right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    up = np.cross(forward, right)
    direction = dx * right - dy * up + f * forward
    direction /= np.linalg.norm(direction)
    view_yaw, view_pitch = math.atan2(direction[0], direction[2]), math.asin(direction[1])
    return math.pi / 2 - view_pitch, (view_yaw + math.pi) % (2 * math.pi)


def test_visitor_reports_and_moderator_accepts(browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "reports.sqlite"
    problems: list[str] = []
    with LiveServer(config(db)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/")
        page.click("button[data-id='3']")
        page.wait_for_selector("body[data-viewpoint='3']", timeout=60_000)
        look = {"yaw": 1.0, "pitch": -0.25}
        page.evaluate(f"window.scanvan.viewer.rotate({{yaw: {look['yaw']}, pitch: {look['pitch']}}})")
        vfov = math.radians(page.evaluate("window.scanvan.viewer.state.vFov"))
        assert vfov == pytest.approx(math.radians(60))  # zoom 50 between 30° and 90°, as configured
        box = page.locator("#viewer").bounding_box()
        centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        offsets = [(-90.0, -70.0), (110.0, -60.0), (80.0, 90.0), (-100.0, 75.0)]
        for count, (dx, dy) in enumerate(offsets, start=1):
            page.mouse.click(centre[0] + dx, centre[1] + dy)
            page.wait_for_selector(f"#vertex-count:has-text('{count} corner')")  # one click, not a double click
        page.wait_for_selector("#vertex-count:has-text('4 corners')")
        page.check("input[value='blur_missing']")
        comment = '<img src=x onerror="window.pwned=1"> the man by the door'
        page.fill("#comment", comment)
        page.screenshot(path=str(SHOTS / "report-page.png"))
        page.click("#submit")
        page.wait_for_selector("#confirmation:has-text('report number')")
        confirmation = page.text_content("#confirmation")
        page.screenshot(path=str(SHOTS / "report-confirmation.png"))
        report_id = int(confirmation.split("report number is ")[1].split(";")[0])

        report = ReportStore(db).get(report_id)
        assert report.viewpoint_id == 3 and report.category == "blur_missing" and report.comment == comment
        assert len(report.polygon) == 4
        for vertex, (dx, dy) in zip(report.polygon, offsets, strict=True):
            pitch, yaw = expected_angles(dx, dy, box["height"], vfov, look["yaw"], look["pitch"])
            assert vertex.pitch == pytest.approx(pitch, abs=0.003)
            assert vertex.yaw == pytest.approx(yaw, abs=0.003)

        # the moderator: the page needs the token first
        page.goto(server.url + "/moderate")
        assert page.url.endswith("/moderate/login")
        page.screenshot(path=str(SHOTS / "moderation-login.png"))
        page.fill("#token", TOKEN)
        page.click("button[type='submit']")
        page.wait_for_url(server.url + "/moderate")
        page.click(f"#reports button[data-id='{report_id}']")
        page.wait_for_selector(f"body[data-report='{report_id}']", timeout=60_000)
        page.wait_for_timeout(500)
        details = page.text_content("#report-details")
        assert comment in details and page.evaluate("window.pwned") is None  # shown as text, not run
        page.screenshot(path=str(SHOTS / "moderation-page.png"))
        page.fill("#note", "visible face, confirmed")
        page.click("#accept")
        page.wait_for_selector("#message:has-text('accepted')")
        page.screenshot(path=str(SHOTS / "moderation-accepted.png"))
        page.click("#sign-out")
        page.wait_for_url(server.url + "/moderate/login")
        page.goto(server.url + "/moderate")
        assert page.url.endswith("/moderate/login")  # the session is gone
        page.close()

    accepted = ReportStore(db).get(report_id)
    assert accepted.status == "accepted" and accepted.reviewer_note == "visible face, confirmed"
    assert [a["new_status"] for a in ReportStore(db).audit(report_id)] == ["pending", "accepted"]
    assert not problems, problems


def test_wrong_token_keeps_the_moderation_page_closed(browser, tmp_path):
    with LiveServer(config(tmp_path / "reports.sqlite")) as server:
        page = browser.new_page()
        page.goto(server.url + "/moderate/login")
        page.fill("#token", "not-the-token")
        page.click("button[type='submit']")
        page.wait_for_selector("#message:has-text('Wrong token')")
        page.goto(server.url + "/moderate")
        assert page.url.endswith("/moderate/login")
        page.close()


def test_api_docs_render_offline(browser, tmp_path):
    """/docs: every operation of /openapi.json as a plain page, under the same CSP (no inline
    script, no CDN, no third-party bundle)."""
    problems: list[str] = []
    with LiveServer(config(tmp_path / "reports.sqlite")) as server:
        page = browser.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(server.url + "/docs")
        page.wait_for_selector("body[data-operations]", timeout=30_000)
        listed = "nodes => nodes.map(n => `${n.dataset.method} ${n.dataset.path}`)"
        operations = page.eval_on_selector_all(".operation", listed)
        spec = page.evaluate("fetch('/openapi.json').then(r => r.json())")
        assert operations == [f"{m} {p}" for p, methods in spec["paths"].items() for m in methods]
        assert "post /api/reports" in operations and "get /api/reports/export" in operations
        export = page.text_content(".operation[data-path='/api/reports/export']")
        assert "answer 200" in export and "answer 401" in export
        page.screenshot(path=str(SHOTS / "api-docs.png"), full_page=False)
        page.close()
    assert not problems, problems


def test_polygons_across_the_seam_and_around_the_zenith(browser, tmp_path):
    """Drawn where the panorama's left and right edges meet, and around the top pole: stored as
    drawn, and rasterized into one region across the edges / a cap holding the whole top row."""
    db = tmp_path / "reports.sqlite"
    with LiveServer(config(db)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(server.url + "/")
        page.click("button[data-id='2']")
        page.wait_for_selector("body[data-viewpoint='2']", timeout=60_000)
        for name, look in (("seam", "{yaw: Math.PI, pitch: 0}"), ("zenith", "{yaw: 0, pitch: Math.PI / 2}")):
            page.evaluate(f"window.scanvan.viewer.rotate({look})")
            box = page.locator("#viewer").bounding_box()
            centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for count, (dx, dy) in enumerate([(-120, -100), (120, -100), (120, 100), (-120, 100)], start=1):
                page.mouse.click(centre[0] + dx, centre[1] + dy)
                page.wait_for_selector(f"#vertex-count:has-text('{count} corner')")
            page.screenshot(path=str(SHOTS / f"report-{name}.png"))
            page.click("#submit")
            page.wait_for_selector("#confirmation:has-text('report number')")
        page.close()
    seam, zenith = (np.array([[v.pitch, v.yaw] for v in r.polygon]) for r in ReportStore(db).list())
    assert (seam[:, 1] < 0.5).sum() == 2 and (seam[:, 1] > 2 * math.pi - 0.5).sum() == 2
    mask = rasterize(seam, 5376, 2688)
    assert mask[1344, :150].all() and mask[1344, -150:].all() and not mask[1344, 300:-300].any()
    assert np.ptp(np.sort(zenith[:, 1])) > math.pi and (zenith[:, 0] < 0.5).all()  # corners all around
    assert rasterize(zenith, 5376, 2688)[0].all()


LUND = PROJECT / "fixtures" / "lund"
#: A quadrilateral drawn on view 3 (04.jpg) around the bushes and a door left of the street: 40
#: landmarks, which views 1, 2, 4, 5 and 6 see as well.
DRAWN = np.array([(355.0, 330.0), (480.0, 345.0), (475.0, 520.0), (350.0, 510.0)])


def on_screen(page, pixel) -> tuple[float, float]:
    """Where a pixel of the shown photo is on the screen (from the image element's box)."""
    box = page.locator("#photo img").bounding_box()
    return box["x"] + pixel[0] * box["width"] / 1024, box["y"] + pixel[1] * box["height"] / 768


def test_report_on_a_photo_is_applied_and_propagated(browser, tmp_path):
    """The bundled lund scene (photos, pinhole_radial_k3) served after anonymize: a visitor zooms,
    drags the photo and draws a polygon on it; it is stored as directions through the camera; a
    moderator sees it on the photo and accepts it; ``reports apply --propagate`` puts it in that
    view's mask at the drawn pixels and in the views that see the same landmarks."""
    out, db, problems = tmp_path / "lund", tmp_path / "reports.sqlite", []
    anonymized = cli("anonymize", LUND / "sfm_data_bin.json", "--out", out, "--format", "png",  # the quickest
                     "--workers", "1")
    assert anonymized.returncode == 0, anonymized.stderr
    with LiveServer(config(db, scene=out / "anonymization" / "sfm_data_anonymized.json")) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/")
        page.wait_for_selector("#viewpoints button[data-id='9']")
        assert page.locator("#viewpoints button").count() == 10  # views 0-9; view 10 has no pose
        page.click("button[data-id='3']")
        page.wait_for_selector("body[data-viewpoint='3']", timeout=60_000)
        assert page.locator("#photo").is_visible() and page.locator("#viewer").is_hidden()
        fitted = page.evaluate("window.scanvan.photo.state().scale")
        page.click("#photo button[aria-label='Zoom in']")
        frame = page.locator("#photo").bounding_box()
        page.mouse.move(frame["x"] + 300, frame["y"] + 300)
        page.mouse.down()
        page.mouse.move(frame["x"] + 420, frame["y"] + 250, steps=6)  # a drag moves the photo, adds no corner
        page.mouse.up()
        assert page.evaluate("window.scanvan.photo.state().scale") == pytest.approx(1.5 * fitted)
        for count, corner in enumerate(DRAWN, start=1):
            page.mouse.click(*on_screen(page, corner))
            page.wait_for_selector(f"#vertex-count:has-text('{count} corner')")
        drawn = np.array([[v["x"], v["y"]] for v in page.evaluate("window.scanvan.vertices()")])
        assert np.abs(drawn - DRAWN).max() < 1.0  # the page's pixels are where the clicks fell
        page.screenshot(path=str(SHOTS / "report-photo.png"))
        page.click("#submit")
        page.wait_for_selector("#confirmation:has-text('report number')")
        report_id = int(page.text_content("#confirmation").split("report number is ")[1].split(";")[0])

        # stored as directions: back through the camera, the drawn corners and points along the
        # straight edges between them
        camera = read_scene(LUND / "sfm_data_bin.json", structure=False).intrinsics[0]
        stored = np.array([[v.pitch, v.yaw] for v in ReportStore(db).get(report_id).polygon])
        back = project_camera(camera, camera_rays(stored))
        assert len(stored) > len(DRAWN)
        assert np.linalg.norm(back[:, None] - drawn, axis=2).min(axis=0).max() < 1e-6
        assert off_edges(back, drawn).max() <= TOLERANCE

        sign_in(page, server)
        page.click(f"#reports button[data-id='{report_id}']")
        page.wait_for_selector(f"body[data-report='{report_id}']", timeout=60_000)
        assert page.locator("#photo polygon.photo-polygon").count() == 1
        page.screenshot(path=str(SHOTS / "moderation-photo.png"))
        page.click("#accept")
        page.wait_for_selector("#message:has-text('accepted')")
        page.close()
    assert not problems, problems

    applied = cli("reports", "apply", "--scene", LUND / "sfm_data_bin.json", "--out", out, "--db", db, "--propagate")
    assert applied.returncode == 0, applied.stderr
    masks = out / "anonymization" / "masks"
    layer = read_mask(masks / "04-manual.png")
    rows, cols = np.mgrid[0:768, 0:1024]
    centres = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])
    edge = off_edges(centres, drawn).reshape(768, 1024)
    within = inside_polygon(drawn, centres).reshape(768, 1024)
    assert layer[within & (edge > 2)].all() and not layer[~within & (edge > 2)].any()  # within 2 px of the drawn edges
    assert read_mask(masks / "04-mask.png")[layer].all()

    scene = read_scene(LUND / "sfm_data_bin.json")
    st = scene.structure
    in3 = np.flatnonzero(st.obs_view == 3)
    landmarks = np.unique(st.obs_landmark()[in3[inside_polygon(drawn, st.obs_xy[in3])]])
    seen = {v: st.obs_xy[np.isin(st.obs_landmark(), landmarks) & (st.obs_view == v)] for v in range(10) if v != 3}
    assert len(landmarks) >= 30 and {v for v, xy in seen.items() if len(xy)} == {1, 2, 4, 5, 6}
    for view, xy in seen.items():
        manual = masks / f"{view + 1:02d}-manual.png"
        if len(xy):
            cells = np.floor(xy).astype(int)
            assert read_mask(manual)[cells[:, 1], cells[:, 0]].mean() >= 0.95, view
        else:
            assert not manual.exists(), view


def sign_in(page, server: LiveServer) -> None:
    page.goto(server.url + "/moderate/login")
    page.fill("#token", TOKEN)
    page.click("button[type='submit']")
    page.wait_for_url(server.url + "/moderate")


@contextmanager
def other_site(html: str):
    """A page served from another port of 127.0.0.1: the same site, another origin."""
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


FORGERY = """<!doctype html><html><body><form id="form" method="POST" action="{target}"></form><script>
(async () => {{
  const attempts = [
    {{ method: "POST", mode: "no-cors", credentials: "include" }},
    {{ method: "POST", mode: "no-cors", credentials: "include", headers: {{ "Content-Type": "text/plain" }},
       body: '{{"note": "forged"}}' }},
    {{ method: "POST", credentials: "include", headers: {{ "Content-Type": "application/json" }}, body: "{{}}" }},
  ];
  for (const init of attempts) {{ try {{ await fetch("{target}", init); }} catch (error) {{}} }}
  document.getElementById("form").submit();
}})();
</script></body></html>"""


def test_another_port_cannot_moderate_with_the_moderators_cookie(browser, tmp_path):
    """A page on 127.0.0.1 but another port is the same site: the SameSite=Strict cookie goes
    along. Its fetches and its form post are refused; the report stays pending."""
    db = tmp_path / "reports.sqlite"
    with LiveServer(config(db)) as server:
        report_id = ReportStore(db).add(ReportIn(viewpoint_id=2, category="blur_missing", polygon=[
            {"pitch": 1.2, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.7}]))
        target = f"{server.url}/api/reports/{report_id}/accept"
        with other_site(FORGERY.format(target=target)) as evil:
            context = browser.new_context()
            page = context.new_page()
            sign_in(page, server)
            page.goto(evil)
            page.wait_for_url(target)  # the form post landed, with the cookie: refused, not "sign in first"
            assert "send Content-Type: application/json" in page.text_content("body")
            context.close()
    assert ReportStore(db).get(report_id).status == "pending"
    assert [a["new_status"] for a in ReportStore(db).audit(report_id)] == ["pending"]


def test_moderation_page_follows_the_pages_of_reports(browser, tmp_path):
    db = tmp_path / "reports.sqlite"
    store = ReportStore(db)
    triangle = [{"pitch": 1.2, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.7}]
    for i in range(230):
        store.add(ReportIn(viewpoint_id=i % 8, category="blur_missing", polygon=triangle))
    with LiveServer(config(db)) as server:
        page = browser.new_page()
        sign_in(page, server)
        page.wait_for_selector("#reports button[data-id='230']", timeout=30_000)
        assert page.locator("#reports button").count() == 230
        page.close()
