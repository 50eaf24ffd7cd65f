"""Is the graded notebook the lesson's own, with only the student's solution cells put in?"""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.leaks import WITHHELD, hidden_lines, quotes_hidden
from autograder.normalize import DEMO_TAG, exercises, is_demo, is_solution, is_test, normalize
from tests.submissions import NOTEBOOKS, source_notebook


def _cell(source, grade_id=None, *, solution=False, points=0, tags=()):
    cell = new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": bool(points),
                                     "points": points, "locked": not solution, "schema_version": 3}
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def lesson():
    nb = new_notebook()
    nb.cells = [
        _cell("import threading"),
        new_markdown_cell("# Exercise"),
        _cell("def f():\n    raise NotImplementedError()", "f", solution=True),
        _cell("plot_something()", tags=[DEMO_TAG]),
        _cell("assert f() == 1", "f_test", points=1),
        _cell("def g():\n    raise NotImplementedError()", "g", solution=True),
        _cell("assert g() == 2", "g_test", points=1),
        _cell("assert g() + f() == 3", "both", points=1),
    ]
    return nb


def submission(**sources):
    nb = lesson()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell.source = sources[grade_id]
    return nb


def test_solutions_are_taken_by_grade_id_and_everything_else_from_the_lesson():
    """Do edited test cells, added cells and demo cells stay out, and solutions come in?"""
    sub = submission(f="def f():\n    return 1", g="def g():\n    return 2", f_test="pass")
    sub.cells.append(_cell("def f():\n    return 99"))  # an added cell: scratch space
    out = normalize(lesson(), sub, "03-x")
    sources = [c.source for c in out.notebook.cells]
    assert "def f():\n    return 1" in sources and "def g():\n    return 2" in sources
    assert "assert f() == 1" in sources and "pass" not in sources
    assert "plot_something()" not in sources and "def f():\n    return 99" not in sources
    assert [d.status for d in out.decisions] == ["ok", "ok"]
    assert out.lost() == {}


def test_missing_duplicated_and_rejected_solutions_cost_their_exercise_with_a_reason():
    """Does each keep the lesson's stub and zero exactly its own exercise's tests?"""
    sub = submission(f="import sys\ndef f():\n    return 1")
    sub.cells = [c for c in sub.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "g"]
    out = normalize(lesson(), sub, "03-x")
    assert [(d.grade_id, d.status) for d in out.decisions] == [("f", "rejected"), ("g", "missing")]
    assert "line 1: import sys" in out.decisions[0].message
    assert out.notebook.cells[2].source.endswith("raise NotImplementedError()")
    assert set(out.lost()) == {"f_test", "g_test", "both"}

    twice = submission(f="def f():\n    return 1")
    twice.cells.insert(3, _cell("def f():\n    return 1", "f", solution=True))
    out = normalize(lesson(), twice, "03-x")
    assert out.decisions[0].status == "duplicated"


def test_an_exercise_is_the_solution_cells_and_the_tests_after_them():
    """Is each test mapped to the solution cells it checks, and not to earlier exercises'?"""
    assert exercises(lesson()) == {"f_test": ["f"], "g_test": ["g"], "both": ["g"]}


def test_a_submission_without_metadata_gets_only_stubs():
    """Is a notebook whose cells lost their nbgrader metadata graded as all-missing, not crashed?"""
    out = normalize(lesson(), {"cells": [{"cell_type": "code", "source": "def f(): return 1"}]}, "03-x")
    assert {d.status for d in out.decisions} == {"missing"}


@pytest.mark.parametrize("lesson_id", sorted(p.name for p in NOTEBOOKS.iterdir() if p.name[:2].isdigit()))
def test_demo_tags_leave_every_exercise_and_test_in_the_graded_notebook(lesson_id):
    """Is no solution or test cell tagged as a demo, and does every lesson drop some demos?"""
    _, nb = source_notebook(lesson_id)
    assert not [c for c in nb.cells if is_demo(c) and (is_solution(c) or is_test(c))]
    assert any(is_demo(c) for c in nb.cells)


def test_a_visible_line_that_a_hidden_block_repeats_is_not_withheld():
    """Is a line the notebook shows outside hidden blocks no secret, though a hidden block repeats it,
    while the hidden block's own lines stay secret?"""
    visible = "grading.expect(not result.failed, result.message)"
    lines = hidden_lines([f"{visible}\n### BEGIN HIDDEN TESTS\n{visible}\nsecret_input = 'a hidden value'\n"
                          "### END HIDDEN TESTS", "x = 1"])
    assert not quotes_hidden(f"failed: {visible}", lines)
    assert quotes_hidden("secret_input = 'a hidden value'", lines)


def test_a_solution_cell_cannot_declare_a_hidden_line_shown():
    """Does a hidden line stay secret when a solution cell (the student's code in a graded notebook, the
    reference in the source) holds it too?"""
    from nbformat.v4 import new_code_cell

    line = "secret_input = 'a hidden value'"
    test = new_code_cell(f"### BEGIN HIDDEN TESTS\n{line}\n### END HIDDEN TESTS")
    solution = new_code_cell(f"{line}\n")
    solution.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "mine"}
    assert quotes_hidden(f"failed: {line}", hidden_lines([test, solution]))
    assert not quotes_hidden(f"failed: {line}", hidden_lines([test, new_code_cell(line)]))


def test_a_hidden_line_is_found_plainly_and_disguised():
    """Are zero-width, entity, base64 and zlib disguises of a hidden line all seen through?"""
    import base64
    import zlib

    lines = hidden_lines(["### BEGIN HIDDEN TESTS\ngrading.expect_equal(secret_call(7), 49)\n### END HIDDEN TESTS"])
    line = "grading.expect_equal(secret_call(7), 49)"
    assert quotes_hidden(f"got {line!r}", lines)
    assert quotes_hidden("\u200b".join(line), lines)
    assert quotes_hidden("".join(f"&#{ord(c)};" for c in line), lines)
    assert quotes_hidden(base64.b64encode(line.encode()).decode(), lines)
    assert quotes_hidden(base64.b64encode(zlib.compress(line.encode())).decode(), lines)
    assert quotes_hidden(zlib.compress(line.encode()).hex(), lines)
    assert not quotes_hidden("CheckFailed: secret_call(7): expected 49, got 48", lines)
    assert WITHHELD
