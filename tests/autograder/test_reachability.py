"""Is the solution policy sound: can no chain it accepts reach what a solution must never hold?

For every lesson: a live judge kernel runs the lesson's setup and reference
solution cells (demos left out), then its runner walks breadth first, to
depth 6, every attribute and item chain the policy accepts from every name a
solution of that lesson may use (allowed module attributes, built-ins,
instances of allowed classes, results of allowed zero-argument functions,
the solutions' own objects), and reports what it reached
(:mod:`course_lib.judge.walk`). Nothing forbidden may be reached: the shell,
the kernel, its session or sockets, ``sys.modules``, a frame, a code object,
``In``/``Out``, the judge, a module as a value, a mutable attribute of a
protected module, a line of a hidden test. The number of objects reached is
printed (``-s``) and quoted in the README.
"""

from __future__ import annotations

import os

import pytest
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

from autograder import policy
from autograder.audit import JudgeKernelManager
from autograder.leaks import hidden_lines
from autograder.normalize import is_demo, is_solution, is_test
from tests.submissions import NOTEBOOKS, source_notebook

pytestmark = pytest.mark.slow

LESSONS = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir() and p.name[:2].isdigit())
COURSE = {"course_lib.servers", "course_lib.chat", "course_lib.processes"}


def walk_request(lesson: str, nb) -> dict:
    """The policy of ``lesson`` as the walk needs it: roots, names a chain may follow, hidden lines."""
    modules = {}
    for name in sorted(policy.allowed_modules(lesson)):
        if policy._module(name) is None:
            continue
        modules[name] = sorted(policy.module_attributes(name, lesson))
    solution_names = sorted(set().union(*(policy.top_level_names(c.source) for c in nb.cells if is_solution(c))))
    return {"op": "walk", "modules": modules, "builtins": sorted(policy.allowed_builtins()),
            "dunders": sorted(policy.READABLE_DUNDERS), "public_underscore": sorted(policy.PUBLIC_UNDERSCORE),
            "forbidden_attributes": sorted(policy.FORBIDDEN_ATTRIBUTES), "frame_prefixes": list(policy.FRAME_PREFIXES),
            "hidden": sorted(hidden_lines(c for c in nb.cells if c.cell_type == "code")),
            "solution_names": solution_names, "depth": int(os.environ.get("WALK_DEPTH", 6)), "seconds": 150, "limit": 400_000}


def walk_lesson(lesson: str, tmp_path, change=None) -> dict:
    """Run the lesson's setup and reference solutions in a judge kernel, then its walk."""
    _, nb = source_notebook(lesson)
    request = walk_request(lesson, nb)
    if change:
        change(request)
    nb.cells = [c for c in nb.cells if c.cell_type == "code" and not is_demo(c) and not is_test(c)]
    km = JudgeKernelManager(allow_processes=policy.allows_processes(lesson))
    km.judge_tests = {}
    client = NotebookClient(nb, km=km, timeout=60, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            return km.audit.request(request, timeout=240)
    finally:  # nbclient stops only a kernel manager it made itself: this one is ours to stop
        run_sync(km.shutdown_kernel)(now=True)


def test_the_walk_finds_the_kernel_when_the_policy_lets_a_chain_reach_it(tmp_path):
    """Can the walk fail? With threading.enumerate allowed (the policy denies it), does it report the
    kernel's own threads?"""
    def allow_enumerate(request):
        request["modules"]["threading"].append("enumerate")

    report = walk_lesson("03-race-conditions-and-locks", tmp_path, allow_enumerate)
    kinds = {f["what"] for f in report["forbidden"]}
    assert any("ipykernel" in kind for kind in kinds), report


@pytest.mark.parametrize("lesson", LESSONS)
def test_no_chain_the_policy_accepts_reaches_anything_forbidden(lesson, tmp_path):
    """From every name a solution of this lesson may use, is nothing forbidden reachable?"""
    report = walk_lesson(lesson, tmp_path)
    assert "reached" in report, report
    print(f"\n{lesson}: {report['reached']} objects reached in {report['seconds']} s, "
          f"{len(report['forbidden'])} forbidden {report['cut']}")
    assert report["reached"] > 1000, report
    assert not report["forbidden"], "\n".join(f"{f['path']}: {f['what']}" for f in report["forbidden"][:40])
