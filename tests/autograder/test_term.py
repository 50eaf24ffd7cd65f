"""An instructor's term end to end (issue 29): collect, grade, report, gradebook, export, browse.

Twelve students of the tiny fixture lesson, built at test time with every case an instructor
meets: collected from a Canvas ZIP (correct, wrong and late by its ZIP time, an
interrupt-proof loop, a Canvas ``LATE`` hand-in, a 3 MB printer, a forbidden import, a ZIP bomb
beside a good notebook) and a Moodle ZIP (an nbformat 4.4 notebook without cell ids with an
extension, an unreadable notebook, a good one). Three folders then get what no platform ZIP
gives but a hand-filled or exchange-collected folder does: a second, newer notebook, an empty
file with an odd name, a file with a Latin-1 (non-UTF-8) name. Graded with --jobs 2, a due
date, 10%/day and an extensions CSV; reported again from results/; loaded into a new SQLite
gradebook; exported with `nbgrader export`; the matrix opened in headless Chromium.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from tests.submissions import MINI_COURSE, REPO, run_course, source_notebook

pytestmark = pytest.mark.slow

LESSON = "01-mini"
NB = f"{LESSON}.ipynb"
DUE = "2026-03-01T23:59"
ON_TIME = (2026, 3, 1, 12, 0, 0)
NEXT_MORNING = (2026, 3, 2, 9, 0, 0)       # 9 h late: one started day
TWO_DAYS = (2026, 3, 3, 10, 0, 0)          # 1 d 10 h late: two started days
WRONG = {"double": "def double(x):\n    return x + 2"}  # passes double_basic (1 point) only
LOOPS = {"double": "def double(x):\n    while True:\n        try:\n            time.sleep(0.05)\n"
                   "        except KeyboardInterrupt:\n            pass\nimport time"}
PRINTS = {"total": "print('y' * 3_000_000)\ndef total(items):\n    return sum(items)"}
FORBIDDEN = {"double": "import ctypes\ndef double(x):\n    return 2 * x"}

# student: (raw score, status, penalty, what the reason must say) — max_score is 5 for all.
EXPECTED = {
    "ada": (5.0, "graded", 0.0, ""),
    "ben": (3.0, "graded", 1.0, ""),                 # late two started days: 2 x 10% of 5
    "cai": (2.0, "timeout-partial", 0.0, ""),        # double loops; total's 2 points stand
    "dee": (5.0, "graded", 0.5, ""),                 # Canvas LATE, 9 h after the due date
    "eli": (5.0, None, 0.0, ""),                     # prints 3 MB: the output is cut, points kept
    "fay": (2.0, "rejected", 0.0, "ctypes"),
    "gus": (5.0, "graded", 0.0, ""),                 # the bomb was skipped at collection
    "4108": (5.0, "graded", 0.0, ""),                # nbformat 4.4, late but within its extension
    "4109": (5.0, "graded", 0.0, "not graded, not read"),   # a Latin-1-named stray file
    "4110": (5.0, "graded", 0.0, "not graded, not read"),   # an empty oddly named file
    "4111": (3.0, "graded", 0.0, "Untitled.ipynb"),  # the expected name graded, the newer listed
    "4112": (0.0, "error", 0.0, NB),                 # not a notebook: which file and why
}


def _notebook(replace: dict | None = None, *, old_format: bool = False) -> bytes:
    _, nb = source_notebook(LESSON, MINI_COURSE)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if replace and grade_id in replace:
            cell.source = replace[grade_id]
    if old_format:  # as Jupyter before nbformat 4.5 saved it: no cell ids
        data = json.loads(nbformat.writes(nb))
        data["nbformat_minor"] = 4
        for cell in data["cells"]:
            cell.pop("id", None)
        return json.dumps(data).encode()
    return nbformat.writes(nb).encode()


def _zip(path: Path, entries: list[tuple[str, bytes, tuple]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, when in entries:
            info = zipfile.ZipInfo(name, when)
            info.compress_type = zipfile.ZIP_DEFLATED  # a bare ZipInfo would be stored, not compressed
            archive.writestr(info, data)
    return path


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    base = tmp_path_factory.mktemp("term")
    canvas = _zip(base / "canvas-01.zip", [
        (f"ada_1001_50001_{NB}", _notebook(), ON_TIME),
        (f"ben_1002_50002_{NB}", _notebook(WRONG), TWO_DAYS),
        (f"cai_1003_50003_{NB}", _notebook(LOOPS), ON_TIME),
        (f"dee_LATE_1004_50004_{NB}", _notebook(), NEXT_MORNING),
        (f"eli_1005_50005_{NB}", _notebook(PRINTS), ON_TIME),
        (f"fay_1006_50006_{NB}", _notebook(FORBIDDEN), ON_TIME),
        (f"gus_1007_50007_{NB}", _notebook(), ON_TIME),
        ("gus_1007_50008_data.ipynb", b"\0" * (4 << 20), ON_TIME),  # unpacks to ~1000x its size
    ])
    folder = "Student {n}_{n}_assignsubmission_file_/"
    moodle = _zip(base / "moodle-01.zip", [
        (folder.format(n=4108) + "homework.ipynb", _notebook(old_format=True), TWO_DAYS),
        (folder.format(n=4109) + NB, _notebook(), ON_TIME),
        (folder.format(n=4110) + NB, _notebook(), ON_TIME),
        (folder.format(n=4111) + NB, _notebook(WRONG), ON_TIME),
        (folder.format(n=4112) + NB, b"{ this is not json", ON_TIME),
    ])
    submitted = base / "submitted"
    env = {"TZ": "UTC"}
    collected = [run_course("collect", str(canvas), "--lesson", LESSON, "--out", str(submitted),
                            notebooks=MINI_COURSE, env=env, timeout=120),
                 run_course("collect", str(moodle), "--lesson", LESSON, "--out", str(submitted),
                            "--pattern", "moodle", notebooks=MINI_COURSE, env=env, timeout=120)]
    for proc in collected:
        assert proc.returncode == 0, proc.stderr
    # What a folder filled by hand or from the exchange may hold besides the notebook:
    (submitted / "4109" / LESSON / os.fsdecode(b"notes-\xe9t\xe9.txt")).write_bytes(b"latin-1 name")
    (submitted / "4110" / LESSON / " .~lock#").write_bytes(b"")
    newer = submitted / "4111" / LESSON / "Untitled.ipynb"
    newer.write_bytes(_notebook())
    os.utime(newer, (2_000_000_000, 2_000_000_000))
    extensions = base / "extensions.csv"
    extensions.write_text("student_id,due\n4108,2026-03-05T00:00\n", encoding="utf-8")
    out = base / "grading"
    sandbox = () if _sandbox_ok() else ("--no-sandbox",)
    graded = run_course("grade", str(submitted), "--out", str(out), "--jobs", "2", "--quiet",
                        "--cell-timeout", "3", "--due", DUE, "--late-penalty", "10%/day",
                        "--extensions", str(extensions), *sandbox, notebooks=MINI_COURSE, env=env,
                        timeout=900)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    first = (out / "grades.csv").read_text(encoding="utf-8")
    reported = run_course("report", str(out), notebooks=MINI_COURSE, env=env, timeout=300)
    assert reported.returncode == 0, reported.stderr
    course_dir = base / "formgrader"
    db_url = f"sqlite:///{course_dir / 'gradebook.db'}"
    loaded = run_course("gradebook", str(out), db_url, notebooks=MINI_COURSE, env=env, timeout=300)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    nbgrader = Path(sys.executable).parent / "nbgrader"
    subprocess.run([str(nbgrader), "export", "--to", "export.csv"], cwd=course_dir, check=True,
                   capture_output=True, timeout=300,
                   env={**os.environ, "PATH": f"{nbgrader.parent}:{os.environ['PATH']}"})
    return {"collected": collected, "out": out, "first": first, "db_url": db_url,
            "course_dir": course_dir, "submitted": submitted}


def _sandbox_ok() -> bool:
    from autograder import sandbox

    return sandbox.available()[0]


def _csv(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def test_collection_from_both_platforms_skips_only_the_bomb_and_names_it(term):
    """Does every student of both ZIPs get a folder, with only the bomb entry skipped — named by
    the instructor's ZIP and the entry — and Canvas's LATE mark kept?"""
    canvas, moodle = term["collected"]
    assert "canvas-01.zip" in canvas.stdout + canvas.stderr
    assert "gus_1007_50008_data.ipynb" in canvas.stdout + canvas.stderr
    assert sorted(p.name for p in term["submitted"].iterdir()) == sorted(EXPECTED)
    assert (term["submitted"] / "dee" / LESSON / "LATE.txt").is_file()
    assert (term["submitted"] / "gus" / LESSON / NB).is_file()
    assert not (term["submitted"] / "gus" / LESSON / "data.ipynb").exists()


def test_every_student_has_one_row_as_configured_and_report_rebuilds_it(term):
    """One row per folder with its result file, max_score, mode and feedback page; scores, statuses
    and late penalties as the policy says; and `course report` rewrites the same grades.csv?"""
    out = term["out"]
    rows = _csv(out / "grades.csv")
    assert sorted(rows) == sorted(EXPECTED)
    assert (out / "grades.csv").read_text(encoding="utf-8") == term["first"], "course report lost or changed rows"
    mode = {"sandbox" if _sandbox_ok() else "no-sandbox"}
    assert {r["mode"] for r in rows.values()} == mode
    for student, (raw, status, penalty, said) in EXPECTED.items():
        row = rows[student]
        got = (float(row["score"]), float(row["max_score"]), float(row["penalty"]))
        assert got == (raw - penalty, 5.0, penalty), (student, row)
        if status:
            assert row["status"] == status, (student, row)
        assert said in row["reason"], (student, row["reason"])
        assert (out / "results" / student / f"{LESSON}.json").is_file()
        assert (out / "feedback" / student / LESSON / f"{LESSON}.html").is_file(), student
    assert rows["ben"]["late_by"].startswith("1 d 10:") and rows["dee"]["late_by"].startswith("09:")
    assert rows["4108"]["due"] == "2026-03-05 00:00:00 UTC" and rows["4108"]["late_by"] == ""
    assert rows["ada"]["submitted_at"] == "2026-03-01 12:00:00 UTC"


def test_the_gradebook_and_nbgrader_export_agree_with_grades_csv(term):
    """Do the new SQLite gradebook and `nbgrader export` give each student grades.csv's score
    and penalty, the due date included?"""
    from nbgrader.api import Gradebook

    rows = _csv(term["out"] / "grades.csv")
    exported = _csv(term["course_dir"] / "export.csv")
    assert sorted(exported) == sorted(rows)
    for student, row in rows.items():
        assert float(exported[student]["score"]) == pytest.approx(float(row["score"])), student
        assert float(exported[student]["late_submission_penalty"]) == pytest.approx(float(row["penalty"])), student
    with Gradebook(term["db_url"], "threads-sockets") as gb:
        assert str(gb.find_assignment(LESSON).duedate) == "2026-03-01 23:59:00"
        assert sorted(s.name if hasattr(s, "name") else s.id for s in gb.students) == sorted(rows)
        for student, row in rows.items():
            assert gb.find_submission(LESSON, student).score == pytest.approx(float(row["score"]) +
                                                                              float(row["penalty"]))


def test_the_matrix_in_chromium_has_every_student_and_a_failing_cell_opens_that_feedback(term):
    """Opened in headless Chromium, does report.html's student x test matrix hold one row per
    student as grades.csv scores them, colour ben's failed hidden test, and does clicking that
    cell open ben's own feedback page? (Screenshot in build/screenshots/.)"""
    from tests.browser import lab as lablib

    if not lablib.CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {lablib.CHROMIUM}")
    from playwright.sync_api import sync_playwright

    out = term["out"]
    rows = _csv(out / "grades.csv")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(lablib.CHROMIUM), headless=True,
                                             args=lablib.CHROMIUM_FLAGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(30_000)
            page.goto((out / "report.html").as_uri())
            view = page.locator(".matrix > .view.default")
            table_rows = view.locator("table.matrix-table tr")
            students = [table_rows.nth(i).locator("td").first.inner_text()
                        for i in range(1, table_rows.count())]
            assert sorted(students) == sorted(rows)
            ben = view.locator("tr", has=page.locator("td:first-child", has_text="ben"))
            failing = ben.locator("td.fail").first
            assert failing.count() == 1 and failing.inner_text().strip().startswith("0 /")
            colour = failing.evaluate("cell => getComputedStyle(cell).backgroundColor")
            passing = ben.locator("td.pass").first.evaluate("cell => getComputedStyle(cell).backgroundColor")
            assert colour != passing, "a failure is coloured apart from a pass"
            lablib.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.locator(".matrix").screenshot(path=str(lablib.SCREENSHOTS / "term-matrix.png"))
            failing.locator("a").click()
            page.wait_for_url("**/feedback/ben/01-mini/01-mini.html")
            assert "Score: 0.0 / 2.0" in page.content(), "ben's page shows the failed hidden test"
        finally:
            browser.close()
