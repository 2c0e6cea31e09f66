"""``scanvan-sfm reports list`` shows visitors' comments literally: no console markup, no links,
no escape sequences reaching the terminal (control characters are shown escaped)."""

from __future__ import annotations

from helpers import cli
from scanvan_sfm.reports.models import ReportIn
from scanvan_sfm.reports.store import ReportStore

TRIANGLE = [{"pitch": 1.2, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.5}, {"pitch": 1.4, "yaw": 0.7}]
COMMENTS = ["[/]", "[link=https://evil.example]x[/link]", "[bold red]loud", ":warning: \\[b]",
            "\x1b[2J\x1b]8;;https://evil.example\x07hi\x9b31m", "tab\there\u202eevil"]


def test_reports_list_shows_visitor_text_literally(tmp_path):
    db = tmp_path / "reports.sqlite"
    store = ReportStore(db)
    for comment in COMMENTS:
        store.add(ReportIn(viewpoint_id=1, category="blur_missing", polygon=TRIANGLE, comment=comment))
    result = cli("reports", "list", "--db", db, env={"COLUMNS": "250", "TERM": "xterm-256color", "FORCE_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    for literal in ("[/]", "[link=https://evil.example]x[/link]", "[bold red]loud", ":warning: \\[b]",
                    r"\x1b[2J\x1b]8;;https://evil.example\x07hi\x9b31m", r"tab\there\u202eevil"):
        assert literal in shown, literal
    comment_column = "".join(line.split("│")[-2] for line in shown.splitlines() if line.count("│") > 2)
    assert "\x1b" not in comment_column and "\x07" not in comment_column and "\u202e" not in shown
    assert "\x1b]8;" not in shown  # no hyperlink escape anywhere
