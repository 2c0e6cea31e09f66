"""``anonymize`` on a local Dask cluster against the built-in worker pool, in one run.

The scene is benchmarks/pipeline.py's (6016×3008 street panoramas). A `dask scheduler` and
`dask worker --nworkers 1 --nthreads 1` processes are started on 127.0.0.1 (``DaskProcesses``,
which the tests use too); the pool and the cluster run the same scene one after the other, each
into a fresh output folder, and the ratio of their throughputs is printed (target ≥ 0.9×).
Also printed: the scheduler's cost per task (empty tasks: wall time per task when many are
queued, and the scheduler's CPU time per task), and the bytes that pass through the scheduler per
view, counted on its TCP connections by this file loaded as its preload (``dask_setup``).

Usage: python benchmarks/dask_cluster.py [--panoramas 40] [--workers 2] [--repeat 1] [--single-threaded]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distributed import Client

from scanvan_sfm.cluster import DaskCluster
from scanvan_sfm.guard import guard_for
from scanvan_sfm.pipeline import STAGES, anonymize
from scanvan_sfm.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
#: What Dask's nanny sets in its workers' environment (distributed.nanny.pre-spawn-environ).
NANNY_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` set in this process's environment (the pool's workers inherit it) meanwhile."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


class DaskProcesses:
    """A scheduler and ``workers`` single-thread workers, each its own process on 127.0.0.1 at a
    free port, importing the package from this checkout (and ``env``'s ``PYTHONPATH``), started in
    ``folder`` with ``env`` added to this environment; ``client`` is connected to them. Every
    process is stopped on exit, also after a failure; their logs are in ``folder``."""

    def __init__(self, folder: Path, workers: int = 2, scheduler_options: tuple[str, ...] = (),
                 env: dict[str, str] | None = None):
        self.folder, self.workers, self.scheduler_options = folder, workers, scheduler_options
        self.env = env or {}
        self.processes: list[subprocess.Popen] = []
        self.address = ""
        self.client: Client | None = None

    def __enter__(self) -> DaskProcesses:
        try:
            scheduler_file = self.folder / "scheduler.json"
            self._start("scheduler", ["--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(scheduler_file), *self.scheduler_options])
            deadline = time.monotonic() + 60
            while not scheduler_file.is_file():
                if time.monotonic() > deadline or self.processes[0].poll() is not None:
                    raise RuntimeError(f"the scheduler did not start: see {self.folder / 'scheduler.log'}")
                time.sleep(0.1)
            self.address = json.loads(scheduler_file.read_text())["address"]
            self.client = Client(self.address, set_as_default=False)
            for _ in range(self.workers):
                self.add_worker()
            self.client.wait_for_workers(self.workers, timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    def add_worker(self, cwd: Path | None = None) -> subprocess.Popen:
        """One more worker (its nanny and its worker process), started in ``cwd``."""
        return self._start(f"worker-{len(self.processes)}", [
            self.address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], cwd)

    def worker_pids(self) -> dict[str, int]:
        """The worker processes (not their nannies), by address."""
        assert self.client is not None
        return self.client.run(os.getpid)

    def _start(self, name: str, arguments: list[str], cwd: Path | None = None) -> subprocess.Popen:
        command = "scheduler" if name == "scheduler" else "worker"
        environment = os.environ | self.env
        environment["PYTHONPATH"] = os.pathsep.join([str(PROJECT), environment.get("PYTHONPATH", "")])
        with open(self.folder / f"{name}.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "dask", command, *arguments], cwd=cwd or self.folder,
                                       stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen | None = None) -> None:
        """Stop one process (a worker from ``add_worker``) or all of them, workers first."""
        if self.client is not None and process is None:
            self.client.close()
            self.client = None
        for each in [process] if process else reversed(self.processes):
            if each.poll() is None:
                os.killpg(each.pid, signal.SIGTERM)
            try:
                each.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(each.pid, signal.SIGKILL)
                each.wait()
            self.processes.remove(each)


def dask_setup(scheduler) -> None:
    """Preload hook of the benchmark's scheduler: count the bytes its TCP connections carry
    (frames read and written), kept as ``scheduler.bytes_moved``."""
    from distributed.comm import tcp

    counted = scheduler.bytes_moved = {"read": 0, "written": 0}
    read_bytes, write = tcp.read_bytes_rw, tcp.TCP.write

    async def counting_read(stream, n):
        counted["read"] += n
        return await read_bytes(stream, n)

    async def counting_write(self, *args, **kwargs):
        n = await write(self, *args, **kwargs)
        counted["written"] += n
        return n

    tcp.read_bytes_rw, tcp.TCP.write = counting_read, counting_write


def _bytes_moved(dask_scheduler) -> int:
    return sum(dask_scheduler.bytes_moved.values())


def _cpu_seconds(dask_scheduler) -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def task_overhead(client: Client, tasks: int = 2000) -> tuple[float, float, float]:
    """Empty tasks: wall ms per task with all of them queued, the scheduler's CPU ms per task,
    and the ms of one task's round trip."""
    cpu = client.run_on_scheduler(_cpu_seconds)
    start = time.perf_counter()
    futures = [client.submit(abs, -i, pure=False) for i in range(tasks)]
    client.gather(futures)
    wall = time.perf_counter() - start
    del futures
    cpu = client.run_on_scheduler(_cpu_seconds) - cpu
    start = time.perf_counter()
    for i in range(50):
        client.submit(abs, -i, pure=False).result()
    return wall / tasks * 1000, cpu / tasks * 1000, (time.perf_counter() - start) / 50 * 1000


def main() -> None:
    from pipeline import street_scene  # benchmarks/pipeline.py

    parser = argparse.ArgumentParser()
    parser.add_argument("--panoramas", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--single-threaded", action="store_true",
                        help="also time the pool with the thread variables Dask's nanny gives its workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scene = street_scene(folder, args.panoramas)
        with DaskProcesses(folder, args.workers, ("--preload", __file__)) as processes:
            assert processes.client is not None
            wall_ms, cpu_ms, round_trip_ms = task_overhead(processes.client)
            print(f"scheduler, empty tasks: {wall_ms:.2f} ms a task queued, {cpu_ms:.2f} ms of scheduler CPU "
                  f"a task, {round_trip_ms:.1f} ms a round trip")
            for attempt in range(args.repeat):
                idle = processes.client.run_on_scheduler(_bytes_moved)   # the cluster idles meanwhile
                local = anonymize(scene, folder / f"local{attempt}", Settings(), workers=args.workers)
                moved = processes.client.run_on_scheduler(_bytes_moved)
                idle = (moved - idle) / local.wall
                with DaskCluster(processes.address) as cluster:
                    clustered = anonymize(scene, folder / f"cluster{attempt}", Settings(), pool=cluster)
                moved = processes.client.run_on_scheduler(_bytes_moved) - moved
                _report(local, clustered, moved, idle)
                if args.single_threaded:
                    with _environment(NANNY_THREADS):
                        single = anonymize(scene, folder / f"single{attempt}", Settings(), workers=args.workers)
                    print(f"  the pool with {' '.join(f'{k}={v}' for k, v in NANNY_THREADS.items())}: "
                          f"{single.wall:.1f} s ({len(single.done) / single.wall * 60:.1f}/min)")
            _sizes(scene)


def _report(local, clustered, moved: int, idle: float) -> None:
    """The throughputs and their ratio; the scheduler's bytes a view, less its idle chatter
    (heartbeats, ``idle`` bytes a second while the pool ran)."""
    rates = [len(run.done) / run.wall * 60 for run in (local, clustered)]
    print(f"{len(local.done)} panoramas: local pool {local.wall:.1f} s ({rates[0]:.1f}/min), Dask cluster "
          f"{clustered.wall:.1f} s ({rates[1]:.1f}/min): ratio {rates[1] / rates[0]:.2f}× (target ≥ 0.9); "
          f"failed: {len(local.failed)} / {len(clustered.failed)}")
    for name, each in (("pool", local), ("cluster", clustered)):
        print(f"  {name}, seconds a view by stage: " + ", ".join(
            f"{stage} {each.seconds.get(stage, 0.0) / len(each.done):.2f}" for stage in STAGES)
              + f"; peak {each.worker_peak_mb:.0f} MB a worker")
    run = moved - idle * clustered.wall
    print(f"through the scheduler: {moved / 1024:.0f} KiB, of which {idle * clustered.wall / 1024:.0f} KiB idle "
          f"chatter ({idle:.0f} B/s): {run / len(clustered.done) / 1024:.1f} KiB a view for the run")


def _sizes(scene: Path) -> None:
    """A source image's size, and what the source guard (sent once to every worker with the
    settings) weighs per view when pickled."""
    images = sorted((scene.parent / "images").iterdir())
    guard = guard_for(images, [scene.parent / "images"])
    print(f"a source image: {sum(p.stat().st_size for p in images) / len(images) / 1024:.0f} KiB on average; "
          f"the source guard: {len(pickle.dumps(guard)) / len(images):.0f} bytes a view, once per worker")


if __name__ == "__main__":
    main()
