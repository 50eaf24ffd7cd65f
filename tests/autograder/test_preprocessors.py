"""VerdictFeedback on its own: a student's feedback carries verdicts, never execution."""

from __future__ import annotations

import base64

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.leaks import WITHHELD
from autograder.preprocessors import VerdictFeedback

HIDDEN = 'grading.expect_equal(total([]), 0, "secret empty case")'


def _test_cell(evalue: str) -> dict:
    source = f'"""total adds."""\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS'
    cell = new_code_cell(source, metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 2}})
    cell.outputs = [new_output("stream", name="stdout", text="debug print\n"),
                    new_output("error", ename="CheckFailed", evalue=evalue, traceback=["Traceback", HIDDEN])]
    return cell


def _feedback(*cells):
    nb = new_notebook(cells=list(cells))
    VerdictFeedback().preprocess(nb, {})
    return nb


def test_a_test_cell_keeps_only_its_one_line_verdict_and_loses_its_hidden_code():
    """Are the hidden region, the prints and the traceback gone, and the verdict's line kept?"""
    nb = _feedback(_test_cell("total([]): expected 0, got None"))
    cell = nb.cells[0]
    assert HIDDEN not in cell.source and "total adds" in cell.source
    assert [(o.output_type, o.ename, o.evalue, o.traceback) for o in cell.outputs] == [
        ("error", "CheckFailed", "total([]): expected 0, got None", ["CheckFailed: total([]): expected 0, got None"])]


def test_a_message_that_quotes_a_hidden_line_plainly_or_encoded_is_withheld():
    """Can a student's exception message carry a hidden line out, raw or in base64?"""
    for leak in (HIDDEN, base64.b64encode(HIDDEN.encode()).decode()):
        cell = _feedback(_test_cell(f"look: {leak}")).cells[0]
        assert cell.outputs[0].evalue == WITHHELD, leak


def test_other_cells_lose_every_output_and_markdown_is_untouched():
    """Does nothing a solution or demo cell printed (a plot, a print) reach the feedback?"""
    solution = new_code_cell("print('hi')", metadata={"nbgrader": {"solution": True, "grade_id": "s"}})
    solution.outputs = [new_output("display_data", data={"image/png": "AAAA"}),
                        new_output("stream", name="stdout", text="hi\n")]
    text = new_markdown_cell("## Exercise")
    nb = _feedback(solution, text)
    assert nb.cells[0].outputs == [] and nb.cells[0].source == "print('hi')"
    assert nb.cells[1] == text


def test_a_long_message_is_bounded():
    """Is an enormous message cut, so feedback stays readable?"""
    cell = _feedback(_test_cell("x" * 50_000)).cells[0]
    assert len(cell.outputs[0].evalue) == 1000
