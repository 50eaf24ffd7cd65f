"""Does a judge kernel started ahead serve the next submission of its lesson, and only that?"""

from __future__ import annotations

import os
import time

import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import warm
from autograder.execute import BoundedExecute
from tests.autograder.test_judge import graded, solution

pytestmark = pytest.mark.slow


def notebook(expected: int):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nb.cells = [new_code_cell("from course_lib import grading"), solution("def f():\n    return 1", "f"),
                graded(f"grading.expect_equal(f(), {expected}, 'f()')", "f_works")]
    return nb


def grade(nb, cwd, **kw):
    ep = BoundedExecute(timeout=20, prestart_lesson="lesson", **kw)
    ep.preprocess(nb, {"metadata": {"path": str(cwd)}})
    passed = not any(o.get("output_type") == "error" for o in nb.cells[-1].outputs)
    return ep, passed


def kernels() -> list[int]:
    """Judge kernels still running below this process (an ended one waiting to be reaped is not)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "course_lib.judge" in " ".join(process.cmdline()):
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


def test_the_next_submission_of_the_lesson_takes_the_kernel_started_for_it(tmp_path):
    """Is the kernel started (at low priority) during one notebook the one the next notebook of the same
    tests gets; is a
    notebook with other tests given a fresh kernel (the waiting one stopped); does nothing outlive
    close()?"""
    try:
        first, ok = grade(notebook(1), tmp_path)
        assert ok
        waiting = warm._slot
        assert waiting is not None and waiting["started"].wait(30) and waiting["ok"], waiting
        pid = waiting["km"].provisioner.process.pid
        assert psutil.Process(pid).nice() == warm.NICENESS  # it waits without slowing the one graded
        second, ok = grade(notebook(1), tmp_path)
        assert ok and second._judge_km is waiting["km"]
        if os.geteuid() == 0:  # only root may raise a priority again
            assert second._judge_km.niceness == 0
        other, ok = grade(notebook(2), tmp_path)  # other tests: not the waiting kernel, and it fails
        assert not ok and other._judge_km is not warm._slot["km"]
    finally:
        warm.close()
    assert warm._slot is None
    deadline = time.monotonic() + 10
    while kernels() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kernels() == []
