"""In a learner's kernel, is an untouched exercise one "not attempted yet" line, and every other error
the usual traceback? Run in a real kernel, cell by cell as Run All does."""

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_lib import untouched

CELLS = [
    "from course_lib import grading",
    "# Your prediction (ANSWER_VALUE, an int):\n# YOUR CODE HERE\nraise NotImplementedError()",
    "grading.expect(ANSWER_VALUE == 3, 'wrong')",
    "class Stub:\n    def go(self):\n        # YOUR CODE HERE\n        raise NotImplementedError()",
    "Stub().go()",
    "import threading\nworker = threading.Thread(target=Stub().go, name='worker')\nworker.start()\n"
    "worker.join(5)\ngrading.expect(False, 'the worker did nothing')",
    "1 / 0",
    "ANSWER_VALUE = 4\ngrading.expect(ANSWER_VALUE == 3, 'ANSWER_VALUE is 4, not 3')",
    "undefined_name",
]


@pytest.fixture(scope="module")
def ran():
    nb = new_notebook(cells=[new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=30, allow_errors=True, kernel_name="python3").execute()
    return [([o for o in c.outputs if o.output_type == "error"],
             "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream" and o.name == "stderr"))
            for c in nb.cells]


def one_line(cell) -> str:
    errors, _ = cell
    assert len(errors) == 1 and len(errors[0].traceback) == 1, errors
    assert errors[0].traceback[0].startswith(untouched.MARK)
    return errors[0].traceback[0]


@pytest.mark.slow
def test_a_stub_and_what_it_leaves_undefined_are_one_line_each(ran):
    assert "this cell is still the stub" in one_line(ran[1])
    assert "ANSWER_VALUE comes from an exercise cell above" in one_line(ran[2])
    assert "Stub.go still raises NotImplementedError" in one_line(ran[4])


@pytest.mark.slow
def test_a_stub_in_a_thread_is_one_line_and_so_is_the_check_it_fails(ran):
    errors, stderr = ran[5]
    assert stderr.strip().startswith(untouched.MARK) and "Traceback" not in stderr
    assert "Stub.go still raises NotImplementedError, so the threads did nothing" in one_line(ran[5])


@pytest.mark.slow
def test_every_other_error_is_the_usual_traceback(ran):
    """Is a real bug, a failed check of a written answer, or a plain NameError shown in full, as IPython shows it?"""
    for index, name in ((6, "ZeroDivisionError"), (7, "CheckFailed"), (8, "NameError")):
        errors, _ = ran[index]
        assert [e.ename for e in errors] == [name]
        assert len(errors[0].traceback) > 1 and not errors[0].traceback[0].startswith(untouched.MARK)


def test_it_is_never_installed_in_a_grading_kernel(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert untouched.install(shell=object()) is False
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setenv("COURSE_PLAIN_TRACEBACKS", "1")
    assert untouched.install(shell=object()) is False


@pytest.mark.slow
def test_a_judge_kernel_keeps_ipythons_own_tracebacks():
    """In the grading judge (python -P -m course_lib.judge), does installing refuse, leaving no custom handler?"""
    from autograder.execute import BoundedExecute

    nb = new_notebook(cells=[new_code_cell("from course_lib import untouched\n"
                                           "print(untouched.install(), get_ipython().custom_exceptions)")])
    BoundedExecute(timeout=30, notebook_timeout=60, shutdown_kernel="immediate").preprocess(
        nb, {"metadata": {"path": "."}})
    assert nb.cells[0].outputs[0]["text"].strip() == "False ()"
