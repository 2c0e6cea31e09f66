"""Originals are never written, whatever the scene's paths say; outputs get the usual modes; a
dead worker, an OpenCV error or a full disk fails a view or ends in one line, never a traceback."""

from __future__ import annotations

import errno
import shutil
import stat
import subprocess
import sys

import cv2
import orjson
import pytest

from helpers import cli as run_cli
from helpers import tree_hashes as hashes
from scanvan_sfm import atomic, guard, pipeline
from scanvan_sfm.dataset import Dataset
from scanvan_sfm.pipeline import Task
from scanvan_sfm.runner import run_each
from scanvan_sfm.settings import Settings
from scanvan_sfm.sfm import read_scene, write_scene

PROJECT_LUND = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "lund"


def small_scene(tmp_path, views=(0, 1, 2)):
    """The lund sample reduced to a few views, with its images copied into ``tmp_path/images``."""
    scene = read_scene(PROJECT_LUND / "sfm_data_bin.json")
    scene.views = {k: v for k, v in scene.views.items() if k in views}
    scene.extrinsics = {k: v for k, v in scene.extrinsics.items() if k in {v.id_pose for v in scene.views.values()}}
    scene.structure = scene.structure.without_views(set(range(20)) - set(views))
    images = tmp_path / "images"
    images.mkdir()
    for view in scene.views.values():
        shutil.copy(PROJECT_LUND / "images" / view.filename, images / view.filename)
    return scene, images


def test_dotdot_paths_stay_in_the_output_folder(tmp_path):
    scene, images = small_scene(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    scene.root_path = "a/b"
    for view in scene.views.values():
        view.filename = f"../../images/{view.filename}"
    write_scene(scene, tmp_path / "scene.json")
    originals = hashes(images)
    result = run_cli("anonymize", tmp_path / "scene.json")
    assert result.returncode == 0, result.stderr
    assert hashes(images) == originals  # nothing written over or among the originals
    outputs = tmp_path / "anonymization"
    assert sorted(p.name for p in (outputs / "blur" / "images").iterdir()) == sorted(
        p.name for p in images.iterdir())
    manifest = orjson.loads((outputs / "manifest.json").read_bytes())
    assert all(not path.startswith("..") for v in manifest["views"].values() for path in v["outputs"].values())
    validate = run_cli("scene", "validate", tmp_path / "scene.json", "--skip-images")
    assert validate.returncode == 0 and validate.stdout.count("climbs out of root_path") == 3


def test_absolute_paths_never_overwrite_the_originals(tmp_path):
    scene, images = small_scene(tmp_path)
    scene.root_path = ""
    for view in scene.views.values():
        view.filename = str(images / view.filename)
    write_scene(scene, tmp_path / "scene.json")
    originals = hashes(images)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("anonymize", tmp_path / "scene.json", "--out", tmp_path / "out", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert hashes(images) == originals
    manifest = orjson.loads((tmp_path / "out" / "anonymization" / "manifest.json").read_bytes())
    assert {v["status"] for v in manifest["views"].values()} == {"done"}
    assert (tmp_path / "out" / "anonymization" / "blur" / images.relative_to("/") / "01.jpg").is_file()
    validate = run_cli("scene", "validate", tmp_path / "scene.json", "--skip-images")
    assert validate.stdout.count("absolute image path") == 3


def test_output_inside_the_images_folder_is_refused(tmp_path):
    scene, images = small_scene(tmp_path)
    scene.root_path = str(images)
    write_scene(scene, tmp_path / "scene.json")
    originals = hashes(images)
    result = run_cli("anonymize", tmp_path / "scene.json", "--out", images / "sub")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "inside the images folder" in result.stderr
    assert hashes(images) == originals and not (images / "sub").exists()


def test_symlinked_output_folder_into_the_images_is_refused_per_write(tmp_path):
    scene, images = small_scene(tmp_path)
    scene.root_path = str(images)
    write_scene(scene, tmp_path / "scene.json")
    originals = hashes(images)
    (tmp_path / "out" / "anonymization").mkdir(parents=True)
    (tmp_path / "out" / "anonymization" / "blur").symlink_to(images)
    result = run_cli("anonymize", tmp_path / "scene.json", "--out", tmp_path / "out")
    assert result.returncode == 1 and "refused" in result.stderr
    assert hashes(images) == originals


def test_folder_commands_refuse_to_write_among_the_sources(tmp_path):
    main = tmp_path / "main"
    (main / "images").mkdir(parents=True)
    shutil.copy(PROJECT_LUND / "images" / "01.jpg", main / "images" / "01.jpg")
    (main / "anonymization").symlink_to(main / "images")
    originals = hashes(main / "images")
    for command in (["fill"], ["masks"], ["camera-blur", "--camera-mask", PROJECT_LUND / "images" / "01.jpg"]):
        result = run_cli(*command, main)
        assert result.returncode == 2 and "inside the images folder" in result.stderr, result.stderr
    assert hashes(main / "images") == originals


def test_guard_refuses_the_source_by_path_link_and_inode(tmp_path):
    source = tmp_path / "images" / "01.jpg"
    source.parent.mkdir()
    source.write_bytes(b"original")
    sources = guard.guard_for([source], their_folders=False)
    (tmp_path / "hard.jpg").hardlink_to(source)
    (tmp_path / "soft.jpg").symlink_to(source)
    for target in (source, tmp_path / "hard.jpg", tmp_path / "soft.jpg", tmp_path / "x" / ".." / "images" / "01.jpg"):
        with pytest.raises(guard.WriteRefused):
            sources.check(target)
    sources.check(tmp_path / "images" / "02.jpg")  # beside it is fine when only the file is protected
    with pytest.raises(guard.WriteRefused):
        guard.guard_for([source]).check(tmp_path / "images" / "02.jpg")


def test_output_keys_are_safe_and_distinct():
    keys = Dataset.output_keys({1: "../../images/01.jpg", 2: "/data/images/01.jpg", 3: "images/01.jpg", 4: "02.jpg",
                        5: "02.png", 6: "sub/./03.jpg", 7: "..\\..\\04.jpg"})
    assert len(set(keys.values())) == 7
    assert all(not k.startswith("/") and ".." not in k.split("/") and "." not in k.split("/") for k in keys.values())
    assert keys[4] == "02.jpg" and keys[5] == "02.png" and keys[6] == "sub/03" and keys[7] == "04"
    clash = Dataset.output_keys({0: "01.jpg", 1: "../01.jpg", 2: "01.jpg-view0.jpg"})  # a suffix that is another's key
    assert len(set(clash.values())) == 3


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_the_usual_mode(tmp_path, umask):
    code = ("import os, sys; from scanvan_sfm.atomic import atomic_output\n"
            "with atomic_output(sys.argv[1]) as f: f.write(b'x')\n")
    script = f"import os; os.umask({umask}); exec({code!r})"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "out.bin")], check=True)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o666 & ~umask


