"""``--scheduler``: the views run as tasks on an existing Dask cluster (``distributed``, the
``[dask]`` extra; only this module imports it, and only when a scheduler is given).

- Each worker builds its state (the model) once, in a worker plugin, when the run starts, and
  again on a worker that joins or restarts later.
- Views go to the scheduler in batches (``batch_size``), so that its cost per view stays small.
  Tasks carry paths and settings, results the small per-view record: no image passes through the
  scheduler. The workers read the sources and write the outputs on a file system they all see at
  the same paths (checked first: ``check_storage``); this process alone writes the state files.
- Failures: a view that fails fails alone (``runner.attempt``); the batch of a worker that dies is
  run again elsewhere by Dask; a batch that Dask gives up on (``KilledWorker``: its workers died
  too often) is tried again a view at a time, so that a view that kills its worker fails alone.
- A run takes over from any earlier one on the same output folder: the batches of a killed client,
  which Dask cannot stop mid-task, stop before their next view.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import math
import os
import secrets
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

from distributed import Client, as_completed, get_worker
from distributed.comm import resolve_address
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.scheduler import KilledWorker

from . import __version__
from .atomic import PART_SUFFIX
from .errors import InputError
from .failures import reason
from .runner import WORKER_MALLOC, Outcome, Setup, attempt, failed

#: Seconds to wait for a first worker when the scheduler has none.
WAIT_FOR_WORKERS = 30
#: A batch's views run one after the other on one worker: at most this many, and few enough that
#: every worker gets several batches (the last ones then end close together).
MAX_BATCH, BATCHES_PER_WORKER = 8, 4
#: Workers the scheduler serves per view of a batch: beyond this many, batches grow (README,
#: Scaling: about 1 ms of the scheduler's CPU a task, against 3-15 s a view).
WORKERS_PER_BATCHED_VIEW = 250
#: glibc's mallopt parameters (malloc.h): the local pool's WORKER_MALLOC for a worker already started.
M_TRIM_THRESHOLD, M_TOP_PAD = -1, -2
DIED = "its Dask worker died each time it ran this view (killed, or out of memory)"
SHARED = "the images and --out must be on a file system every worker sees at the same path"


def batch_size(views: int, workers: int) -> int:
    """Views per task for ``views`` views on ``workers`` workers (see the constants)."""
    workers = max(workers, 1)
    wanted = math.ceil(workers / WORKERS_PER_BATCHED_VIEW)
    return max(1, min(wanted, MAX_BATCH, views // (workers * BATCHES_PER_WORKER)))


class DaskCluster:
    """A connection to an existing Dask scheduler, used as ``runner.Pool``; ``batch`` views a
    task (default: ``batch_size``)."""

    def __init__(self, address: str, batch: int | None = None):
        self.address, self.batch = address, batch
        try:
            resolve_address(address)
            # the timeout is Dask's own: distributed.comm.timeouts.connect
            self.client = Client(address, set_as_default=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{address}: the Dask scheduler cannot be reached ({reason(exc)})") from None
        try:
            self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS)
        except TimeoutError:
            self.close()
            raise InputError(f"{address}: the Dask scheduler has no workers") from None

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def workers(self) -> list[str]:
        return sorted(self.client.nthreads())

    def check_storage(self, source: str, folder: Path) -> None:
        """Every worker stats ``source``, reads the probe file this process wrote in ``folder``
        (so it sees the same folder, not one of its own), and writes and removes its own file
        there; and runs this version of the package. The first problem, in one line."""
        token = secrets.token_hex(8)
        probe = folder / f".probe-{token}{PART_SUFFIX}"   # a killed run's is removed by the next one
        probe.write_text(token)
        try:
            answers = self.client.run(_probe, source, str(folder), probe.name, token, __version__, on_error="return")
        finally:
            probe.unlink(missing_ok=True)
        for worker, answer in sorted(answers.items()):
            problem = f"{type(answer).__name__}: {reason(answer)}" if isinstance(answer, BaseException) else answer
            if problem:
                raise InputError(f"worker {worker}: {problem}")

    def run(self, items: list, setup: Setup, on_outcomes: Callable[[list[Outcome]], None]) -> None:
        """The items in batches on the cluster; see the module docstring."""
        if not items:
            return
        name, run = f"scanvan-sfm {setup.scope}", secrets.token_hex(8)
        try:
            self.client.register_plugin(_WorkerState(setup, run), name=name)
        except Exception as exc:  # any worker's error, as Dask raises it
            raise InputError(f"{self.address}: the workers could not start: {reason(exc)}") from None
        try:
            self._run_batches(items, name, run, on_outcomes)
        finally:
            self.client.unregister_worker_plugin(name)

    def _run_batches(self, items: list, name: str, run: str, on_outcomes: Callable[[list[Outcome]], None]) -> None:
        size = self.batch or batch_size(len(items), len(self.workers()))
        batches: dict[Any, list] = {}
        numbers = itertools.count()

        def submit(batch: list) -> Any:
            future = self.client.submit(_run_batch, name, run, batch, key=f"scanvan-sfm-{run}-{next(numbers)}")
            batches[future] = batch
            return future

        # Results are fetched here, not by as_completed(with_results=True): a finished batch whose
        # worker dies before its result is gathered runs again, and if it then fails, that
        # as_completed never yields it (its result fetch raises) and the run would wait forever.
        pending = as_completed([submit(items[i:i + size]) for i in range(0, len(items), size)], loop=self.client.loop)
        for ended in pending.batches():
            outcomes: list[Outcome] = []
            for future in ended:
                batch = batches.pop(future)
                try:
                    outcomes += future.result()
                except KilledWorker:
                    if len(batch) > 1:
                        pending.update(submit([item]) for item in batch)   # each view alone
                    else:
                        outcomes += [Outcome(item, False, DIED) for item in batch]
                except (Exception, CancelledError) as exc:  # CancelledError is no Exception
                    outcomes += [failed(item, exc) for item in batch]
            if outcomes:
                on_outcomes(outcomes)


# ------------------------------------------------------------------------------- worker side

class _WorkerState(WorkerPlugin):
    """One run's worker state (``Setup``), built once per worker."""

    def __init__(self, recipe: Setup, run: str):
        self.recipe, self.run = recipe, run
        self.state: Any = None
        self.error = ""

    async def setup(self, worker) -> None:
        await asyncio.to_thread(self._build)  # the model loads without stalling the worker's heartbeats

    def _build(self) -> None:
        _keep_freed_memory()
        # TensorFlow's native logs stay in the worker's own log: the worker outlives this run, and
        # the once-per-process redirect would keep writing into this run's output folder
        from .segment import keep_native_stderr
        keep_native_stderr()
        try:
            self.state = self.recipe.factory(*self.recipe.args)
        except Exception as exc:
            self.error = f"the worker could not start: {failed(None, exc).reason}"

    def teardown(self, worker) -> None:
        self.state = None

    def process(self, item: Any) -> Any:
        if self.error:
            raise InputError(self.error)
        return self.state.process(item)


