"""anonymize end to end on the real openMVG scenes: selection, outputs, registration, resume."""

import os
import re
import shutil
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import orjson
import pytest
from PIL import Image

from helpers import OPENMVG, cli, needs_shared, registered_scenes, tree_hashes
from scanvan_sfm.images import read_image, read_mask
from scanvan_sfm.jpeg_blocks import read_frame
from scanvan_sfm.sfm import read_scene, validate_scene

pytestmark = needs_shared


def _manifest(out):
    return orjson.loads((out / "anonymization" / "manifest.json").read_bytes())


def _copy_scene(name, tmp_path):
    scene = tmp_path / name
    shutil.copytree(OPENMVG / name, scene)
    return scene


@pytest.fixture(scope="module")
def lund_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lund")
    originals = tree_hashes(OPENMVG / "lund")
    result = cli("anonymize", OPENMVG / "lund" / "sfm_data.bin", "--out", out)
    return out, result, originals


def test_lund_reconstructed_views_only(lund_run):
    out, result, originals = lund_run
    assert result.returncode == 0, result.stderr
    views = _manifest(out)["views"]
    assert sorted(map(int, views)) == list(range(10)) and all(v["status"] == "done" for v in views.values())
    assert "views 10" in result.stderr  # the unposed view is listed as left out
    assert "camera mask" not in result.stderr and not (out / "anonymization" / "camera_mask.png").exists()  # pinhole
    assert views["0"]["outputs"]["output"] == "blur/01.jpg" and views["0"]["source"] == "01.jpg"
    assert views["0"]["outputs"]["thumbnail"] == "review/01.jpg"
    for view in views.values():
        for path in view["outputs"].values():
            assert (out / "anonymization" / path).is_file()
    assert tree_hashes(OPENMVG / "lund") == originals  # the originals are never written to


