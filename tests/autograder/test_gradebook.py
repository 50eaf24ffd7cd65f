"""Does ``autograder.gradebook`` load ``course grade`` results into an nbgrader gradebook faithfully?

Runs on SQLite with the tiny fixture course, so it needs neither root nor
PostgreSQL (``tests/hub/test_hub.py`` loads into PostgreSQL on a real hub).
"""

from __future__ import annotations

import json
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


def _write_result(out: Path, student: str, lesson: str, tests: list[dict], status: str = "graded") -> None:
    path = out / "results" / student / f"{lesson}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"student_id": student, "lesson": lesson, "status": status, "tests": tests}))


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


def test_a_lesson_missing_from_the_gradebook_is_skipped_with_why(course, tmp_path):
    """Is a result for a lesson the gradebook does not know reported, not silently dropped?"""
    from autograder.gradebook import load_results

    root, _ = course
    out = tmp_path / "graded"
    _write_result(out, "ann", "99-unknown", [])
    loaded = load_results(out, f"sqlite:///{root / 'gradebook.db'}")

    assert loaded.written == []
    assert [(s, l) for s, l, _ in loaded.skipped] == [("ann", "99-unknown")]
    assert "release it" in loaded.skipped[0][2]


def test_not_a_grading_folder_is_a_user_error(tmp_path):
    """Does pointing the loader at the wrong folder end with a CourseError that says why?"""
    from autograder.gradebook import load_results
    from autograder.lessons import CourseError

    with pytest.raises(CourseError, match="results/"):
        load_results(tmp_path, f"sqlite:///{tmp_path / 'gradebook.db'}")
