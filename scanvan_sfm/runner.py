"""One runner for every batch: ``run_each(items, work, workers, processes=…)``.

Threads serve the folder steps; worker processes (spawned, each set up once by ``initializer``)
serve the pipeline. Either way one failure policy holds: an expected error
(``failures.EXPECTED_ERRORS``) or any other exception fails its item alone, told in one line.
A worker process that dies (killed, out of memory) does not stop the batch: the pool is rebuilt,
the items it took down are tried once more one at a time, so the one that kills its worker again
fails alone.

``Pool`` is what ``anonymize`` and ``reports apply`` hand their views to: worker processes here
(``LocalPool``), this process (``InProcess``) or an existing Dask cluster (``cluster.DaskCluster``);
each builds its per-worker state once (``Setup``) and reports outcomes as they come.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .failures import EXPECTED_ERRORS, reason

#: glibc keeps freed memory instead of handing each large image array back to the system and
#: faulting it in again for the next item (a third of the workers' time went to that).
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(256 << 20), "MALLOC_TOP_PAD_": str(64 << 20)}
DIED = "its worker process died twice (killed, or out of memory)"


@dataclass
class Outcome:
    """One item's result: its value, or why it failed."""

    item: Any
    ok: bool
    reason: str = ""
    value: Any = None
    worker: str = ""       # the Dask worker that ran it (none here)


@dataclass(frozen=True)
class Setup:
    """A worker's state, built once per worker: ``factory(*args)``, an object whose ``process(item)``
    does one item. Both must pickle (an importable class, plain arguments). On a cluster, a run
    takes over the workers from an earlier one of the same ``scope`` (its output folder)."""

    factory: Callable[..., Any]
    args: tuple = ()
    scope: str = ""


class Pool(Protocol):
    """Where a batch of items runs."""

    def check_storage(self, source: str, folder: Path) -> None:
        """Fail in one line (``InputError``) when a worker cannot read ``source`` or write in
        ``folder``, before any work."""

    def run(self, items: list, setup: Setup, on_outcomes: Callable[[list[Outcome]], None]) -> None:
        """``setup``'s ``process(item)`` for every item; ``on_outcomes`` hears of them as they end."""


class LocalPool:
    """The embedded default: ``workers`` worker processes on this machine (``run_each``)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers

    def check_storage(self, source: str, folder: Path) -> None:
        """One machine, one file system: nothing to check."""

    def run(self, items: list, setup: Setup, on_outcomes: Callable[[list[Outcome]], None]) -> None:
        run_each(items, _process, self.workers, processes=True, initializer=_start, initargs=(setup,),
                 on_outcome=lambda outcome: on_outcomes([outcome]))


class InProcess:
    """One item after the other in this process."""

    def check_storage(self, source: str, folder: Path) -> None:
        """This process's own file system: nothing to check."""

    def run(self, items: list, setup: Setup, on_outcomes: Callable[[list[Outcome]], None]) -> None:
        state = setup.factory(*setup.args)
        for item in items:
            on_outcomes([attempt(item, state.process)])


_state: Any = None   # a worker process's state (``Setup``)


def _start(setup: Setup) -> None:
    global _state
    _state = setup.factory(*setup.args)


def _process(item: Any) -> Any:
    assert _state is not None, "worker not started"
    return _state.process(item)


def run_each(items: Iterable, work: Callable[[Any], Any], workers: int | None = None, *, processes: bool = False,
             initializer: Callable | None = None, initargs: tuple = (),
             on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """``work(item)`` for every item, ``workers`` at once; ``on_outcome`` hears of each as it
    ends. With ``processes``, ``work`` and ``initializer`` must be importable functions."""
    queue = deque(items)
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    workers = max(1, min(workers or os.cpu_count() or 1, len(queue) or 1))
    if not processes:
        with ThreadPoolExecutor(workers) as threads:
            _drain(threads, queue, work, workers, record)
        return outcomes
    for name, value in WORKER_MALLOC.items():  # read by the C library when a worker starts
        os.environ.setdefault(name, value)
    retry: deque = deque()
    while queue or retry:
        first_try = bool(queue)
        at_once = workers if first_try else 1
        with _process_pool(at_once, initializer, initargs) as pool:
            lost = _drain(pool, queue if first_try else retry, work, at_once, record)
        if first_try:
            retry.extend(lost)
        else:
            for item in lost:
                record(Outcome(item, False, DIED))
    return outcomes


def _process_pool(workers: int, initializer: Callable | None, initargs: tuple) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    return ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs)


def _drain(pool: Executor, queue: deque, work: Callable, at_once: int, record: Callable[[Outcome], None]) -> list:
    """Run the queue's items, ``at_once`` in flight, until it is empty or the pool breaks;
    returns the items the broken pool took down."""
    running: dict[Future, Any] = {}
    lost: list = []
    while (queue or running) and not lost:
        while queue and len(running) < at_once:
            item = queue.popleft()
            try:
                running[pool.submit(work, item)] = item
            except BrokenProcessPool:  # the pool broke since the last wait: the item never ran
                lost.append(item)
                break
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        if lost or any(isinstance(f.exception(), BrokenProcessPool) for f in done):
            done, _ = wait(running)  # the pool is gone: every other item ends at once
        for future in done:
            item = running.pop(future)
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool):
                lost.append(item)
            else:
                record(_outcome(item, future))
    return lost


def _outcome(item: Any, future: Future) -> Outcome:
    exc = future.exception()
    return Outcome(item, True, value=future.result()) if exc is None else failed(item, exc)


def attempt(item: Any, work: Callable[[Any], Any], worker: str = "") -> Outcome:
    """``work(item)`` here and now, under the failure policy."""
    try:
        return Outcome(item, True, value=work(item), worker=worker)
    except Exception as exc:
        return failed(item, exc, worker)


def failed(item: Any, exc: BaseException, worker: str = "") -> Outcome:
    """The item failed with ``exc``: an expected error in one line, anything else with its type."""
    if isinstance(exc, EXPECTED_ERRORS):
        return Outcome(item, False, reason(exc), worker=worker)
    return Outcome(item, False, f"{type(exc).__name__}: {reason(exc)}", worker=worker)
