"""The report store: SQLite in WAL mode, schema migrations by ``user_version``, one table of
reports and an append-only audit table of every status change."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson

from ..errors import InputError
from .models import Category, Report, ReportIn, Status

#: Schema versions: the n-th script takes a store from version n to n + 1.
MIGRATIONS = (
    """
    CREATE TABLE reports (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        viewpoint_id  INTEGER NOT NULL,
        category      TEXT NOT NULL CHECK (category IN ('blur_missing', 'blur_excess')),
        polygon       TEXT NOT NULL,            -- JSON [{"pitch": .., "yaw": ..}, ...]
        comment       TEXT NOT NULL DEFAULT '',
        status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        reviewer_note TEXT NOT NULL DEFAULT '',
        source        TEXT UNIQUE,              -- digest of an imported feed entry
        applied_run   TEXT                      -- the apply run that last changed the masks for it
    );
    CREATE INDEX reports_status ON reports (status);
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        report_id   INTEGER NOT NULL REFERENCES reports (id),
        at          TEXT NOT NULL,
        old_status  TEXT,
        new_status  TEXT NOT NULL,
        actor       TEXT NOT NULL,
        note        TEXT NOT NULL DEFAULT ''
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
    """,
)


class TransitionError(Exception):
    """A status change that is not allowed (e.g. accepting an accepted report)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ReportStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with closing(sqlite3.connect(self.path)) as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent; not allowed inside a transaction
            with self._connect() as db:
                self._migrate(db)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a report store ({exc})") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection per operation, one transaction: safe from any thread."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise InputError(f"{self.path}: report store version {version} is newer than this program "
                             f"({len(MIGRATIONS)})")
        for number in range(version, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[number]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number + 1}")

    @property
    def version(self) -> int:
        with self._connect() as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    # ------------------------------------------------------------------------ reports
    def add(self, report: ReportIn, *, actor: str = "visitor", status: Status = Status.pending,
            source: str | None = None) -> int | None:
        """Store a report; returns its id (None when ``source`` was imported before)."""
        now = _now()
        polygon = orjson.dumps([v.model_dump() for v in report.polygon]).decode()
        with self._connect() as db:
            if source is not None and db.execute("SELECT 1 FROM reports WHERE source = ?", (source,)).fetchone():
                return None
            cursor = db.execute(
                "INSERT INTO reports (viewpoint_id, category, polygon, comment, status, created_at, updated_at, "
                "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (report.viewpoint_id, report.category.value, polygon, report.comment, status.value, now, now,
                 source))
            report_id = cursor.lastrowid
            db.execute("INSERT INTO audit (report_id, at, old_status, new_status, actor) VALUES (?, ?, NULL, ?, ?)",
                       (report_id, now, status.value, actor))
        return report_id

    def get(self, report_id: int) -> Report | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM reports WHERE id = ?", (report_id,)).fetchone()
        return _report(row) if row else None

    def list(self, status: Status | None = None, category: Category | None = None, *, after: int = 0,
             limit: int | None = None) -> list[Report]:
        """Reports oldest first: all, or the first ``limit`` with an id above ``after``."""
        query = "SELECT * FROM reports WHERE id > ?"
        args: list[int | str] = [after]
        if status is not None:
            query += " AND status = ?"
            args.append(status.value)
        if category is not None:
            query += " AND category = ?"
            args.append(category.value)
        query += " ORDER BY id" + (" LIMIT ?" if limit is not None else "")
        with self._connect() as db:
            return [_report(row) for row in db.execute(query, args + ([limit] if limit is not None else []))]

    def pages(self, status: Status | None = None, category: Category | None = None,
              size: int = 500) -> Iterator[builtins.list[Report]]:
        """``list`` in pages of ``size`` reports, each read in its own short transaction."""
        after = 0
        while page := self.list(status, category, after=after, limit=size):
            yield page
            after = page[-1].id

    def decide(self, report_id: int, status: Status, note: str = "", actor: str = "moderator") -> Report:
        """Accept or reject a report (a decision can be reversed, never undone to pending)."""
        if status is Status.pending:
            raise TransitionError("a report cannot go back to pending")
        now = _now()
        with self._connect() as db:
            row = db.execute("SELECT status FROM reports WHERE id = ?", (report_id,)).fetchone()
            if row is None:
                raise KeyError(report_id)
            if row["status"] == status.value:
                raise TransitionError(f"report {report_id} is already {status.value}")
            db.execute("UPDATE reports SET status = ?, reviewer_note = ?, updated_at = ? WHERE id = ?",
                       (status.value, note, now, report_id))
            db.execute("INSERT INTO audit (report_id, at, old_status, new_status, actor, note) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (report_id, now, row["status"], status.value, actor, note))
        decided = self.get(report_id)
        if decided is None:  # not reached: reports are never deleted
            raise KeyError(report_id)
        return decided

    def mark_applied(self, report_ids: Iterable[int], run_id: str | None) -> None:
        """Record the apply run that put these reports into the masks (None: taken out again)."""
        with self._connect() as db:
            db.executemany("UPDATE reports SET applied_run = ?, updated_at = ? WHERE id = ?",
                           [(run_id, _now(), i) for i in report_ids])

    def audit(self, report_id: int | None = None) -> builtins.list[dict]:
        query = "SELECT * FROM audit" + (" WHERE report_id = ?" if report_id is not None else "") + " ORDER BY id"
        with self._connect() as db:
            return [dict(row) for row in db.execute(query, () if report_id is None else (report_id,))]


def _statements(script: str) -> list[str]:
    """A migration script's statements (triggers keep their inner ``;``)."""
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _report(row: sqlite3.Row) -> Report:
    return Report(id=row["id"], viewpoint_id=row["viewpoint_id"], category=row["category"],
                  polygon=orjson.loads(row["polygon"]), comment=row["comment"], status=row["status"],
                  created_at=row["created_at"], updated_at=row["updated_at"], reviewer_note=row["reviewer_note"],
                  applied_run=row["applied_run"])
