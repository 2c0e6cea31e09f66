"""anonymize and reports apply on a real Dask cluster: a `dask scheduler` and two `dask worker
--nworkers 1 --nthreads 1` processes on 127.0.0.1, started once for the module. The outputs are
byte-identical to a local run; a worker or the client killed mid-run loses nothing; a failing
view fails alone; a cluster that cannot be used is refused in one line before any work."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from benchmarks.dask_cluster import DaskProcesses
from helpers import GPS_KEYS, GPS_SCENE, PROJECT, box, cli, needs_shared, registered_scenes, tree_hashes, write_feed
from scanvan_sfm.cluster import DIED, DaskCluster
from scanvan_sfm.errors import InputError
from scanvan_sfm.runner import Setup
from scanvan_sfm.sfm import read_scene, write_scene

pytestmark = needs_shared
SHARED_OUTPUTS = ("blur", "masks", "segmentation")   # the per-view outputs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The module's cluster; its processes start in their own folder. A task whose worker dies
    twice is given up (allowed-failures 1), so that the test of that is short; a worker holds
    one task at a time (worker-saturation 1.0: by default a one-thread worker is given two), so
    that a task queued behind one that kills its worker does not die with it twice and is not
    given up as well."""
    folder = tmp_path_factory.mktemp("cluster")
    env = {"PYTHONPATH": str(PROJECT / "tests"), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
           "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
    with DaskProcesses(folder, 2, env=env) as processes:
        yield processes


@pytest.fixture(scope="module")
def cluster_run(cluster, tmp_path_factory):
    """``anonymize`` of 360_flat_gps on the cluster: its output folder and the finished process."""
    out = tmp_path_factory.mktemp("clustered")
    return out, cli("anonymize", GPS_SCENE, "--out", out, "--scheduler", cluster.address)


def manifest(out) -> dict:
    return orjson.loads((out / "anonymization" / "manifest.json").read_bytes())


def published(out, views=None) -> dict:
    """The hashes of the per-view outputs (of ``views``' sources only, if given), or with the
    registered scene too when all views are compared."""
    hashes = tree_hashes(out / "anonymization")
    if views is None:  # the scene pair as --relative-root writes it: its absolute root names the folder
        scenes = {Path(name): hashlib.sha256(data).hexdigest() for name, data in registered_scenes(out).items()}
        return {p: h for p, h in hashes.items() if p.parts[0] in SHARED_OUTPUTS} | scenes
    stems = {GPS_KEYS[v] for v in views}
    return {p: h for p, h in hashes.items() if p.parts[0] in SHARED_OUTPUTS and p.name[:8] in stems}


def views_scene(tmp_path, views, widths=None):
    """360_flat_gps reduced to ``views`` (the images read where they are), with other widths for some."""
    scene = read_scene(GPS_SCENE)
    scene.root_path = str(GPS_SCENE.parent / "images")
    scene.views = {k: v for k, v in scene.views.items() if k in views}
    for view_id, width in (widths or {}).items():
        scene.views[view_id].width = width
    scene.extrinsics = {k: v for k, v in scene.extrinsics.items() if k in {v.id_pose for v in scene.views.values()}}
    scene.structure = scene.structure.without_views(set(range(9)) - set(views))
    write_scene(scene, tmp_path / "scene.json")
    return tmp_path / "scene.json"


def wait_for_done(out, count: int) -> None:
    deadline = time.time() + 600
    while time.time() < deadline:
        path = out / "anonymization" / "manifest.json"
        if path.is_file() and sum(v["status"] == "done" for v in manifest(out)["views"].values()) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} views done in time")


def test_a_cluster_run_is_byte_identical_to_a_local_run(cluster, cluster_run, anonymized):
    out, result = cluster_run
    assert result.returncode == 0, result.stderr
    ours = published(out)
    assert len(ours) == 8 * 5 + 2 and ours == published(anonymized)  # images, masks, maps, detections, scene
    assert manifest(out) == manifest(anonymized)   # it holds no timings
    assert "views by worker" in result.stderr
    for worker in cluster.worker_pids():
        assert worker in result.stderr


