"""`course check` on its own: visible tests now, run as grading runs them, the grading policy before
anything runs, one exercise on its own, and a report that never promises full marks."""

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
    # As at grading, a rejected solution cell keeps its stub: its tests fail, saying why.
    assert results == {("double", "rejected"), ("double_basic", "failed"), ("double_hidden", "hidden"),
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


def test_a_stub_is_told_from_an_attempt():
    """Is a solution cell still as released a stub, and one with any code of the learner's not?"""
    from course_lib.selfstudy.exercises import is_stub

    assert is_stub("# Your prediction (X, an int):\n# YOUR CODE HERE\nraise NotImplementedError()")
    assert is_stub('class A:\n    """doc"""\n    def f(self):\n        # YOUR CODE HERE\n        raise NotImplementedError()\n'
                   "    @staticmethod\n    def helper(x):\n        return x\n")
    assert not is_stub("X = 3\nraise NotImplementedError()")
    assert not is_stub("class A:\n    def f(self):\n        return 1\n    def g(self):\n        pass\n")
    assert not is_stub("raise NotImplementedError(")  # does not parse: edited


def test_one_exercise_runs_with_the_setup_and_the_solutions_it_uses(tmp_path):
    """Does --exercise keep the setup cells, its own cells and a solution cell its tests use, and
    drop the demos and the other exercises' tests?"""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    def solution(gid, source):
        return new_code_cell(source, metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": gid}})

    def test(gid, source):
        return new_code_cell(source, metadata={"nbgrader": {"solution": False, "grade": True, "grade_id": gid,
                                                            "points": 1}})

    nb = new_notebook(cells=[new_code_cell("import threading"),
                             new_code_cell("print('a demo')", metadata={"tags": ["demo"]}),
                             solution("helper", "def helper():\n    raise NotImplementedError()"),
                             test("helper_works", "helper()"),
                             solution("main", "def main():\n    raise NotImplementedError()"),
                             test("main_works", "main()\nhelper()"),
                             solution("other", "def other():\n    raise NotImplementedError()"),
                             test("other_works", "other()")])
    from course_lib.selfstudy.exercises import exercises_in

    exercises = exercises_in(nbformat.from_dict(nb), "01-x")
    chosen = check.exercise_named(exercises, "main")
    kept = check._select(nb, chosen, {"main": ["def main():\n    return 1"]})
    sources = [c.source for c in kept.cells]
    assert sources == ["import threading", "def helper():\n    raise NotImplementedError()",
                       "def main():\n    raise NotImplementedError()", "main()\nhelper()"]
    with pytest.raises(CourseError, match="its exercises are"):
        check.exercise_named(exercises, "nothing")


def test_a_long_failure_is_cut_to_fit_and_stress_passes_are_labelled():
    """Does the report indent a long message and cut it, mark hidden parts, and call a passed stress
    run evidence, not proof?"""
    long = "CheckFailed: " + "x" * 150 + "\n" + "\n".join(f"row {i}" for i in range(60))
    results = [TestResult("t_stress", 1, "passed", stress=True, exercise="Exercise 1 — Counter"),
               TestResult("t_explore", 2, "failed", long, hidden_part=True, exercise="Exercise 1 — Counter")]
    text = check.report("lesson.ipynb", results)
    assert " Exercise 1 — Counter" in text
    assert "PASS  t_stress (1 pt) [a stress run: evidence, not proof]" in text
    assert "FAIL  t_explore (2 pt) [+ hidden checks at grading]" in text
    assert "more lines: run the test cell in the notebook" in text
    assert max(len(line) for line in text.splitlines() if line.startswith("        ")) <= 110
    assert "evidence, not proof" in text.splitlines()[-3] + text.splitlines()[-2]
