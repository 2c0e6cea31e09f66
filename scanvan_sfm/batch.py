"""Run one step over many images: a progress bar, one failure never stops the others, and a
short summary table at the end."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .failures import EXPECTED_ERRORS, reason

console = Console(stderr=True)


@dataclass
class Outcome:
    item: str
    ok: bool
    message: str = ""
    stats: dict[str, float] = field(default_factory=dict)


def run_batch(title: str, items: Iterable[str], work: Callable[[str], dict[str, float] | None],
              workers: int | None = None) -> list[Outcome]:
    """``work(item)`` for every item in parallel; bad input fails that item only."""
    items = list(items)
    outcomes: list[Outcome] = []
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress, \
            ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        task = progress.add_task(title, total=len(items))
        futures = {pool.submit(work, item): item for item in items}
        for future in as_completed(futures):
            item = futures[future]
            try:
                outcomes.append(Outcome(item, True, stats=future.result() or {}))
            except EXPECTED_ERRORS as exc:
                outcomes.append(Outcome(item, False, reason(exc)))
            progress.advance(task)
    return sorted(outcomes, key=lambda o: o.item)


def summarize(title: str, outcomes: list[Outcome], seconds: float, means: dict[str, str] | None = None) -> int:
    """Print the failures and a summary table; return the exit code (1 when anything failed)."""
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        console.print(f"failed: {o.item}: {o.message}", markup=False, highlight=False, soft_wrap=True)
    table = Table(title=title)
    for column in ("images", "done", "failed", "seconds"):
        table.add_column(column, justify="right")
    done = [o for o in outcomes if o.ok]
    row = [str(len(outcomes)), str(len(done)), str(len(failed)), f"{seconds:.1f}"]
    for stat, label in (means or {}).items():
        values = [o.stats[stat] for o in done if stat in o.stats]
        table.add_column(label, justify="right")
        row.append(f"{sum(values) / len(values):.2%}" if values else "-")
    table.add_row(*row)
    console.print(table)
    return 1 if failed else 0


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
