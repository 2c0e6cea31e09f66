"""What the commands print: progress bars and the summary tables, in one place. Visitor and
file text is printed literally (no console markup). Off a terminal (a log, CI), or with
``NO_COLOR``, progress comes as plain lines and tables in ASCII without colour."""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .errors import one_line
from .pipeline import STAGES
from .runner import Outcome

console = Console(stderr=True)
stdout = Console()
PLAIN = not console.is_terminal or bool(os.environ.get("NO_COLOR"))
PLAIN_EVERY = 10.0   # seconds between plain progress lines
BOX = box.ASCII if PLAIN else box.HEAVY_HEAD


def say(text: str) -> None:
    """A line on stderr, printed as it is."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def progress_bar(title: str, total: int | None = None) -> Iterator:
    """A bar on stderr (plain lines off a terminal); yields ``update(done, total)``."""
    if PLAIN:
        yield _plain_progress(title)
        return
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _plain_progress(title: str):
    """``title: done/total`` lines, at most every ``PLAIN_EVERY`` seconds, and at the end."""
    last = 0.0

    def update(done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PLAIN_EVERY or done == total:
            last = now
            say(f"{title}: {done}/{total if total is not None else '?'}")

    return update


def table(title: str, columns: tuple[str, ...], *rows: list[str]) -> Table:
    result = Table(title=title, box=BOX)
    for column in columns:
        result.add_column(column, justify="right")
    for row in rows:
        result.add_row(*row)
    return result


def mean_share(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2%}" if values else "-"


def summarize_items(title: str, outcomes: list[Outcome], seconds: float, means: dict[str, str] | None = None) -> int:
    """The failures and a summary table of a folder step; returns the exit code (1 when
    anything failed)."""
    failed = [o for o in outcomes if not o.ok]
    for o in sorted(failed, key=lambda o: o.item):
        say(f"failed: {o.item}: {o.reason}")
    done = [o for o in outcomes if o.ok]
    columns: tuple[str, ...] = ("images", "done", "failed", "seconds")
    row = [str(len(outcomes)), str(len(done)), str(len(failed)), f"{seconds:.1f}"]
    for stat, label in (means or {}).items():
        columns += (label,)
        row.append(mean_share([o.value[stat] for o in done if o.value and stat in o.value]))
    console.print(table(title, columns, row))
    return 1 if failed else 0


def summarize_anonymize(scene, run) -> None:
    """``anonymize``: failures, the views table, the views left out and the time per stage."""
    for view_id, reason in sorted(run.failed.items()):
        say(f"failed: view {view_id}: {reason}")
    console.print(table(f"anonymize {scene}", ("views done", "up to date", "failed", "not reconstructed",
                                                "mean masked", "seconds", "peak MB / worker"),
                        [str(len(run.done)), str(len(run.skipped)), str(len(run.failed)),
                         str(len(run.unreconstructed)), mean_share(run.masked), f"{run.wall:.1f}",
                         f"{run.worker_peak_mb:.0f}" if run.worker_peak_mb else "-"]))
    if any(run.workers):  # on a Dask cluster
        console.print(table("views by worker", ("worker", "views done", "failed", "seconds", "peak MB"),
                            *([worker, str(s.done), str(s.failed), f"{s.seconds:.1f}", f"{s.peak_mb:.0f}"]
                              for worker, s in sorted(run.workers.items()))))
    if run.camera_mask:
        say(camera_mask_line(run.camera_mask))
    if run.jpeg_whole:
        console.print(table("JPEG encoded whole, not block by block", ("reason", "views"),
                            *([reason, str(count)] for reason, count in run.jpeg_whole.most_common())))
    if run.unreconstructed:
        say(f"not reconstructed, left out (--all-views to include): views {', '.join(map(str, run.unreconstructed))}")
    if run.seconds:
        console.print(table("time per stage (seconds, all workers)", STAGES,
                            [f"{run.seconds.get(stage, 0.0):.2f}" for stage in STAGES]))
    say(f"registered scene: {run.scene_json} and {run.scene_bin.name}")
    say(f"review page: {run.review}")


def camera_mask_line(found) -> str:
    """What ``--camera-mask auto`` found (``auto_mask.AutoMask``), in one line."""
    if found.path is None:
        return f"camera mask: none ({found.reason}; {found.seconds:.1f} s)"
    turning = ", turning with the heading" if found.turned else ""
    return (f"camera mask: the rig found in {found.views} panoramas in {found.seconds:.1f} s, "
            f"{found.share:.1%} of each image{turning}: {found.path}")


def summarize_apply(run, dry_run: bool) -> None:
    """``reports apply``: the skipped reports, the views changed and the run's totals."""
    for key, reason in run.skipped.items():
        say(f"skipped: {key}: {reason}")
    if run.changes:
        on_cluster = any(c.worker for c in run.changes)
        console.print(table("views" + (" (dry run: nothing written)" if dry_run else ""),
                            ("view", "reports", "masked before", "masked after", "re-filled", "error")
                            + (("worker",) if on_cluster else ()),
                            *([str(c.view_id), ", ".join(c.reports) or "-", f"{c.masked_before:.2%}",
                               f"{c.masked_after:.2%}", "yes" if c.refilled else "no", c.error or ""]
                              + ([c.worker] if on_cluster else []) for c in run.changes)))
    console.print(table(f"reports apply ({run.run_id})", ("reports applied", "taken out", "skipped",
                                                          "views re-filled", "regions propagated", "failed",
                                                          "seconds"),
                        [str(len(run.applied)), str(len(run.undone)), str(len(run.skipped)),
                         str(sum(c.refilled for c in run.changes)), str(run.propagated), str(len(run.failed)),
                         f"{run.seconds:.1f}"]))
    if run.review:
        say(f"review page: {run.review}")


