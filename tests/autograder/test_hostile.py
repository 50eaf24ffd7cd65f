"""Do hostile files and names cost only their own submission, and never reach the grading host?

One sandboxed batch of the tiny test lesson, with a fixture per case built
at test time: names that are not UTF-8 or hold control characters, links
beside or instead of the notebook (to a canary file with a unique string,
to /dev/zero), a FIFO, an oversized notebook, a student id a spreadsheet
would run as a formula, and a solution whose test message carries live
HTML. Each gets its clear ``error`` row (or, for the HTML, a sanitised
page) while the rest of the batch is graded with the expected scores.
"""

import csv
import os
from html.parser import HTMLParser
import stat
import uuid

import pytest

from tests.submissions import MINI_COURSE, grade, make_submission

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

LESSON = "01-mini"
LIVE_HTML = ("def double(x):\n    if x == -3:\n"
             "        return '<script>alert(1)</script><img src=x onerror=alert(2)><a href=\"javascript:alert(3)\">'\n"
             "    return 2 * x")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    canary_text = f"CANARY-{uuid.uuid4().hex}"
    canary = tmp_path_factory.mktemp("host") / "secret.txt"
    canary.write_text(canary_text)

    make_submission(root, "good", LESSON, notebooks=MINI_COURSE)
    make_submission(root, "html", LESSON, {"double": LIVE_HTML}, notebooks=MINI_COURSE)
    make_submission(root, "=HYPERLINK(\"x\")", LESSON, notebooks=MINI_COURSE)

    nb = make_submission(root, "bad_name", LESSON, notebooks=MINI_COURSE)
    with open(os.fsencode(nb.parent) + b"/notes-\xff.txt", "wb") as f:
        f.write(b"x")
    nb = make_submission(root, "ctrl_name", LESSON, notebooks=MINI_COURSE)
    (nb.parent / "evil\x1b[31mred.txt").write_text("x")
    nb = make_submission(root, "link_beside", LESSON, notebooks=MINI_COURSE)
    (nb.parent / "data.txt").symlink_to(canary)
    nb = make_submission(root, "link_zero", LESSON, notebooks=MINI_COURSE)
    (nb.parent / "zero").symlink_to("/dev/zero")
    nb = make_submission(root, "link_notebook", LESSON, notebooks=MINI_COURSE)
    nb.unlink()
    nb.symlink_to(MINI_COURSE / LESSON / f"{LESSON}.ipynb")  # the instructor's source, solutions and all
    nb = make_submission(root, "fifo", LESSON, notebooks=MINI_COURSE)
    os.mkfifo(nb.parent / "pipe")
    nb = make_submission(root, "huge", LESSON, notebooks=MINI_COURSE)
    with open(nb, "a") as f:
        f.write(" " * (21 << 20))  # still valid JSON, over the 20 MB limit
    os.makedirs(os.fsencode(root) + b"/stud\xfe/" + LESSON.encode())
    (root / "linked_student").symlink_to(root / "good")

    out = tmp_path_factory.mktemp("graded-hostile")
    rows = grade(root, out, "--jobs", "2", notebooks=MINI_COURSE)
    return {"rows": rows, "out": out, "canary": canary_text}


EXPECTED_ERRORS = {
    "link_beside": "data.txt is a symbolic link",
    "link_zero": "zero is a symbolic link",
    "link_notebook": "01-mini.ipynb is a symbolic link",
    "fifo": "pipe is not a regular file",
    "huge": "over the 20 MB limit",
}


@pytest.mark.parametrize("student", sorted(EXPECTED_ERRORS))
def test_each_hostile_submission_gets_an_error_row_naming_the_file(batch, student):
    """Is each one an error row whose reason names the entry (escaped) and why?"""
    row = batch["rows"][(student, LESSON)]
    assert row["status"] == "error" and float(row["score"]) == 0.0, row
    assert EXPECTED_ERRORS[student] in row["reason"], row


@pytest.mark.parametrize("student, shown", [("bad_name", r"notes-\xff.txt"), ("ctrl_name", r"evil\x1b[31mred.txt")])
def test_a_stray_file_with_an_odd_name_is_listed_escaped_and_costs_nothing(batch, student, shown):
    """Is a file beside the notebook whose name is not UTF-8 or holds control characters named
    (escaped) in the reason, while the notebook earns its full points?"""
    row = batch["rows"][(student, LESSON)]
    assert (row["status"], float(row["score"])) == ("graded", 5.0), row
    assert f"not graded, not read: {shown}" in row["reason"] and "\x1b" not in row["reason"], row


def test_the_rest_of_the_batch_is_graded_as_usual(batch):
    """Do the good submissions beside them earn what they always earn?"""
    rows = batch["rows"]
    assert float(rows[("good", LESSON)]["score"]) == 5.0
    assert float(rows[("html", LESSON)]["score"]) == 3.0
    assert rows[("stud\\xfe", "")]["status"] == "error"
    assert "symbolic link" in rows[("linked_student", "")]["reason"]


def test_no_host_file_outside_the_submission_is_read(batch):
    """Is the canary's unique string absent from every file the grader wrote?"""
    for path in batch["out"].rglob("*"):
        if path.is_file():
            assert batch["canary"].encode() not in path.read_bytes(), path


def test_no_output_file_is_executable_or_setuid(batch):
    """Does the grader write only plain files: no setuid, setgid or executable bit, no link?"""
    for path in batch["out"].rglob("*"):
        mode = path.lstat().st_mode
        assert not stat.S_ISLNK(mode), path
        if stat.S_ISREG(mode):
            assert not mode & (stat.S_ISUID | stat.S_ISGID | 0o111), (path, oct(mode))


class LiveParts(HTMLParser):
    """Collects what a browser would run: script elements, on* handlers, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed"):
            self.found.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith(("javascript:", "data:text")):
                self.found.append(f"{tag} {name}={value}")


def test_feedback_and_report_have_nothing_live(batch):
    """Is there no script element, event handler or javascript: URL in any feedback page or the report
    (the student's text may still *mention* them, escaped, as the code it is)?"""
    pages = list((batch["out"] / "feedback").rglob("*.html")) + [batch["out"] / "report.html"]
    assert len(pages) > 2
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), page  # as raw text; handlers and URLs are judged parsed:
        # the report's matrix quotes a failure in a title attribute, escaped, where "onerror=" is text
        parser = LiveParts()
        parser.feed(text)
        assert parser.found == [], (page, parser.found)
    html_page = (batch["out"] / "feedback" / "html" / LESSON / f"{LESSON}.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;" in html_page  # shown as text: the student sees what their code returned


def test_a_formula_student_id_is_plain_text_in_grades_csv(batch):
    """Does a student id that starts with = reach the spreadsheet as text, not as a formula?"""
    with open(batch["out"] / "grades.csv", newline="", encoding="utf-8") as f:
        ids = [r["student_id"] for r in csv.DictReader(f)]
    assert "'=HYPERLINK(\"x\")" in ids
    assert not [i for i in ids if i[:1] in "=+-@"]
