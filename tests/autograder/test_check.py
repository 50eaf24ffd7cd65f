"""`course check` on its own: visible tests now, the grading policy before anything runs, and a
report that never promises full marks."""

from __future__ import annotations

import nbformat
import pytest

from autograder import check
from autograder.check import TestResult
from autograder.lessons import CourseError
from tests.submissions import MINI_COURSE, make_submission


def _released_copy(tmp_path, replace):
    """A mini-lesson notebook as a student has it: hidden tests gone, solutions replaced."""
    path = make_submission(tmp_path, "me", "01-mini", replace, notebooks=MINI_COURSE)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_check_reports_passed_not_attempted_hidden_and_rejected(tmp_path):
    """Does each test cell get the outcome a student needs to see, and a forbidden import in a
    solution its line before grading would reject it?"""
    notebook = _released_copy(tmp_path, {"double": "import sys\ndef double(x):\n    return 2 * x\n",
                                         "total": "def total(items):\n    raise NotImplementedError()\n"})
    before = notebook.read_bytes()
    results = {(r.grade_id, r.outcome) for r in check.check(notebook)}
    assert results == {("double", "rejected"), ("double_basic", "passed"), ("double_hidden", "hidden"),
                       ("total_basic", "not attempted")}
    problems = check.policy_problems(nbformat.read(notebook, as_version=4), "01-mini")
    assert [(g, "line 1" in why and "sys" in why) for g, why in problems] == [("double", True)]
    assert notebook.read_bytes() == before, "check runs a copy: the file on disk is not changed"


def test_check_refuses_what_is_not_a_notebook(tmp_path):
    """Is a wrong path or an unreadable file a clear message, not a traceback?"""
    with pytest.raises(CourseError, match="not a notebook"):
        check.check(tmp_path / "missing.ipynb")
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(CourseError, match="is not a readable notebook"):
        check.check(bad)


def test_the_report_never_promises_full_marks():
    """Does the summary count tests, name rejected cells, and say hidden tests run at grading?"""
    results = [TestResult("a", 1, "passed"), TestResult("b", 2, "failed", "expected 3, got 4"),
               TestResult("c", 1, "hidden", "runs at grading"), TestResult("s", 0, "rejected", "line 1: sys")]
    text = check.report("lesson.ipynb", results)
    assert "  FAIL  b (2 pt) — expected 3, got 4" in text
    assert "1 of 2 test cells passed their visible checks." in text
    assert "1 test cell(s) (1 pt) have only hidden checks" in text
    assert "1 solution cell problem(s)" in text
    assert "passing here does not guarantee full marks" in text
    assert "Hidden tests ran as at grading" in check.report("lesson.ipynb", results, hidden=True)


def test_a_cell_of_only_a_docstring_has_no_visible_check():
    """Is a test cell whose checks are all hidden reported as hidden, and one with code as visible?"""
    assert not check._has_visible_check('"""double works for negative numbers."""\n')
    assert check._has_visible_check('"""doc"""\ngrading.expect(True, "x")')
    assert check._has_visible_check("this is ( not python")
