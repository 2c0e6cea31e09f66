"""reports apply on the real 360_flat_gps reconstruction (8 posed panoramas): masks layers,
propagation through the landmarks, re-fill from the originals, idempotence, undo, and anonymize
keeping the reported regions."""

from __future__ import annotations

import re
import shutil
from html import unescape

import numpy as np
import orjson
import pytest

from helpers import GPS_KEYS as KEYS
from helpers import GPS_SCENE as SCENE
from helpers import GPS_SIZE, box, cli, needs_shared, registered_scenes, tree_hashes, write_feed
from scanvan_sfm.images import read_image, read_mask
from scanvan_sfm.reports.models import ReportIn, Status
from scanvan_sfm.reports.store import ReportStore
from scanvan_sfm.sfm import read_scene, validate_scene
from scanvan_sfm.sfm.cameras import bearings, camera_to_world, project

pytestmark = needs_shared

@pytest.fixture
def out(anonymized, tmp_path):
    copy = tmp_path / "main"
    shutil.copytree(anonymized, copy)
    return copy


def masks(out, view: int, layer: str = "mask"):
    path = out / "anonymization" / "masks" / f"{KEYS[view]}-{layer}.png"
    return read_mask(path) if path.is_file() else None


@pytest.fixture(scope="module")
def scene():
    return read_scene(SCENE)


def observations(scene, view: int, landmarks: np.ndarray) -> np.ndarray:
    st = scene.structure
    chosen = np.isin(st.obs_landmark(), landmarks) & (st.obs_view == view)
    return st.obs_xy[chosen]


def inside(mask: np.ndarray, xy: np.ndarray) -> np.ndarray:
    xy = np.floor(xy).astype(int)
    return mask[xy[:, 1], xy[:, 0] % mask.shape[1]]


def test_propagated_report_covers_the_same_landmarks_elsewhere(out, scene, tmp_path):
    originals = tree_hashes(SCENE.parent)
    before = {v: masks(out, v) for v in range(8)}
    blurred_before = {v: (out / "anonymization" / "blur" / f"{KEYS[v]}.JPG").stat().st_mtime_ns for v in range(8)}
    feed = tmp_path / "feed.json"
    write_feed(feed, (0, box(3700, 1900, 150, 120)))
    result = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed, "--propagate")
    assert result.returncode == 0, result.stderr

    # the landmarks whose view-0 observations fall inside the report polygon
    manual0 = masks(out, 0, "manual")
    st = scene.structure
    in0 = st.obs_view == 0
    landmarks = np.unique(st.obs_landmark()[in0][inside(manual0, st.obs_xy[in0])])
    assert len(landmarks) >= 50
    observing = {v for v in range(1, 8) if len(observations(scene, v, landmarks))}
    assert observing == {1, 2, 3, 4, 5}  # views 6 and 7 see none of them
    for view in observing:
        points = observations(scene, view, landmarks)
        coverage = inside(masks(out, view), points).mean()
        assert coverage >= 0.95, (view, coverage)
        assert masks(out, view).sum() > before[view].sum()
    for view in (6, 7):  # nothing there
        assert masks(out, view, "manual") is None and np.array_equal(masks(out, view), before[view])
        assert (out / "anonymization" / "blur" / f"{KEYS[view]}.JPG").stat().st_mtime_ns == blurred_before[view]
    assert np.array_equal(masks(out, 0, "automatic"), before[0])  # the automatic layer is kept as it was

    # the ledger and audit record every region as derived from the report
    applied = orjson.loads((out / "anonymization" / "reports" / "applied.json").read_bytes())
    (entry,) = applied["reports"].values()
    assert [r["view_id"] for r in entry["regions"]] == [0, 1, 2, 3, 4, 5]
    assert {r["kind"] for r in entry["regions"][1:]} == {"landmarks"}
    audit_lines = (out / "anonymization" / "reports" / "audit.jsonl").read_bytes().splitlines()
    audit = [orjson.loads(line) for line in audit_lines]
    assert sorted(a["view_id"] for a in audit) == [0, 1, 2, 3, 4, 5]
    assert all(a["masked_after"] > a["masked_before"] and a["masks"]["manual"] for a in audit)

    # the registered scene still validates against the re-filled images; originals untouched
    registered = out / "anonymization" / "sfm_data_anonymized.json"
    assert read_scene(registered).root_path == str(registered.parent / "blur")  # this folder's, not the copied one's
    assert validate_scene(read_scene(registered)) == []
    assert tree_hashes(SCENE.parent) == originals

    # idempotent: a second apply changes nothing
    state = tree_hashes(out)
    again = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed, "--propagate")
    assert again.returncode == 0 and tree_hashes(out) == state

    # anonymize again (forced, so every view is segmented and masked anew) keeps the reported regions
    final = {v: masks(out, v) for v in range(8)}
    rerun = cli("anonymize", SCENE, "--out", out, "--force")
    assert rerun.returncode == 0, rerun.stderr
    for view in range(8):
        manual = masks(out, view, "manual")
        if manual is not None:
            assert masks(out, view)[manual].all()
        assert np.array_equal(masks(out, view), final[view])


