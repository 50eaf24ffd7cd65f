"""BoundedExecute on its own: no single cell costs the rest of the notebook.

Each test runs a small notebook through the preprocessor in this process (a real kernel, no
nbgrader app around it) and reads the incidents and outputs it leaves."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.execute import BoundedExecute, solution_cells_by_file

pytestmark = pytest.mark.slow


def _graded(source: str, grade_id: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"nbgrader": {"grade": True, "grade_id": grade_id, "points": 1,
                                                         "solution": False, "locked": True}})


def _run(cells, tmp_path, **traits):
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                            "display_name": "Python 3"}})
    resources = {"metadata": {"path": str(tmp_path)}}
    BoundedExecute(**traits).preprocess(nb, resources)
    return nb, resources["incidents"]


def _errors(cell) -> list[str]:
    return [o["ename"] for o in cell.outputs if o.get("output_type") == "error"]


def test_a_cell_that_ignores_the_interrupt_or_kills_the_kernel_costs_only_itself(tmp_path):
    """After a cell that swallows KeyboardInterrupt and one that calls os._exit, do the later cells
    run in a fresh kernel that has replayed the earlier ones?"""
    stubborn = ("import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
                "    except KeyboardInterrupt:\n        pass")
    cells = [new_code_cell("state = 41"), _graded(stubborn, "stubborn"), new_code_cell("state += 1"),
             _graded("import os\nos._exit(3)", "exits"), _graded("assert state == 42, state", "after")]
    nb, incidents = _run(cells, tmp_path, timeout=2, interrupt_on_timeout=True)
    kinds = {(i["kind"], i["cell"]) for i in incidents}
    assert {("timeout", "stubborn"), ("kernel_died", "exits")} <= kinds, incidents
    assert _errors(nb.cells[1]) == ["timeout"] and _errors(nb.cells[3]) == ["kernel_died"]
    assert _errors(nb.cells[4]) == [], nb.cells[4].outputs
    assert nb.cells[-1].source == "assert state == 42, state", "the final check cell is removed"


def test_output_is_capped_and_a_test_cells_value_is_not_partial_credit(tmp_path):
    """Is a cell's output cut at the cap with one note, and is a test cell's value dropped (nbgrader
    would read any text as points)?"""
    cells = [new_code_cell("for _ in range(200):\n    print('x' * 100)"), _graded("'full marks'", "value")]
    nb, incidents = _run(cells, tmp_path, timeout=10, max_output_chars=2000)
    printed = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert printed.count("x" * 100) < 20 and "[output truncated: more than 2000 characters]" in printed
    assert [i["kind"] for i in incidents].count("output_capped") == 1
    assert nb.cells[1].outputs == []


def test_cells_after_the_notebooks_time_limit_are_marked_not_run(tmp_path):
    """Past the notebook's deadline (which counts from the kernel's start), does every later cell
    fail with the reason instead of running — all but the judge's instant final check, which
    still runs (tampering in the last cell that ran is still seen)?"""
    nb, incidents = _run([new_code_cell("x = 1"), _graded("pass", "late")], tmp_path, notebook_timeout=0)
    assert _errors(nb.cells[1]) == ["notebook_timeout"]
    assert [(i["kind"], i["cell"]) for i in incidents] == [("notebook_timeout", "cell 0"),
                                                           ("notebook_timeout", "late")]


def test_solution_cells_are_named_by_the_file_the_kernel_compiles_them_as():
    """Does the audit map a frame's file name back to the solution cell (and only solution cells)?"""
    solution = new_code_cell("x = 1", metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "sol"}})
    test = _graded("x = 1", "test")
    names = solution_cells_by_file(new_notebook(cells=[solution, test, new_code_cell("x = 1")]))
    assert list(names.values()) == [("sol", "x = 1")]
    assert next(iter(names)).endswith(".py")
