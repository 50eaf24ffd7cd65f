"""Does ``autograder.gradebook`` load ``course grade`` results into an nbgrader gradebook faithfully?

Runs on SQLite with the tiny fixture course, so it needs neither root nor
PostgreSQL (``tests/hub/test_hub.py`` loads into PostgreSQL on a real hub).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.submissions import MINI_COURSE

pytestmark = pytest.mark.slow  # nbgrader generates the lesson (a few seconds)

LESSON = "01-mini"


@pytest.fixture()
def course(tmp_path):
    """A course directory whose SQLite gradebook knows the lesson's graded cells."""
    from autograder.release import build_course

    root = build_course(tmp_path / "course", [LESSON], MINI_COURSE)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "threads-sockets") as gb:
        notebook = gb.find_assignment(LESSON).notebooks[0]
        cells = [(notebook.name, cell.name, float(cell.max_score)) for cell in notebook.grade_cells]
    assert cells, "the fixture lesson has no graded cells"
    return root, cells


def _write_result(out: Path, student: str, lesson: str, tests: list[dict], status: str = "graded",
                  extra: dict | None = None) -> None:
    path = out / "results" / student / f"{lesson}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"student_id": student, "lesson": lesson, "status": status, "tests": tests,
                                **(extra or {})}))


def test_scores_land_per_cell_and_total(course, tmp_path):
    """Does each student's total in the gradebook equal the points of the cells their result says passed?"""
    from autograder.gradebook import load_results, scores

    root, cells = course
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    out = tmp_path / "graded"
    full = [{"notebook": nb, "name": name, "score": points} for nb, name, points in cells]
    half = [dict(t, score=t["score"] if i % 2 == 0 else 0.0) for i, t in enumerate(full)]
    _write_result(out, "ann", LESSON, full)
    _write_result(out, "ben", LESSON, half)
    _write_result(out, "cid", LESSON, [], status="error")  # could not be graded: nothing earned

    loaded = load_results(out, db_url)

    assert sorted(loaded.written) == [("ann", LESSON), ("ben", LESSON), ("cid", LESSON)]
    assert scores(db_url, LESSON) == {"ann": sum(p for *_, p in cells),
                                      "ben": sum(t["score"] for t in half), "cid": 0.0}


def test_loading_twice_gives_the_same_scores(course, tmp_path):
    """Is a second load of the same results (or of a regrade) an update, not a duplicate?"""
    from autograder.gradebook import load_results, scores

    root, cells = course
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    out = tmp_path / "graded"
    _write_result(out, "ann", LESSON, [{"notebook": nb, "name": n, "score": p} for nb, n, p in cells])
    load_results(out, db_url)
    first = scores(db_url, LESSON)
    _write_result(out, "ann", LESSON, [{"notebook": nb, "name": n, "score": 0.0} for nb, n, _ in cells])
    load_results(out, db_url)
    load_results(out, db_url)

    assert first == {"ann": sum(p for *_, p in cells)}
    assert scores(db_url, LESSON) == {"ann": 0.0}


def test_a_folder_that_is_no_lesson_is_skipped_with_why(course, tmp_path):
    """Is a result for a folder that is no lesson of the course reported, not silently dropped?"""
    from autograder.gradebook import load_results

    root, _ = course
    out = tmp_path / "graded"
    _write_result(out, "ann", "99-unknown", [], status="error")
    loaded = load_results(out, f"sqlite:///{root / 'gradebook.db'}")

    assert loaded.written == []
    assert [(s, l) for s, l, _ in loaded.skipped] == [("ann", "99-unknown")]
    assert "not a lesson of the course" in loaded.skipped[0][2]