def test_serve_and_apply_read_the_registered_scene_from_elsewhere(anonymized, out, tmp_path, monkeypatch):
    """The service's reader and apply, run from another directory: on the default (absolute) root,
    and on a --relative-root tree that was moved (apply keeps the root relative)."""
    from scanvan_sfm.reports.service import published_viewpoints

    monkeypatch.chdir(tmp_path)
    registered = anonymized / "anonymization" / "sfm_data_anonymized.json"
    found = published_viewpoints(read_scene(registered, structure=False), registered)
    assert sorted(found) == list(range(8)) and all(path.is_relative_to(anonymized) for _, path in found.values())
    assert cli("anonymize", SCENE, "--out", out, "--relative-root").returncode == 0
    moved = tmp_path / "moved"
    out.rename(moved)
    registered = moved / "anonymization" / "sfm_data_anonymized.json"
    found = published_viewpoints(read_scene(registered, structure=False), registered)
    assert sorted(found) == list(range(8)) and all(path.is_relative_to(moved) for _, path in found.values())
    feed = tmp_path / "feed.json"
    write_feed(feed, (0, box(3700, 1900, 150, 120)))
    applied = cli("reports", "apply", "--scene", SCENE, "--out", moved, "--feed", feed)
    assert applied.returncode == 0, applied.stderr
    assert masks(moved, 0)[1800:2000, 3600:3800].all()
    assert read_scene(registered).root_path == "blur" and read_scene(registered.with_suffix(".bin")).root_path == "blur"
    checked = cli("scene", "validate", registered.name, cwd=registered.parent)
    assert checked.returncode == 0, checked.stdout


def test_store_reports_apply_and_undo(out, tmp_path):
    db = tmp_path / "reports.sqlite"
    store = ReportStore(db)
    automatic = masks(out, 3)
    report_id = store.add(ReportIn(viewpoint_id=3, category="blur_missing", polygon=box(1000, 1200, 100, 100)))
    pending = store.add(ReportIn(viewpoint_id=4, category="blur_missing", polygon=box(1000, 1200, 100, 100)))
    store.decide(report_id, Status.accepted)
    assert cli("reports", "apply", "--scene", SCENE, "--out", out, "--db", db).returncode == 0
    assert store.get(report_id).applied_run.startswith("apply-") and store.get(pending).applied_run is None
    assert masks(out, 3, "manual").sum() > 0 and masks(out, 4, "manual") is None
    assert masks(out, 3)[1150:1250, 950:1050].all()

    store.decide(report_id, Status.rejected, "not a person after all")
    undo = cli("reports", "apply", "--scene", SCENE, "--out", out, "--db", db)
    assert undo.returncode == 0, undo.stderr
    assert store.get(report_id).applied_run is None
    assert masks(out, 3, "manual") is None and masks(out, 3, "automatic") is None
    assert np.array_equal(masks(out, 3), automatic)  # back to what anonymize made


def test_excess_releases_automatic_mask_but_never_manual(out, tmp_path):
    automatic = masks(out, 2)
    ys, xs = np.nonzero(automatic)
    cx, cy = int(np.median(xs)), int(np.median(ys))  # somewhere the detector masked
    assert automatic[cy, cx]
    db = tmp_path / "r.sqlite"
    store = ReportStore(db)
    excess = store.add(ReportIn(viewpoint_id=2, category="blur_excess", polygon=box(cx, cy, 200, 150)))
    store.decide(excess, Status.accepted)
    assert cli("reports", "apply", "--scene", SCENE, "--out", out, "--db", db, "--propagate").returncode == 0
    released = masks(out, 2)
    assert not released[cy - 100:cy + 100, cx - 150:cx + 150].any()
    assert masks(out, 2, "excess") is not None
    applied = orjson.loads((out / "anonymization" / "reports" / "applied.json").read_bytes())
    assert len(applied["reports"][f"report-{excess}"]["regions"]) == 1  # excess is never propagated

    missing = store.add(ReportIn(viewpoint_id=2, category="blur_missing", polygon=box(cx, cy, 60, 60)))
    store.decide(missing, Status.accepted)
    assert cli("reports", "apply", "--scene", SCENE, "--out", out, "--db", db).returncode == 0
    assert masks(out, 2)[cy - 40:cy + 40, cx - 40:cx + 40].all()  # manual wins over excess