class Superseded(Exception):
    """A newer run on the same output folder took over this batch's worker state."""


def _run_batch(name: str, run: str, items: list) -> list[Outcome]:
    """A task: the batch's views one after the other, each under the failure policy."""
    worker = get_worker()
    outcomes = []
    for item in items:
        plugin = worker.plugins.get(name)
        if not isinstance(plugin, _WorkerState) or plugin.run != run:
            raise Superseded(f"run {run} was superseded on {name}")  # its client is gone
        outcomes.append(attempt(item, plugin.process, worker.address))
    return outcomes


def _probe(source: str, folder: str, probe: str, token: str, version: str) -> str:
    """On a worker: the first problem with the shared file system or the package, or ""."""
    if version != __version__:
        return f"runs scanvan-sfm {__version__}, not {version} as this client does"
    try:
        os.stat(source)
    except OSError as exc:
        return f"cannot see the image {source}: {exc.strerror} ({SHARED})"
    try:
        with open(os.path.join(folder, probe)) as f:
            seen = f.read() == token
    except OSError:
        seen = False
    if not seen:
        return f"does not see the output folder {folder} this client writes in ({SHARED})"
    mine = os.path.join(folder, f".probe-{token}-{os.getpid()}{PART_SUFFIX}")
    try:
        with open(mine, "x") as f:
            f.write(token)
        os.remove(mine)
    except OSError as exc:
        return f"cannot write in {folder}: {exc.strerror}"
    return ""


def _keep_freed_memory() -> None:
    """glibc keeps freed memory, as in the local pool's workers (``runner.WORKER_MALLOC``; Dask
    starts its workers with a small trim threshold); a no-op elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_TRIM_THRESHOLD, int(WORKER_MALLOC["MALLOC_TRIM_THRESHOLD_"]))
    libc.mallopt(M_TOP_PAD, int(WORKER_MALLOC["MALLOC_TOP_PAD_"]))
