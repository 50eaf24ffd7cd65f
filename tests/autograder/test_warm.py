"""Does a judge kernel started ahead serve the next submission of its lesson, and only that?"""

from __future__ import annotations

import os

import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import warm
from autograder.execute import BoundedExecute
from tests.autograder.test_judge import graded, solution
from tests.waiting import judge_kernels, wait_until

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




def test_the_next_submission_of_the_lesson_takes_the_kernel_started_for_it(tmp_path):
    """Is the kernel started (at low priority) during one notebook the one the next notebook of the same
    tests gets; is a
    notebook with other tests given a fresh kernel (the waiting one stopped); does nothing outlive
    close()?"""
    before = judge_kernels()  # none, unless an earlier test in this worker leaked one (its own bug)
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
    wait_until(lambda: not judge_kernels() - before, timeout=10)
    assert judge_kernels() - before == set()


def test_a_kernel_whose_start_failed_after_its_process_was_launched_is_killed(tmp_path):
    """Under load a start can fail after the kernel's process is up (no reply in time): is that
    process killed when the slot is given up, rather than left running below the worker?"""
    import subprocess
    import sys

    from traitlets.config import Config

    launched = []

    class LaunchesThenFails:
        def __init__(self, **_):
            self.provisioner = None

        async def start_kernel(self, **_):
            process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            launched.append(process)
            self.provisioner = type("P", (), {"process": process})()
            raise RuntimeError("Kernel didn't respond in 60 seconds")

        async def shutdown_kernel(self, now=False):
            raise RuntimeError("no kernel to shut down: it never replied")

    try:
        warm.prepare(LaunchesThenFails, Config(), {"t": 1}, lesson="lesson", sandboxed=False)
        assert warm._slot["started"].wait(30) and not warm._slot["ok"]
    finally:
        warm.close()
    assert launched and launched[0].wait(10) is not None
