"""Lesson 01's graded cells, run in real kernels against right, wrong and stuck solutions.

These tests do not go through nbgrader: they execute the lesson's import cell
and its exercise section (solution and test cells, hidden tests included) with
nbclient, replacing solution cells by grade id, and count the points of the
test cells that ran without error — what nbgrader's autograde awards. They
pin down, independently of the grading pipeline, which points each kind of
wrong answer loses, so the pipeline's fixture tests can rely on them.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

LESSON = Path(__file__).resolve().parents[2] / "notebooks" / "01-processes-and-threads" / "01-processes-and-threads.ipynb"

POINTS = {
    "run_in_threads_basics": 1,
    "run_in_threads_concurrent": 2,
    "run_in_threads_order": 1,
    "run_in_threads_timeout": 1,
    "thread_sees_global_value": 1,
    "process_sees_global_value": 1,
    "process_sees_global_child": 1,
    "speedup_values": 1,
    "speedup_invalid": 1,
    "classify_workload_rules": 1,
}
SOLUTIONS = ["run_in_threads", "thread_sees_global", "process_sees_global", "speedup", "classify_workload"]

# Wrong but plausible solutions, each with the graded cells it must fail.
WRONG = {
    "run_in_threads": {
        "serial": (
            "def run_in_threads(fn, args_list, timeout=10.0):\n"
            "    return [fn(*args) for args in args_list]\n",
            {"run_in_threads_concurrent", "run_in_threads_timeout"},
        ),
        "join_without_timeout": (
            "def run_in_threads(fn, args_list, timeout=10.0):\n"
            "    results = [None] * len(args_list)\n"
            "    def call(i, args):\n"
            "        results[i] = fn(*args)\n"
            "    threads = [threading.Thread(target=call, args=(i, a), daemon=True) for i, a in enumerate(args_list)]\n"
            "    for t in threads:\n"
            "        t.start()\n"
            "    for t in threads:\n"
            "        t.join()\n"
            "    return results\n",
            {"run_in_threads_timeout"},
        ),
    },
    "thread_sees_global": {
        "import_copies_the_value": (
            "def thread_sees_global(value):\n"
            "    from course_lib.processes import SETTING\n"
            "    t = threading.Thread(target=processes.set_setting, args=(value,))\n"
            "    t.start(); t.join(5)\n"
            "    return SETTING\n",
            {"thread_sees_global_value"},
        ),
        "no_thread": (
            "def thread_sees_global(value):\n"
            "    processes.set_setting(value)\n"
            "    return processes.SETTING\n",
            {"thread_sees_global_value"},
        ),
    },
    "process_sees_global": {
        "thread_not_process": (
            "def process_sees_global(value):\n"
            "    t = threading.Thread(target=processes.set_setting, args=(value,))\n"
            "    t.start(); t.join(5)\n"
            "    return processes.SETTING\n",
            {"process_sees_global_value", "process_sees_global_child"},
        ),
        "hard_coded": (
            "def process_sees_global(value):\n"
            "    return processes.ORIGINAL\n",
            {"process_sees_global_child"},
        ),
    },
    "speedup": {
        "no_validation": (
            "def speedup(serial_s, parallel_s):\n"
            "    return serial_s / parallel_s\n",
            {"speedup_invalid"},
        ),
        "inverted": (
            "def speedup(serial_s, parallel_s):\n"
            "    return parallel_s / serial_s\n",
            {"speedup_values", "speedup_invalid"},
        ),
    },
    "classify_workload": {
        "strict_threshold": (
            "def classify_workload(serial_s, threads_s, processes_s):\n"
            "    if serial_s / threads_s > 1.5:\n"
            "        return 'io-bound'\n"
            "    if serial_s / processes_s > 1.5:\n"
            "        return 'cpu-bound'\n"
            "    return 'neither'\n",
            {"classify_workload_rules"},
        ),
        "processes_first": (
            "def classify_workload(serial_s, threads_s, processes_s):\n"
            "    if serial_s / processes_s >= 1.5:\n"
            "        return 'cpu-bound'\n"
            "    if serial_s / threads_s >= 1.5:\n"
            "        return 'io-bound'\n"
            "    return 'neither'\n",
            {"classify_workload_rules"},
        ),
    },
}

# A run_in_threads that never returns is pinned by the grading corpus (the "looping" fixture of
# tests/lessons/test_grading_lesson01.py), through the pipeline that bounds it.


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _stub(source: str) -> str:
    """The student's starting point: what nbgrader's ClearSolutions leaves."""
    head = source.split("### BEGIN SOLUTION")[0]
    return head + "# YOUR CODE HERE\n    raise NotImplementedError()\n"


def run_exercises(replace: dict[str, str]) -> tuple[dict[str, bool], float]:
    """Run the import cell and the exercise section; return {test grade id: passed}, seconds."""
    nb = nbformat.read(LESSON, as_version=4)
    ids = [c.id for c in nb.cells]
    start = ids.index("exercises")
    keep = [nb.cells[ids.index("imports")]] + [
        c for c in nb.cells[start:] if c.cell_type == "code" and not c.id.endswith("-check")
    ]
    for cell in keep:
        if _grade_id(cell) in replace:
            cell.source = replace[_grade_id(cell)]
    nb.cells = keep
    began = time.monotonic()
    NotebookClient(nb, timeout=30, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(LESSON.parent)}}).execute()
    seconds = time.monotonic() - began
    results = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            results[meta["grade_id"]] = not any(o.output_type == "error" for o in cell.outputs)
    return results, seconds


def score(results: dict[str, bool]) -> int:
    return sum(POINTS[g] for g, ok in results.items() if ok)


def test_points_table_matches_the_notebook():
    """Do the graded cells of the Exercises section and their points match the table these tests
    rely on? (The prediction in the lesson's body, 1 point, is graded in test_grading_lesson01.)"""
    nb = nbformat.read(LESSON, as_version=4)
    in_body = ("predict_shared_memory", "predict_shared_memory_correct")
    graded = {_grade_id(c): c.metadata["nbgrader"]["points"] for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade") and _grade_id(c) not in in_body}
    solutions = [_grade_id(c) for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                 and _grade_id(c) not in in_body]
    assert graded == POINTS
    assert solutions == SOLUTIONS
    assert sum(POINTS.values()) == 11


@pytest.mark.slow
def test_the_solutions_earn_every_point():
    """Do the source notebook's own solutions pass every graded cell, hidden tests included?"""
    results, seconds = run_exercises({})
    assert results == {g: True for g in POINTS}
    assert seconds < 20


@pytest.mark.slow
def test_stubs_earn_nothing():
    """Does the released stub (raise NotImplementedError) fail every graded cell?"""
    nb = nbformat.read(LESSON, as_version=4)
    stubs = {_grade_id(c): _stub(c.source) for c in nb.cells if _grade_id(c) in SOLUTIONS}
    results, _ = run_exercises(stubs)
    assert results == {g: False for g in POINTS}


def _combined(index: int) -> tuple[dict[str, str], set[str]]:
    """One wrong version of every solution cell, in one notebook (cells are independent)."""
    replace, lost = {}, set()
    for solution, variants in WRONG.items():
        source, fails = list(variants.values())[index]
        replace[solution] = source
        lost |= fails
    return replace, lost


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1], ids=["wrong-set-A", "wrong-set-B"])
def test_wrong_solutions_lose_exactly_their_points(index):
    """Does each plausible mistake fail exactly the cells that test that behaviour?"""
    replace, lost = _combined(index)
    results, _ = run_exercises(replace)
    assert {g for g, ok in results.items() if not ok} == lost
    assert score(results) == 11 - sum(POINTS[g] for g in lost)