def test_published_jpegs_are_the_sources_outside_the_masked_blocks(lund_run):
    out, result, _ = lund_run
    assert "encoded whole" not in result.stderr  # every view was written block by block
    for view in _manifest(out)["views"].values():
        source = read_image(OPENMVG / "lund" / "images" / view["source"]).pixels
        published = read_image(out / "anonymization" / view["outputs"]["output"]).pixels
        mask = read_mask(out / "anonymization" / view["outputs"]["mask"])
        mcu_h, mcu_w = read_frame((OPENMVG / "lund" / "images" / view["source"]).read_bytes()).mcu
        rows, columns = -(-mask.shape[0] // mcu_h), -(-mask.shape[1] // mcu_w)
        blocks = np.zeros((rows * mcu_h, columns * mcu_w), bool)
        blocks[:mask.shape[0], :mask.shape[1]] = mask
        blocks = blocks.reshape(rows, mcu_h, columns, mcu_w).any(axis=(1, 3))
        touched = blocks.repeat(mcu_h, axis=0).repeat(mcu_w, axis=1)[:mask.shape[0], :mask.shape[1]]
        near = cv2.dilate(touched.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # + the chroma edge
        assert np.array_equal(published[~near], source[~near])
        assert not np.array_equal(published[mask], source[mask]) or not mask.any()


def test_registered_scene_points_at_the_anonymized_images(lund_run):
    out, _, _ = lund_run
    original = read_scene(OPENMVG / "lund" / "sfm_data.bin")
    for suffix in (".json", ".bin"):
        registered = read_scene(out / "anonymization" / f"sfm_data_anonymized{suffix}")
        assert registered.root_path == str(out / "anonymization" / "blur")  # absolute, as openMVG reads it anywhere
        assert validate_scene(registered, images_root=out / "anonymization" / "blur") == []
        # nothing else changed: the same poses, intrinsics, landmarks, and views but for view 10
        assert set(registered.views) == set(range(10))
        for key, view in registered.views.items():
            assert view.model_dump() == original.views[key].model_dump() | {"local_path": "", "filename": view.filename}
            assert view.filename == original.views[key].filename
        assert registered.intrinsics == original.intrinsics and registered.extrinsics == original.extrinsics
        assert registered.structure.equal_by_id(original.structure)


def _validate(scene, cwd):
    """``scene validate`` as a user runs it from ``cwd``: openMVG's tools resolve a relative root there."""
    return cli("scene", "validate", scene, cwd=cwd)


def test_openmvg_tools_find_the_registered_images_from_any_directory(lund_run, tmp_path):
    out, _, _ = lund_run
    for suffix in (".json", ".bin"):
        checked = _validate(out / "anonymization" / f"sfm_data_anonymized{suffix}", tmp_path)
        assert checked.returncode == 0 and checked.stdout == "", checked.stdout
        assert str(out / "anonymization" / "blur") in checked.stderr


def test_relative_root_is_found_only_from_inside_anonymization_and_moves_with_the_tree(lund_run, tmp_path):
    main = tmp_path / "main"
    shutil.copytree(lund_run[0], main)
    scene = OPENMVG / "lund" / "sfm_data.bin"
    relative = cli("anonymize", scene, "--out", main, "--relative-root", cwd=tmp_path)
    assert relative.returncode == 0 and "segment" not in relative.stderr, relative.stderr  # only the scene changed
    registered = [read_scene(main / "anonymization" / f"sfm_data_anonymized{s}") for s in (".json", ".bin")]
    assert registered[0].root_path == "blur" and registered[0].equal_by_id(registered[1])
    elsewhere = _validate(main / "anonymization" / "sfm_data_anonymized.json", tmp_path)
    assert elsewhere.returncode == 1 and elsewhere.stdout.count("image not found: blur/") == 10
    note = elsewhere.stdout.splitlines()[-1]
    assert "note: root_path 'blur' is relative" in note and f"run openMVG's tools from {main / 'anonymization'}" in note
    moved = tmp_path / "moved"
    main.rename(moved)  # a relative tree can be moved: it reads from inside anonymization/, and reruns there
    assert _validate("sfm_data_anonymized.bin", moved / "anonymization").returncode == 0
    before = tree_hashes(moved / "anonymization")
    again = cli("anonymize", scene, "--out", moved, "--relative-root", cwd=tmp_path)
    assert again.returncode == 0 and "segment" not in again.stderr, again.stderr
    assert {p: h for p, h in tree_hashes(moved / "anonymization").items() if p.name != "manifest.json"} == \
        {p: h for p, h in before.items() if p.name != "manifest.json"}
    written = {path.name: path.read_bytes() for path in (moved / "anonymization").glob("sfm_data_anonymized.*")}
    absolute = cli("anonymize", scene, "--out", moved, cwd=tmp_path)  # back to the default: the moved tree's root
    assert absolute.returncode == 0 and "segment" not in absolute.stderr
    assert registered_scenes(moved) == written  # the same scene but for its root, now the absolute one
    assert _validate(moved / "anonymization" / "sfm_data_anonymized.json", tmp_path).returncode == 0


def test_second_run_does_no_image_work(lund_run):
    out, _, _ = lund_run
    before = {p: p.stat().st_mtime_ns for p in (out / "anonymization").rglob("*") if p.suffix in (".jpg", ".png")}
    assert len([p for p in before if p.parent.name == "review"]) == 10  # the thumbnails are kept too
    result = cli("anonymize", OPENMVG / "lund" / "sfm_data.bin", "--out", out)
    assert result.returncode == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert "segment" not in result.stderr  # no stage ran: no time-per-stage table


def test_failures_stay_with_their_view(tmp_path):
    scene = _copy_scene("lund", tmp_path)
    images = scene / "images"
    (images / "03.jpg").unlink()
    data = (images / "05.jpg").read_bytes()
    (images / "05.jpg").write_bytes(data[:len(data) // 2])
    cv2.imwrite(str(images / "07.jpg"), cv2.resize(cv2.imread(str(images / "07.jpg")), (800, 600)))
    Image.open(images / "09.jpg").convert("CMYK").save(images / "09.jpg")  # published, but encoded whole
    out = tmp_path / "out"
    result = cli("anonymize", scene / "sfm_data_bin.json", "--out", out)
    assert result.returncode == 1
    views = _manifest(out)["views"]
    assert views["8"]["status"] == "done"
    assert re.search(r"CMYK or YCCK \(4 components\)\s*\|\s*1\s*\|", result.stderr)  # counted in the summary
    reasons = {k: v.get("reason", "") for k, v in views.items() if v["status"] == "failed"}
    assert set(reasons) == {"2", "4", "6"}
    assert "03.jpg" in reasons["2"] and "truncated" in reasons["4"] and "800×600" in reasons["6"]
    for view in ("2", "4", "6"):
        assert f"failed: view {view}" in result.stderr
    registered = read_scene(out / "anonymization" / "sfm_data_anonymized.json")
    assert sorted(registered.views) == [0, 1, 3, 5, 7, 8, 9] and 2 not in registered.extrinsics
    assert validate_scene(registered, images_root=out / "anonymization" / "blur") == []


def test_panorama_scene(anonymized):
    out = anonymized  # the fixture checked that anonymize succeeded
    assert sorted(map(int, _manifest(out)["views"])) == list(range(8))
    # eight shots in one small flat: too alike to tell a rig (tests/test_rig.py), so no camera mask
    assert _manifest(out)["settings"]["camera_mask"] is None
    assert not (out / "anonymization" / "camera_mask.png").exists()
    registered = read_scene(out / "anonymization" / "sfm_data_anonymized.bin")
    assert sorted(registered.views) == list(range(8))
    assert sorted(registered.intrinsics) == [0]  # intrinsic 1 belonged to view 8 only
    assert validate_scene(registered, images_root=out / "anonymization" / "blur") == []
    source = read_image(OPENMVG / "360_flat_gps" / "images" / "R0010213.JPG")
    published = read_image(out / "anonymization" / "blur" / "R0010213.JPG")
    assert published.metadata == source.metadata  # EXIF and the GPano XMP survive


def test_killed_run_resumes_to_the_same_outputs(tmp_path):
    scene = OPENMVG / "lund" / "sfm_data.bin"
    reference = tmp_path / "reference"
    assert cli("anonymize", scene, "--out", reference, "--workers", "1").returncode == 0
    out = tmp_path / "killed"
    process = cli("anonymize", scene, "--out", out, "--workers", "1", background=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        manifest = out / "anonymization" / "manifest.json"
        if manifest.is_file() and sum(v["status"] == "done" for v in _manifest(out)["views"].values()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = sum(v["status"] == "done" for v in _manifest(out)["views"].values())
    assert 3 <= done_before < 10
    resumed = cli("anonymize", scene, "--out", out, "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert not list((out / "anonymization").rglob(".*.part"))
    ours, theirs = tree_hashes(out / "anonymization"), tree_hashes(reference / "anonymization")
    images = [p for p in theirs if p.suffix in (".jpg", ".png")]
    assert images and all(ours[p] == theirs[p] for p in images)  # thumbnails included: never apart from their image
    assert len([p for p in images if p.parts[0] == "review"]) == 10
    assert ours[Path("review.html")] == theirs[Path("review.html")]
    for key in range(10):
        name = f"{key + 1:02d}-mask.png"
        assert np.array_equal(read_mask(out / "anonymization" / "masks" / name),
                              read_mask(reference / "anonymization" / "masks" / name))


def test_force_redoes_and_all_views_includes_the_unposed(tmp_path):
    out = tmp_path / "out"
    scene = OPENMVG / "lund" / "sfm_data.bin"
    assert cli("anonymize", scene, "--out", out).returncode == 0
    mask, thumbnail = out / "anonymization" / "masks" / "01-mask.png", out / "anonymization" / "review" / "01.jpg"
    before = mask.stat().st_mtime_ns
    assert cli("anonymize", scene, "--out", out).returncode == 0 and mask.stat().st_mtime_ns == before
    assert cli("anonymize", scene, "--out", out, "--force").returncode == 0 and mask.stat().st_mtime_ns > before
    assert thumbnail.stat().st_mtime_ns > before  # made again with its image
    everything = cli("anonymize", scene, "--out", out, "--all-views")
    assert everything.returncode == 0, everything.stderr
    views = _manifest(out)["views"]
    assert views["10"]["status"] == "done" and views["10"]["outputs"]["output"] == "blur/25.jpg"
    registered = read_scene(out / "anonymization" / "sfm_data_anonymized.json")
    assert 10 in registered.views and 10 not in registered.extrinsics  # kept unposed, as in the scene
    assert validate_scene(registered, images_root=out / "anonymization" / "blur") == []


def test_bad_arguments(tmp_path):
    for args, message in ((["--model", "yolo"], "unknown model"), (["--fill", "blur"], "unknown fill mode"),
                          (["--format", "gif"], "unknown output format"),
                          (["--camera-mask", tmp_path / "none.png"], "camera mask not found")):
        result = cli("anonymize", OPENMVG / "lund" / "sfm_data.bin", "--out", tmp_path / "out", *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    result = cli("anonymize", tmp_path / "missing.bin", "--out", tmp_path / "out")
    assert result.returncode == 2 and "missing.bin" in result.stderr


def _workers(pid: int) -> list[int]:
    """The pool's worker processes of a running anonymize (not its resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_worker_killed_mid_run_loses_nothing(lund_run, tmp_path):
    reference, _, _ = lund_run
    out = tmp_path / "out"
    process = cli("anonymize", OPENMVG / "lund" / "sfm_data.bin", "--out", out, "--workers", "2", background=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        manifest = out / "anonymization" / "manifest.json"
        if manifest.is_file() and any(v["status"] == "done" for v in _manifest(out)["views"].values()):
            break
        time.sleep(0.05)
    victims = _workers(process.pid)
    assert victims
    os.kill(victims[0], signal.SIGKILL)
    assert process.wait(600) == 0
    views = _manifest(out)["views"]
    assert all(v["status"] == "done" for v in views.values()) and len(views) == 10
    ours, theirs = tree_hashes(out / "anonymization"), tree_hashes(reference / "anonymization")
    published = [p for p in theirs if p.parts[0] in ("blur", "masks")]
    assert published and all(ours[p] == theirs[p] for p in published)
    assert registered_scenes(out) == registered_scenes(reference)