def test_scene_pair_is_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    from scanvan_sfm.sfm import io as scene_io
    scene = read_scene(PROJECT_LUND / "sfm_data_bin.json")
    dataset = Dataset(tmp_path)
    outputs = {k: f"blur/{v.filename}" for k, v in scene.views.items()}
    dataset.save_registered(scene, outputs)
    before = hashes(tmp_path)

    def full_disk(scene, path):
        with atomic.atomic_output(path) as f:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setitem(scene_io._WRITERS, ".bin", full_disk)
    scene.root_path = "changed"
    with pytest.raises(OSError):
        dataset.save_registered(scene, outputs)
    assert hashes(tmp_path) == before  # the JSON was written whole, but neither file was replaced
    assert not list(tmp_path.rglob("*.part"))


def test_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    from scanvan_sfm import cli
    monkeypatch.setattr(sys, "argv", ["scanvan-sfm", "scene", "convert", str(PROJECT_LUND / "sfm_data_bin.json"),
                                      str(tmp_path / "copy.bin")])

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "copy.bin"))

    monkeypatch.setattr(cli, "convert_scene", full_disk)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "No space left on device" in err


def test_opencv_error_fails_the_view_alone(tmp_path):
    class Failing:
        name = "failing"

        def segment(self, *args):
            raise cv2.error("OpenCV(4) error: (-215:Assertion failed) in function 'resize'\nsecond line")

    worker = pipeline.ViewWorker.__new__(pipeline.ViewWorker)  # the model is the failing one
    worker.settings, worker.dataset, worker.sources, worker.error = Settings(), Dataset(tmp_path), None, ""
    worker.segmenter, worker.cameras = Failing(), None
    tasks = [Task(0, str(PROJECT_LUND / "images" / "01.jpg"), "01.jpg", "01", (1024, 768)),
             Task(1, str(tmp_path / "missing.jpg"), "missing.jpg", "missing", (1024, 768))]
    failed, missing = sorted(run_each(tasks, worker.process, 2), key=lambda o: o.item.view_id)
    assert not failed.ok and "Assertion failed" in failed.reason and "\n" not in failed.reason
    assert not missing.ok and "image not found" in missing.reason


def test_a_worker_that_dies_costs_its_view_only(tmp_path):
    scene, images = small_scene(tmp_path, views=(0, 1, 2, 3))
    scene.root_path = str(images)
    write_scene(scene, tmp_path / "scene.json")
    result = run_cli("anonymize", tmp_path / "scene.json", "--out", tmp_path / "out", "--workers", "2",
                     env={"SCANVAN_TEST_KILL_VIEWS": "2"})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    views = orjson.loads((tmp_path / "out" / "anonymization" / "manifest.json").read_bytes())["views"]
    assert {k: v["status"] for k, v in views.items()} == {"0": "done", "1": "done", "2": "failed", "3": "done"}
    assert "died twice" in views["2"]["reason"] and "failed: view 2" in result.stderr
    registered = read_scene(tmp_path / "out" / "anonymization" / "sfm_data_anonymized.json")
    assert sorted(registered.views) == [0, 1, 3]


def test_planted_links_in_the_output_never_reach_an_original(tmp_path):
    """The native log and the outputs of another format: a link or a stale image there."""
    scene, images = small_scene(tmp_path, views=(0, 1))
    scene.root_path = str(images)
    write_scene(scene, tmp_path / "scene.json")
    originals = hashes(images)
    anonymization = tmp_path / "out" / "anonymization"
    anonymization.mkdir(parents=True)
    (anonymization / "workers.log").symlink_to(images / "01.jpg")
    planted = run_cli("anonymize", tmp_path / "scene.json", "--out", tmp_path / "out")
    assert planted.returncode == 1 and "refused to write onto the source image" in planted.stderr
    assert hashes(images) == originals
    (anonymization / "workers.log").unlink()
    first = run_cli("anonymize", tmp_path / "scene.json", "--out", tmp_path / "out")
    assert first.returncode == 0, first.stderr
    assert (anonymization / "blur" / "01.jpg").is_file()
    again = run_cli("anonymize", tmp_path / "scene.json", "--out", tmp_path / "out", "--format", "png")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (anonymization / "blur").iterdir()) == ["01.png", "02.png"]
