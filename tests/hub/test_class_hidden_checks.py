"""Does `course check --hidden` work for a class only where the instructor released a lesson's hidden checks?

On a class hub a student's account never reads the source notebooks, so
hidden checks are off unless the instructor releases a lesson with
``--hidden-checks`` (``course release`` and the hub take the same option):
the lesson then carries ``hidden-checks.json`` (its tests, hidden parts
included; solutions stubbed; no hint or walkthrough), and the check runs
from it. Here the fixture course is released with and without it and the
`course` command runs where no source notebook exists, as on the hub
(the hub's own round trip checks the same in a student's server). No root.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder import release as release_mod
from tests.submissions import MINI_COURSE, run_course

pytestmark = pytest.mark.slow

LESSON = "01-mini"
WORKING = {"double": "def double(x):\n    return x + x", "total": "def total(items):\n    return sum(items)"}
# Passes double's visible test (double(2) == 4), fails its hidden ones.
VISIBLE_ONLY = {**WORKING, "double": "def double(x):\n    return 4 if x == 2 else x * x"}


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> dict[str, Path]:
    """The fixture lesson released with its hidden checks and without."""
    root = tmp_path_factory.mktemp("released")
    release_mod.release([LESSON], out=root / "on", notebooks=MINI_COURSE, hidden_checks=["01"])
    release_mod.release([LESSON], out=root / "off", notebooks=MINI_COURSE)
    return {"on": root / "on" / LESSON, "off": root / "off" / LESSON}


def _student_copy(lesson_dir: Path, tmp: Path, answers: dict[str, str]) -> Path:
    """A student's fetched lesson folder with ``answers`` in its solution cells."""
    work = tmp / "home" / LESSON
    shutil.copytree(lesson_dir, work)
    notebook = work / f"{LESSON}.ipynb"
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    notebook.write_text(json.dumps(nb))
    return notebook


def _check(tmp: Path, notebook: Path):
    return run_course("check", "--hidden", str(notebook), notebooks=tmp / "no-source-here", timeout=300)


def test_the_hidden_checks_file_holds_the_tests_and_no_answer(released):
    """Does hidden-checks.json hold the hidden tests, and no solution, hint or walkthrough, only when on?"""
    text = (released["on"] / release_mod.HIDDEN_CHECKS_FILE).read_text()
    assert "SECRET_HIDDEN_MARKER" in text and "double(-3)" in text and "total([])" in text
    for answer in ("return 2 * x", "return sum(items)", "BEGIN SOLUTION", "MINI-HINT", "MINI-WALKTHROUGH"):
        assert answer not in text, answer
    assert not (released["off"] / release_mod.HIDDEN_CHECKS_FILE).exists()
    # The student notebook itself is the same either way: nbgrader's, hidden tests removed.
    notebook = f"{LESSON}.ipynb"
    assert (released["on"] / notebook).read_bytes() == (released["off"] / notebook).read_bytes()
    assert "SECRET_HIDDEN_MARKER" not in (released["on"] / notebook).read_text()


def test_hidden_checks_run_from_the_released_file(released, tmp_path):
    """Without the source, does `course check --hidden` pass a right answer and fail one that only
    passes the visible test, naming the hidden test and never showing its code?"""
    right = _check(tmp_path / "a", _student_copy(released["on"], tmp_path / "a", WORKING))
    assert right.returncode == 0, right.stdout + right.stderr
    assert "All tests (hidden ones included)" in right.stdout and "PASS  double_hidden" in right.stdout
    wrong = _check(tmp_path / "b", _student_copy(released["on"], tmp_path / "b", VISIBLE_ONLY))
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "PASS  double_basic" in wrong.stdout and "FAIL  double_hidden" in wrong.stdout
    assert "SECRET_HIDDEN_MARKER" not in wrong.stdout + wrong.stderr


def test_hidden_checks_refuse_clearly_where_not_released(released, tmp_path):
    """For a lesson released without hidden checks, or with a damaged file, is the refusal one clear line?"""
    off = _check(tmp_path / "a", _student_copy(released["off"], tmp_path / "a", WORKING))
    assert off.returncode == 2 and f"turned off for {LESSON}" in off.stderr and "Traceback" not in off.stderr
    notebook = _student_copy(released["on"], tmp_path / "b", WORKING)
    (notebook.parent / release_mod.HIDDEN_CHECKS_FILE).write_text("{ not a notebook")
    damaged = _check(tmp_path / "b", notebook)
    assert damaged.returncode == 2 and "not usable" in damaged.stderr and "Traceback" not in damaged.stderr


def test_the_hubs_switch_is_off_unless_the_instructor_names_a_lesson(capsys):
    """Is COURSE_HIDDEN_CHECKS off in the students' environment by default, on with --hidden-checks, and
    a lesson the class does not release refused in one line?"""
    from autograder.hub.__main__ import main

    assert main(["--lesson", "06", "--print-config"]) == 0
    assert '"COURSE_HIDDEN_CHECKS": "off"' in capsys.readouterr().out
    assert main(["--lesson", "02", "--lesson", "06", "--hidden-checks", "02", "--print-config"]) == 0
    assert '"COURSE_HIDDEN_CHECKS": "on"' in capsys.readouterr().out
    assert main(["--lesson", "06", "--hidden-checks", "02", "--print-config"]) == 2
    assert "not among the lessons this class releases" in capsys.readouterr().err