def show_scene_info(info: dict) -> None:
    """``scene info``: one row per count."""
    rows = Table(title=info["file"], show_header=False, box=BOX)
    for key, value in info.items():
        if key != "file":
            rows.add_row(key.replace("_", " "), ", ".join(f"{k}: {v}" for k, v in value.items())
                         if isinstance(value, dict) else str(value))
    stdout.print(rows)


def show_validation(file, scene, problems: list, warnings: list, images_checked: str, note: str | None) -> None:
    """``scene validate``: every problem, warning and the note on stdout, the counts on stderr."""
    for problem in problems:  # one line each: names and folders with a line break are escaped
        print(one_line(f"{file}: {problem}"))
    for warning in warnings:
        print(one_line(f"{file}: warning: {warning}"))
    if note:
        print(one_line(f"{file}: note: {note}"))
    rows = Table(show_header=False, box=BOX)
    for name, value in (("views", len(scene.views)), ("reconstructed", len(scene.reconstructed_views())),
                        ("landmarks", len(scene.structure)), ("images checked", images_checked),
                        ("problems", len(problems)), ("warnings", len(warnings))):
        rows.add_row(name, str(value))
    console.print(rows)


def show_regression(scene, checks: list, scene_equal: bool, problems: list[str], min_iou: float) -> bool:
    """``regress``: a row per view and the problems; returns whether everything passed."""
    stdout.print(table(f"regress {scene}", ("view", "mask IoU", "outside mask identical", "names equal", "result"),
                       *([str(c.view), f"{c.iou:.4f}", "yes" if c.outside_identical else "NO",
                          "yes" if c.mapping_equal else "NO", "ok" if c.passed(min_iou) else "REGRESSION"]
                         for c in checks)))
    for problem in problems:
        say(f"regression: {problem}")
    console.print(f"registered scene equal by id: {'yes' if scene_equal else 'NO'}")
    return scene_equal and not problems and all(c.passed(min_iou) for c in checks)


def show_reports(db, reports: list) -> None:
    """``reports list``: visitor text shown literally (see ``visible``)."""
    rows = Table(title=Text(f"reports in {db}"), box=BOX)
    for column in ("id", "viewpoint", "category", "status", "corners", "created", "applied run", "comment"):
        rows.add_column(column)
    for r in reports:
        rows.add_row(str(r.id), str(r.viewpoint_id), r.category.value, r.status.value, str(len(r.polygon)),
                     r.created_at.strftime("%Y-%m-%d %H:%M"), r.applied_run or "-", Text(visible(r.comment[:40])))
    stdout.print(rows)


def visible(text: str) -> str:
    """Visitor text for the terminal: control and format characters (escape sequences, bidi
    overrides) written as Python escapes, so only the text itself reaches the screen."""
    return "".join(c.encode("unicode_escape").decode() if unicodedata.category(c)[0] == "C" else c for c in text)