def test_seam_report_and_ray_fallback(out, scene, tmp_path):
    feed = tmp_path / "feed.json"
    seam = box(0, 1300, 120, 100)  # crosses the left/right edge of view 1
    empty = box(3400, 1500, 60, 60)  # no landmark inside in view 0: rays at the neighbours' depth
    write_feed(feed, (1, seam), (0, empty))
    result = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed, "--propagate")
    assert result.returncode == 0, result.stderr
    manual1 = masks(out, 1, "manual")
    assert manual1[1300, :50].all() and manual1[1300, -50:].all() and not manual1[1300, 200:GPS_SIZE[0] - 200].any()

    applied = orjson.loads((out / "anonymization" / "reports" / "applied.json").read_bytes())["reports"]
    (rays,) = [a for a in applied.values() if a["view_id"] == 0]
    derived = rays["regions"][1:]
    assert derived and {r["kind"] for r in derived} == {"rays"}
    # the centre of the polygon, cast at the depth used, lands inside each derived region
    view0 = scene.views[0]
    pose0, camera0 = scene.extrinsics[view0.id_pose], scene.intrinsics[view0.id_intrinsic]
    ray = camera_to_world(pose0, bearings(camera0, np.array([[3400.0, 1500.0]])))[0] - pose0.C
    st = scene.structure
    in0 = st.obs_view == 0
    depths = np.linalg.norm(st.X[st.obs_landmark()[in0]] - pose0.C, axis=1)
    nearest = np.argsort(np.hypot(*(st.obs_xy[in0] - [3400.0, 1500.0]).T))[:10]
    depth = np.median(depths[nearest])
    for region in derived:
        view = scene.views[region["view_id"]]
        xy = project(scene.intrinsics[view.id_intrinsic], scene.extrinsics[view.id_pose], pose0.C + ray * depth)
        assert inside(masks(out, region["view_id"], "manual"), xy).all(), region["view_id"]


def test_dry_run_writes_nothing_and_bad_reports_are_skipped(out, tmp_path):
    feed = tmp_path / "feed.json"
    feed.write_bytes(orjson.dumps([{"filepath": "unrelated_castle_2to1.jpg", "viewpointId": 8,
                                    "pitchYawOrders": box(100, 100, 20, 20)},
                                   {"filepath": "R0010215.JPG", "viewpointId": 5,
                                    "pitchYawOrders": box(2000, 1300, 80, 80)}]))
    state = tree_hashes(out)
    dry = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed, "--dry-run")
    assert dry.returncode == 0 and tree_hashes(out) == state and "dry run" in dry.stderr
    result = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed)
    assert result.returncode == 0 and "view 8 is not a reconstructed view" in result.stderr
    assert masks(out, 5)[1260:1340, 1960:2040].all()


@pytest.mark.parametrize("args, message", [
    (["--feed", "missing.json"], "missing.json"),
    ([], "either --db or --feed"),
])
def test_bad_apply_arguments_are_one_line(out, tmp_path, args, message):
    result = cli("reports", "apply", "--scene", SCENE, "--out", out, *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    empty = cli("reports", "apply", "--scene", SCENE, "--out", tmp_path / "nothing", "--feed", "x.json")
    assert empty.returncode == 2 and "run `scanvan-sfm anonymize` first" in empty.stderr


def test_a_failed_view_is_retried_on_the_next_apply(out, tmp_path):
    manifest_path = out / "anonymization" / "manifest.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    original = tmp_path / "moved" / "R0010215.JPG"  # not beside the output: a folder of sources is never written
    original.parent.mkdir()
    shutil.copy(manifest["views"]["5"]["source_path"], original)
    manifest["views"]["5"]["source_path"] = str(original)
    manifest_path.write_bytes(orjson.dumps(manifest))
    parked = original.rename(tmp_path / "parked.JPG")  # the original is gone for now
    feed = tmp_path / "feed.json"
    write_feed(feed, (5, box(2000, 1300, 80, 80)))
    thumbnail = out / "anonymization" / "review" / f"{KEYS[5]}.jpg"
    before = thumbnail.read_bytes()
    failed = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed)
    assert failed.returncode == 1 and "the next apply tries again" in failed.stderr
    applied = out / "anonymization" / "reports" / "applied.json"
    assert not applied.exists() or not orjson.loads(applied.read_bytes())["reports"]
    card = review_card(out, 5)  # flagged with the reason, the image published before still shown
    assert card["data-flags"] == "failed" and f"No such file or directory: '{KEYS[5]}.JPG'" in card["text"]
    assert str(original.parent) not in card["text"] and thumbnail.read_bytes() == before
    parked.rename(original)
    retried = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed)
    assert retried.returncode == 0, retried.stderr
    assert len(orjson.loads(applied.read_bytes())["reports"]) == 1 and masks(out, 5)[1260:1340, 1960:2040].all()
    card, entry = review_card(out, 5), orjson.loads(manifest_path.read_bytes())["views"]["5"]
    assert card["data-flags"] == "" and float(card["data-masked"]) == entry["masked_share"]
    ring = magenta(read_image(thumbnail).pixels)  # the new mask's outline, around the reported box
    assert ring[72:83, 113:125].any() and not ring[76:79, 118:121].any()


