"""The report store (SQLite, WAL, migrations, append-only audit) and the original feed format."""

from __future__ import annotations

import sqlite3

import orjson
import pytest
from typer.testing import CliRunner

from helpers import needs_shared
from scanvan_sfm.cli import app
from scanvan_sfm.errors import InputError
from scanvan_sfm.reports.feed import feed_reports
from scanvan_sfm.reports.models import ReportIn, Status
from scanvan_sfm.reports.store import MIGRATIONS, ReportStore, TransitionError
from scanvan_sfm.sfm import read_scene
from service_helpers import SCENE

TRIANGLE = [{"pitch": 1.2, "yaw": 6.1}, {"pitch": 1.4, "yaw": 0.2}, {"pitch": 1.3, "yaw": 6.2}]  # across the seam
FEED = [{"filepath": "images/R0010212.JPG", "viewpointId": 2, "pitchYawOrders": TRIANGLE},
        {"filepath": "R0010214.JPG", "viewpointId": 4, "pitchYawOrders": TRIANGLE[::-1]}]


def new_report(view: int = 1) -> ReportIn:
    return ReportIn(viewpoint_id=view, category="blur_missing", polygon=TRIANGLE, comment="")


def test_store_is_wal_and_versioned(tmp_path):
    store = ReportStore(tmp_path / "r.sqlite")
    assert store.version == len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ReportStore(tmp_path / "r.sqlite")  # reopening migrates nothing and keeps the data
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(InputError, match="newer than this program"):
        ReportStore(tmp_path / "r.sqlite")


def test_not_a_store_is_one_line(tmp_path):
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match="not a report store"):
        ReportStore(tmp_path / "junk.sqlite")


def test_decisions_and_the_append_only_audit(tmp_path):
    store = ReportStore(tmp_path / "r.sqlite")
    report_id = store.add(new_report())
    assert store.decide(report_id, Status.accepted, "seen").status == "accepted"
    with pytest.raises(TransitionError):
        store.decide(report_id, Status.accepted)
    with pytest.raises(TransitionError):
        store.decide(report_id, Status.pending)
    with pytest.raises(KeyError):
        store.decide(999, Status.rejected)
    store.decide(report_id, Status.rejected, "taken back")
    trail = store.audit(report_id)
    assert [(a["old_status"], a["new_status"], a["note"]) for a in trail] == [
        (None, "pending", ""), ("pending", "accepted", "seen"), ("accepted", "rejected", "taken back")]
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        for statement in ("UPDATE audit SET note = 'forged'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
    store.mark_applied([report_id], "run-1")
    assert store.get(report_id).applied_run == "run-1"


@needs_shared
def test_feed_import_is_idempotent_and_checked(tmp_path):
    scene = read_scene(SCENE, structure=False)
    feed = tmp_path / "feed.json"
    feed.write_bytes(orjson.dumps(FEED))
    entries = feed_reports(feed, scene)
    assert [r.viewpoint_id for r, _ in entries] == [2, 4]
    store = ReportStore(tmp_path / "r.sqlite")
    assert [store.add(r, source=d) for r, d in entries] == [1, 2]
    assert [store.add(r, source=d) for r, d in entries] == [None, None]
    two_corners = {"filepath": "a", "viewpointId": 2, "pitchYawOrders": TRIANGLE[:2]}
    pitch_out_of_range = {"filepath": "a", "viewpointId": 2, "pitchYawOrders": [{"pitch": 9, "yaw": 1}] * 3}
    for broken, where in (([FEED[0] | {"viewpointId": 77}], r"\[0\]\.viewpointId: view 77 is not in the scene"),
                          ([FEED[0] | {"filepath": "other.jpg"}], r"\[0\]\.filepath"),
                          ([two_corners], r"\[0\]\.pitchYawOrders"),
                          ([FEED[0], pitch_out_of_range], r"\[1\]\.pitchYawOrders\[0\]\.pitch")):
        feed.write_bytes(orjson.dumps(broken))
        with pytest.raises(InputError, match=where):
            feed_reports(feed, scene)


@needs_shared
def test_reports_commands(tmp_path):
    runner = CliRunner()
    feed, db = tmp_path / "feed.json", tmp_path / "r.sqlite"
    feed.write_bytes(orjson.dumps(FEED))
    imported = runner.invoke(app, ["reports", "import", str(feed), "--scene", str(SCENE), "--db", str(db), "--accept"])
    assert imported.exit_code == 0, imported.output
    again = runner.invoke(app, ["reports", "import", str(feed), "--scene", str(SCENE), "--db", str(db), "--accept"])
    assert "0 reports added" in again.output and "2 already there" in again.output
    listed = runner.invoke(app, ["reports", "list", "--db", str(db), "--json"])
    assert [(r["viewpoint_id"], r["status"]) for r in orjson.loads(listed.stdout)] == [(2, "accepted"), (4, "accepted")]
    exported = runner.invoke(app, ["reports", "export", "--scene", str(SCENE), "--db", str(db)])
    assert orjson.loads(exported.stdout) == [{**FEED[0], "filepath": "R0010212.JPG"}, FEED[1]]
    table = runner.invoke(app, ["reports", "list", "--db", str(db)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "blur_missing" in table.output
