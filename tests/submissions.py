"""Fixture submissions made from the lessons, the way students hand them in.

A fixture is a released (student) notebook whose solution cells are filled
in: by default with the source notebook's own solution (a correct
submission), or with the code a test gives per grade id (a wrong, looping,
deadlocking, tampering one). Making them from the lessons keeps them in step
with the lessons, instead of committed copies that drift.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
MINI_COURSE = REPO / "tests" / "fixtures" / "course"


def source_notebook(lesson: str, notebooks: Path = NOTEBOOKS) -> tuple[Path, nbformat.NotebookNode]:
    path = next((notebooks / lesson).glob("*.ipynb"))
    return path, nbformat.read(path, as_version=4)


def make_submission(root: Path, student: str, lesson: str, replace: dict[str, str] | None = None,
                    *, notebooks: Path = NOTEBOOKS, edit=None) -> Path:
    """Write ``root/<student>/<lesson>/<name>.ipynb`` and return its path.

    ``replace`` maps a grade id (solution or test cell) to its new source.
    ``edit``, if given, is called with the notebook to change it further
    (delete a cell, add one) before it is written.
    """
    replace = dict(replace or {})
    path, nb = source_notebook(lesson, notebooks)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in replace:
            cell.source = replace.pop(grade_id)
    if replace:
        raise KeyError(f"no cells with grade ids {sorted(replace)} in {lesson}")
    if edit:
        edit(nb)
    target = root / student / lesson / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def course_env(notebooks: Path = NOTEBOOKS) -> dict:
    env = dict(os.environ)
    env["COURSE_NOTEBOOKS"] = str(notebooks)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_course(*args: str, notebooks: Path = NOTEBOOKS, timeout: float = 600,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the ``course`` command as a user would, bounded in time (``env``: extra variables)."""
    return subprocess.run([sys.executable, "-m", "autograder.cli", *args], cwd=REPO,
                          env={**course_env(notebooks), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def grade(root: Path, out: Path, *extra: str, notebooks: Path = NOTEBOOKS,
          timeout: float = 600, env: dict | None = None) -> dict[tuple[str, str], dict]:
    """``course grade root --out out`` and its grades.csv as {(student, lesson): row}."""
    proc = run_course("grade", str(root), "--out", str(out), "--quiet", *extra,
                      notebooks=notebooks, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"course grade failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {(r["student_id"], r["lesson"]): r for r in rows}


def grade_fixtures(tmp_path_factory, lesson: str, fixtures: dict, *extra: str,
                   timeout: float = 600) -> tuple[dict, float]:
    """Grade one submission per fixture (``student: (replacements, ...)``) as one batch.

    Returns the grades.csv rows and how long the batch took.
    """
    import time

    root = tmp_path_factory.mktemp(f"submitted-{lesson[:2]}")
    for student, (replace, *_) in fixtures.items():
        make_submission(root, student, lesson, replace)
    out = tmp_path_factory.mktemp(f"graded-{lesson[:2]}")
    started = time.monotonic()
    rows = grade(root, out, *extra, timeout=timeout)
    return rows, time.monotonic() - started


def check_row(rows: dict, lesson: str, student: str, *, score, max_score: float,
              status: str | None = "graded") -> None:
    """Assert a student's row: its status, its max, and its score (or one of a set of scores)."""
    row = rows[(student, lesson)]
    if status is not None:
        statuses = status if isinstance(status, (set, frozenset, tuple, list)) else {status}
        assert row["status"] in statuses, row
    assert float(row["max_score"]) == max_score, row
    allowed = score if isinstance(score, (set, frozenset, tuple, list)) else {score}
    assert float(row["score"]) in allowed, row


def lesson_grading_tests(lesson: str, fixtures: dict, *grade_args: str, max_score: float, within: float,
                         statuses: dict | None = None, check_status: bool = True, timeout: float = 600):
    """The fixture and two tests every lesson's grading module has, for its own FIXTURES.

    Use as ``graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time
    = lesson_grading_tests(LESSON, FIXTURES, "--jobs", "2", max_score=10.0, within=240)``.
    ``fixtures`` maps a student to ``(replacements, score)`` where score may be a set of allowed
    scores; ``statuses`` gives a status other than "graded" per student; ``check_status=False``
    accepts any status.
    """

    @pytest.fixture(scope="module")
    def graded(tmp_path_factory):
        return grade_fixtures(tmp_path_factory, lesson, fixtures, *grade_args, timeout=timeout)

    @pytest.mark.parametrize("student", sorted(fixtures))
    def test_fixture_gets_its_expected_score(graded, student):
        """Does each kind of submission earn exactly the points its bugs leave it?"""
        rows, _ = graded
        status = (statuses or {}).get(student, "graded") if check_status else None
        check_row(rows, lesson, student, score=fixtures[student][1], max_score=max_score, status=status)

    def test_the_batch_is_graded_in_bounded_time(graded):
        """Is every fixture graded, and the whole batch within its time bound?"""
        rows, seconds = graded
        assert {student for student, graded_lesson in rows if graded_lesson == lesson} >= set(fixtures)
        assert seconds < within, f"grading took {seconds:.0f} s"

    return graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time


def grading_processes(out: Path) -> list:
    """The grading workers still running for the batch writing to ``out`` (they name it in ps)."""
    import psutil

    return [p for p in psutil.process_iter(["cmdline"]) if f"--batch {out}" in " ".join(p.info["cmdline"] or [])]


@dataclass(frozen=True)
class Legit:
    """A correct solution in an unusual style (the attack corpora's counterpart): every listed test
    earns its points."""

    lesson: str
    question: str
    replace: dict
    full_tests: tuple
    hole: str | None = None  # why the grader refuses it today (xfail reason)
    closed: str | None = None  # why the grader refused it once, since fixed: it guards the fix