def review_card(out, view: int) -> dict:
    """A view's card on the review page: its attributes and its text."""
    page = (out / "anonymization" / "review.html").read_text()
    card = re.search(rf'<figure ([^>]*data-view="{view}"[^>]*)>(.*?)</figure>', page)
    assert card is not None
    return dict(re.findall(r'(data-[a-z]+)="([^"]*)"', card[1])) | {"text": unescape(re.sub(r"<[^>]+>", "", card[2]))}


def magenta(pixels: np.ndarray) -> np.ndarray:
    """Where a JPEG thumbnail shows the mask outline (``view.OUTLINE``)."""
    red, green, blue = (pixels[:, :, c].astype(int) for c in range(3))
    return (red - green > 100) & (blue - green > 100)


def published(out) -> dict:
    """What an apply decides: masks, images and their thumbnails, registered scene, review page, and
    the manifest's view entries."""
    anonymization = out / "anonymization"
    files = {p: h for p, h in tree_hashes(anonymization).items()
             if p.parts[0] in ("masks", "blur", "review") or p.name == "review.html"}
    views = orjson.loads((anonymization / "manifest.json").read_bytes())["views"]
    return files | registered_scenes(out) | {f"view {k}": (v["masked_share"], v.get("mask_sha256"), v["outputs"])
                                            for k, v in views.items()}


@pytest.mark.parametrize("when", ["before", "after"])
def test_apply_killed_at_every_write_is_finished_by_the_next(anonymized, tmp_path, when):
    """kill -9 (``os._exit``) at the Nth write or removal, before or after its rename, for every
    N; the next apply gives the uninterrupted result byte for byte and leaves no temp file."""
    feed = tmp_path / "feed.json"
    write_feed(feed, (0, box(3700, 1900, 150, 120)), (3, box(1000, 1200, 100, 100)))
    reference = tmp_path / "reference"
    shutil.copytree(anonymized, reference)
    assert cli("reports", "apply", "--scene", SCENE, "--out", reference, "--feed", feed).returncode == 0
    expected = published(reference)
    for point in range(1, 100):
        out = tmp_path / f"killed-{point}"
        shutil.copytree(anonymized, out)
        killed = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed,
                     env={"SCANVAN_TEST_KILL_AT_WRITE": f"{point}:{when}"})
        if killed.returncode == 0:  # fewer writes than that: every point was tried
            break
        assert killed.returncode == 137, killed.stderr
        rerun = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed)
        assert rerun.returncode == 0, rerun.stderr
        assert published(out) == expected, f"killed at write {point} ({when} the rename)"
        assert not list(out.rglob("*.part"))
        shutil.rmtree(out)
    assert point > 10  # 2 views × (automatic, manual, mask, image), manifest, scene pair, ledger


def test_anonymize_refills_a_view_whose_apply_was_killed(anonymized, tmp_path):
    """Killed between the new mask and its image: anonymize (not only apply) re-fills the view."""
    feed = tmp_path / "feed.json"
    write_feed(feed, (0, box(3700, 1900, 150, 120)))
    reference = tmp_path / "reference"
    shutil.copytree(anonymized, reference)
    assert cli("reports", "apply", "--scene", SCENE, "--out", reference, "--feed", feed).returncode == 0
    out = tmp_path / "killed"
    shutil.copytree(anonymized, out)
    image = out / "anonymization" / "blur" / f"{KEYS[0]}.JPG"
    before = image.read_bytes()
    killed = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed,
                 env={"SCANVAN_TEST_KILL_AT_WRITE": "3:after"})  # automatic, manual, then the mask
    assert killed.returncode == 137 and image.read_bytes() == before
    assert np.array_equal(masks(out, 0), masks(reference, 0))
    rerun = cli("anonymize", SCENE, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert image.read_bytes() == (reference / "anonymization" / "blur" / f"{KEYS[0]}.JPG").read_bytes()


@pytest.mark.parametrize("edit", [{"fill": 5}, {"bogus": 1}, {"guarded": "x"}])
def test_hand_edited_settings_are_one_line(out, tmp_path, edit):
    manifest_path = out / "anonymization" / "manifest.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    manifest["settings"] |= edit
    manifest_path.write_bytes(orjson.dumps(manifest))
    feed = tmp_path / "feed.json"
    write_feed(feed, (5, box(2000, 1300, 80, 80)))
    result = cli("reports", "apply", "--scene", SCENE, "--out", out, "--feed", feed)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "manifest.json: settings" in result.stderr