def test_reports_apply_on_the_cluster_refills_as_a_local_apply(cluster, cluster_run, anonymized, tmp_path):
    feed = tmp_path / "feed.json"
    write_feed(feed, (0, box(3700, 1900, 150, 120)))
    outs = {name: shutil.copytree(source, tmp_path / name) for name, source in
            (("local", anonymized), ("clustered", cluster_run[0]))}
    local = cli("reports", "apply", "--scene", GPS_SCENE, "--out", outs["local"], "--feed", feed, "--propagate")
    clustered = cli("reports", "apply", "--scene", GPS_SCENE, "--out", outs["clustered"], "--feed", feed, "--propagate",
                    env={"SCANVAN_SCHEDULER": cluster.address, "COLUMNS": "200"})  # the table's worker column whole
    assert local.returncode == 0 and clustered.returncode == 0, clustered.stderr
    ours, theirs = published(outs["clustered"]), published(outs["local"])
    assert ours == theirs and ours != published(anonymized)   # views re-filled, the same bytes
    assert manifest(outs["clustered"])["views"] == manifest(outs["local"])["views"]
    assert "worker" in clustered.stderr and "worker" not in local.stderr
    assert any(worker in clustered.stderr for worker in cluster.worker_pids())


def test_a_worker_killed_mid_run_loses_nothing(cluster, anonymized, tmp_path):
    out = tmp_path / "out"
    process = cli("anonymize", views_scene(tmp_path, range(4)), "--out", out, "--scheduler", cluster.address,
                  background=True)
    try:
        wait_for_done(out, 1)
        os.kill(next(iter(cluster.worker_pids().values())), signal.SIGKILL)  # its nanny starts another
        assert process.wait(600) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert [v["status"] for v in manifest(out)["views"].values()] == ["done"] * 4
    ours = published(out, range(4))
    assert len(ours) == 4 * 5 and ours == published(anonymized, range(4))
    cluster.client.wait_for_workers(2, timeout=120)