def test_a_new_database_gets_the_lessons_due_dates_penalties_and_the_formgrader_its_notebooks(course, tmp_path):
    """Into a gradebook that does not exist yet: are the lesson's cells created as the template has
    them, the due date, extension, submission time and penalty set so that `nbgrader export` gives
    grades.csv's score, and the graded notebooks where the formgrader's Manual Grading lists them?"""
    import csv
    import subprocess
    import sys

    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from autograder.gradebook import load_results

    template, cells = course
    out = tmp_path / "graded"
    full = [{"notebook": nb, "name": name, "score": points} for nb, name, points in cells]
    top = sum(p for *_, p in cells)
    late = {"submitted_at": "2026-03-03 10:00:00 UTC", "due": "2026-03-02 23:59:00 UTC",
            "lesson_due": "2026-03-01 23:59:00 UTC", "penalty": 1.5}
    _write_result(out, "ann", LESSON, full, extra=late)
    _write_result(out, "ben", LESSON, full, extra={"submitted_at": "2026-03-01 09:00:00 UTC",
                                                   "due": "2026-03-01 23:59:00 UTC",
                                                   "lesson_due": "2026-03-01 23:59:00 UTC"})
    _write_result(out, "cid", LESSON, [], status="error", extra={"reason": "01-mini.ipynb is 31 MB, over the limit"})
    for student in ("ann", "ben"):
        graded = out / "autograded" / student / LESSON / f"{LESSON}.ipynb"
        graded.parent.mkdir(parents=True)
        graded.write_bytes((template / "release" / LESSON / f"{LESSON}.ipynb").read_bytes())
    course_dir = tmp_path / "class"  # a new folder: no gradebook yet
    db_url = f"sqlite:///{course_dir / 'gradebook.db'}"

    loaded = load_results(out, db_url, template=template, course_dir=course_dir)

    assert loaded.created == [LESSON] and loaded.notebooks == 2
    assert [(s, l) for s, l, _ in loaded.zeroed] == [("cid", LESSON)]
    with Gradebook(db_url, "threads-sockets") as gb:
        nb = gb.find_assignment(LESSON).notebooks[0]
        assert sorted((nb.name, c.name, float(c.max_score)) for c in nb.grade_cells) == sorted(cells)
        assert str(gb.find_assignment(LESSON).duedate) == "2026-03-01 23:59:00"
        ann = gb.find_submission(LESSON, "ann")
        assert str(ann.extension) == "1 day, 0:00:00" and str(ann.timestamp) == "2026-03-03 10:00:00"
        cid = gb.find_submission(LESSON, "cid").notebooks[0]
        assert any("31 MB" in (c.manual_comment or "") for c in cid.comments)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "export.csv"],
                   cwd=course_dir, env=env, check=True, capture_output=True, timeout=120)
    with open(course_dir / "export.csv", newline="") as f:
        exported = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(exported["ann"]["score"]) == top - 1.5 and float(exported["ann"]["late_submission_penalty"]) == 1.5
    assert float(exported["ben"]["score"]) == top and float(exported["cid"]["score"]) == 0.0

    config = Config()
    config.CourseDirectory.root = str(course_dir)
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.course_id = "threads-sockets"
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    listed = api.get_notebook_submissions(LESSON, LESSON)  # what Manual Grading shows for the notebook
    assert sorted(s["student"] for s in listed) == ["ann", "ben"]
    assert {s["student"]: s["score"] for s in listed} == {"ann": top, "ben": top}


def test_points_a_grader_gave_by_hand_survive_a_new_load(course, tmp_path):
    """After an instructor corrects a cell in the formgrader, does loading (a regrade) keep it?"""
    from nbgrader.api import Gradebook

    from autograder.gradebook import load_results, scores

    root, cells = course
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    out = tmp_path / "graded"
    _write_result(out, "ann", LESSON, [{"notebook": nb, "name": n, "score": 0.0} for nb, n, _ in cells])
    load_results(out, db_url)
    notebook, name, points = cells[0]
    with Gradebook(db_url, "threads-sockets") as gb:
        grade = gb.find_grade(name, notebook, LESSON, "ann")
        grade.manual_score = points
        gb.db.commit()
    load_results(out, db_url)
    assert scores(db_url, LESSON) == {"ann": points}


def test_not_a_grading_folder_is_a_user_error(tmp_path):
    """Does pointing the loader at the wrong folder end with a CourseError that says why?"""
    from autograder.gradebook import load_results
    from autograder.lessons import CourseError

    with pytest.raises(CourseError, match="results/"):
        load_results(tmp_path, f"sqlite:///{tmp_path / 'gradebook.db'}")
