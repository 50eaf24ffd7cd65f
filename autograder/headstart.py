"""``course check`` starts its judge kernel first, while it reads the lesson, so the two overlap.

Booting the judge kernel (a fresh Python, ipykernel, the judge's sealing)
is a second or more of a one-exercise check, and so is importing what the
check itself needs (nbformat, nbgrader, nbclient, the policy). The kernel
needs nothing from that work but the tests it will run. So before anything
heavy is imported, :func:`start` works them out from the source lesson
with plain JSON — the graded test cells the check will run (one
exercise's, or all), demos left out, hidden parts cut as nbgrader's
``ClearHiddenTests`` cuts them — and has :mod:`autograder.warm` start the
kernel in the background, with the folder and kernel arguments the check's
own start would give it. :class:`autograder.execute.BoundedExecute` takes
that kernel only if its tests are exactly those of the notebook the check
built (``warm.take``); a wrong guess is shut down and costs a cold start,
never a different check. :func:`stop` ends a kernel the check did not take
(it failed before running anything).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["KERNEL_ARGUMENTS", "kernel_tests", "start", "stop"]

#: What nbclient adds for an IPython kernel (its default history file), after the check's own arguments.
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]
_REFEREE_TAG = "referee"   # autograder.referee.REFEREE_TAG (not imported: it imports nbformat)
_DEMO_TAG = "demo"         # autograder.normalize.DEMO_TAG (likewise)
_HIDDEN = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _without_hidden(source: str) -> str:
    """``source`` less its hidden-test regions, line for line as nbgrader's ClearHiddenTests cuts them."""
    kept, hidden = [], False
    for line in source.split("\n"):
        if _HIDDEN[0] in line:
            hidden = True
        elif _HIDDEN[1] in line:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept)


def kernel_tests(lesson_nb: dict, lesson: str, exercise: str | None, *, hidden: bool) -> dict[str, str]:
    """grade id -> source of every test the check's kernel runs (the referee judges tagged ones itself)."""
    from course_lib.selfstudy.exercises import exercises_in, is_self_study_cell

    from .check import exercise_named

    lesson_nb = {**lesson_nb, "cells": [c for c in lesson_nb.get("cells", []) if not is_self_study_cell(c)]}
    wanted = set(exercise_named(exercises_in(lesson_nb, lesson), exercise).tests) if exercise else None
    tests = {}
    for cell in lesson_nb["cells"]:
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") != "code" or not meta.get("grade") or _DEMO_TAG in tags or _REFEREE_TAG in tags:
            continue
        if wanted is None or meta.get("grade_id") in wanted:
            tests[meta["grade_id"]] = _source(cell) if hidden else _without_hidden(_source(cell))
    return tests


def start(notebook: Path, exercise: str | None, *, hidden: bool, kernel_arguments: list[str]) -> bool:
    """Start the kernel ``course check notebook`` will run in; False where no guess is made (no source lesson)."""
    import os

    if os.environ.get("COURSE_CHECK_HEADSTART", "on") == "off":  # benchmarks/bench_check.py compares without it
        return False
    from . import lessons, warm
    from .audit import JudgeKernelManager

    folder = Path(notebook).resolve().parent
    sources = lessons.source_notebooks(folder.name) if folder.name in lessons.all_lessons() else []
    if not sources:
        return False
    try:
        tests = kernel_tests(json.loads(sources[0].read_text(encoding="utf-8")), folder.name, exercise,
                             hidden=hidden)
    except Exception:  # noqa: BLE001 - no guess: the check starts its kernel itself and says what is wrong
        return False
    from traitlets.config import Config
    # The kernel's start imports IPython.paths (its kernel folders) in the starting thread; imported there
    # while this thread imports IPython for nbconvert, the import failed with KeyError 'IPython' (one start in
    # a few): import it here, first.
    import IPython.paths  # noqa: F401

    warm.prepare(JudgeKernelManager, Config(), tests, lesson=folder.name, sandboxed=False, cwd=str(folder),
                 extra_arguments=[*kernel_arguments, *KERNEL_ARGUMENTS], niceness=0)
    return True


def stop() -> None:
    """Shut down a kernel started here that the check did not take, and wait until it is gone."""
    from . import warm

    warm.close()