def test_a_client_killed_mid_run_resumes_to_the_same_bytes(cluster, anonymized, tmp_path):
    out, scene = tmp_path / "out", views_scene(tmp_path, range(4))
    env = {"SCANVAN_SCHEDULER": cluster.address}
    process = cli("anonymize", scene, "--out", out, env=env, background=True)
    try:
        wait_for_done(out, 1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done_before = sum(v["status"] == "done" for v in manifest(out)["views"].values())
    assert 1 <= done_before < 4
    resumed = cli("anonymize", scene, "--out", out, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert [v["status"] for v in manifest(out)["views"].values()] == ["done"] * 4
    assert published(out, range(4)) == published(anonymized, range(4))
    assert not list((out / "anonymization").rglob(".*.part"))


def test_a_view_that_fails_fails_alone(cluster, anonymized, tmp_path):
    out = tmp_path / "out"
    result = cli("anonymize", views_scene(tmp_path, (0, 1), {1: 4000}), "--out", out,
                 "--scheduler", cluster.address)
    assert result.returncode == 1
    views = manifest(out)["views"]
    assert views["0"]["status"] == "done" and views["1"]["status"] == "failed"
    assert "the scene says 4000×2688" in views["1"]["reason"] and "failed: view 1" in result.stderr
    assert published(out, (0,)) == published(anonymized, (0,))


class Squares:
    """A worker state for the cluster's failure policy: an item fails, another kills its worker."""

    def __init__(self, killer: int):
        self.killer = killer

    def process(self, n: int) -> int:
        if n == self.killer:
            os._exit(137)
        if n == 3:
            raise InputError("three is bad input")
        return n * n


def test_a_view_that_kills_its_workers_is_retried_alone_and_fails_alone(cluster, tmp_path):
    heard: list = []
    with DaskCluster(cluster.address, batch=2) as dask:
        dask.run(list(range(16)), Setup(Squares, (6,), scope=str(tmp_path)), heard.append)
    outcomes = {o.item: o for group in heard for o in group}
    assert sorted(outcomes) == list(range(16))
    assert outcomes[6].reason == DIED and outcomes[3].reason == "three is bad input"
    assert {n: o.value for n, o in outcomes.items() if o.ok} == {n: n * n for n in range(16) if n not in (3, 6)}
    assert max(len(group) for group in heard) >= 2   # batches: the scheduler saw 8 tasks, not 16
    assert all(o.worker.startswith("tcp://127.0.0.1:") for o in outcomes.values() if o.item != 6)
    cluster.client.wait_for_workers(2, timeout=120)


class Marks:
    """A worker state that takes a second an item and leaves a mark of each in ``folder``."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def process(self, n: int) -> int:
        time.sleep(1)
        (self.folder / str(n)).touch()
        return n


def test_a_newer_run_on_the_same_folder_stops_the_batches_of_a_killed_client(cluster, tmp_path):
    """Dask cannot stop a running task: the batch of a killed client goes on until a newer run
    on the same folder takes the workers over, and then stops before its next item."""
    marks = tmp_path / "marks"
    marks.mkdir()
    run = (f"from scanvan_sfm.cluster import DaskCluster; from scanvan_sfm.runner import Setup; "
           f"from test_dask import Marks; DaskCluster({cluster.address!r}, batch=8).run("
           f"list(range(8)), Setup(Marks, ({str(marks)!r},), scope={str(marks)!r}), print)")
    path = os.pathsep.join([str(PROJECT), str(PROJECT / "tests")])
    client = subprocess.Popen([sys.executable, "-c", run], env=os.environ | {"PYTHONPATH": path},
                              start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (marks / "0").exists() and time.time() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait()
    heard: list = []
    with DaskCluster(cluster.address) as dask:
        dask.run(list(range(100, 106)), Setup(Marks, (str(marks),), scope=str(marks)), heard.append)
    assert sorted(o.value for group in heard for o in group) == list(range(100, 106))
    times = {int(p.name): p.stat().st_mtime for p in marks.iterdir()}
    old = [t for n, t in times.items() if n < 100]
    # the old batch ended with the item it was doing when the newer run came, a second at most,
    # before the newer run's first item was done; without the check it would go on through the run
    assert 1 <= len(old) < 8 and max(old) < min(t for n, t in times.items() if n >= 100) + 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_cannot_be_reached_is_one_line(tmp_path):
    env = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    for address in (f"tcp://127.0.0.1:{free_port()}", "not an address"):
        result = cli("anonymize", GPS_SCENE, "--out", tmp_path / "out", "--scheduler", address, env=env)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert address in result.stderr and "cannot be reached" in result.stderr
    assert not (tmp_path / "out").exists()


def test_workers_that_do_not_share_the_folders_are_one_line(cluster, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = set(cluster.worker_pids())
    third = cluster.add_worker(cwd=elsewhere)
    try:
        cluster.client.wait_for_workers(3, timeout=120)
        (stranger,) = set(cluster.worker_pids()) - before
        # relative paths: the client and the first two workers run in the cluster's folder, the third does not
        images = os.path.relpath(GPS_SCENE.parent / "images", cluster.folder)
        for args, problem in (((GPS_SCENE, "--out", "relative-out"), "does not see the output folder relative-out"),
                              ((GPS_SCENE, "--images-root", images, "--out", tmp_path / "out"),
                               f"cannot see the image {images}/R00102")):
            result = cli("anonymize", *args, "--scheduler", cluster.address, cwd=cluster.folder)
            assert result.returncode == 2 and result.stderr.strip().splitlines() == [result.stderr.strip()]
            assert problem in result.stderr and f"worker {stranger}:" in result.stderr, result.stderr
        assert not (cluster.folder / "relative-out" / "anonymization" / "segmentation").exists()
        assert not (tmp_path / "out" / "anonymization" / "segmentation").exists()
    finally:
        cluster.stop(third)


def test_dask_is_imported_only_for_a_scheduler(tmp_path):
    loaded = subprocess.run([sys.executable, "-c", "import sys, scanvan_sfm.cli; print('distributed' in sys.modules)"],
                            capture_output=True, text=True)
    assert loaded.stdout.strip() == "False"
    without = subprocess.run([sys.executable, "-c", "import sys; sys.modules['distributed'] = None; "
                              "from scanvan_sfm.cli import main; main()", "anonymize", str(GPS_SCENE),
                              "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:8786"],
                             capture_output=True, text=True)
    assert without.returncode == 2 and "Traceback" not in without.stderr
    assert without.stderr.strip() == ("error: --scheduler needs the [dask] extra (distributed is missing): "
                                      "pip install 'scanvan-sfm[dask]'")
