"""The one runner: threads and worker processes, one failure policy, dead workers retried."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import cv2

from scanvan_sfm.errors import InputError
from scanvan_sfm.runner import DIED, _drain, run_each


def square(n: int) -> int:
    """A work function for worker processes: fails or kills its worker on purpose for some items."""
    if n == 3:
        raise InputError("three is bad input\nwith a second line")
    if n == 4:
        raise cv2.error("OpenCV assertion")
    if n == 5:
        raise KeyError("a bug")
    if n == 6:
        os._exit(137)  # the worker dies, every time
    return n * n


def test_threads_fail_items_alone_with_one_line_reasons():
    heard = []
    outcomes = {o.item: o for o in run_each(range(6), square, 2, on_outcome=heard.append)}
    assert len(heard) == 6 and {o.item: o.value for o in outcomes.values() if o.ok} == {0: 0, 1: 1, 2: 4}
    assert outcomes[3].reason.startswith("three is bad input") and "\n" not in outcomes[3].reason
    assert "OpenCV assertion" in outcomes[4].reason
    assert outcomes[5].reason == "KeyError: 'a bug'"


def test_processes_survive_a_worker_that_dies():
    outcomes = {o.item: o for o in run_each([0, 1, 2, 6, 7, 8], square, 2, processes=True)}
    assert {k: o.value for k, o in outcomes.items() if o.ok} == {0: 0, 1: 1, 2: 4, 7: 49, 8: 64}
    assert not outcomes[6].ok and outcomes[6].reason == DIED


def test_empty_batch():
    assert run_each([], square) == []


class _BreaksOnSubmit(ThreadPoolExecutor):
    """A pool that breaks, as a process pool does when a worker dies, after ``runs`` submits."""

    def __init__(self, runs: int):
        super().__init__(1)
        self.runs = runs

    def submit(self, fn, /, *args, **kwargs):
        if self.runs == 0:
            raise BrokenProcessPool("a child process terminated abruptly")
        self.runs -= 1
        return super().submit(fn, *args, **kwargs)


def test_a_pool_that_breaks_between_two_submits_loses_the_item_to_a_retry():
    """The race CI met once: a worker dies after a view finished and before the next is sent."""
    queue = deque([1, 2, 3])
    outcomes = []
    with _BreaksOnSubmit(runs=1) as pool:
        lost = _drain(pool, queue, lambda item: item * 10, 1, outcomes.append)
    assert [(o.item, o.ok, o.value) for o in outcomes] == [(1, True, 10)]
    assert lost == [2] and list(queue) == [3]  # item 2 is retried alone, item 3 goes to a new pool
