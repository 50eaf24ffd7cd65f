"""``course solutions``: worked solutions for a learner alone, after an attempt.

Per exercise of a lesson it writes the reference solution with its
walkthrough (why this shape, the mistake it avoids, the test that catches
that mistake) into one notebook, ``OUT/<lesson>/<lesson>-solutions.ipynb`` —
the solution cells only, never a test cell, so no hidden test reaches the
learner.

An exercise is unlocked by an attempt: a check that ``course check``
recorded, sealed, after the exercise's own tests ran against the learner's
code (:func:`course_lib.selfstudy.progress.sealed_check`) — a check of the
untouched notebook unlocks nothing, nor does a progress file edited by hand.
Any other exercise is written only after the learner confirms (``force``
skips the question): a solution read before trying teaches little. Only
unlocked exercises are written, never a placeholder; with none, nothing is.

Nothing is ever written over a file, or through a link: the folders on the
way are opened link-free (:mod:`course_lib.selfstudy.workfiles`) and a file
of that name already there makes the next free name
(``...-solutions-2.ipynb``), so ``--out`` may be the learner's work folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.selfstudy import exercises as exercises_mod
from course_lib.selfstudy import progress
from course_lib.selfstudy.workfiles import Folder, UnsafePath

from . import lessons as lessons_mod
from .lessons import CourseError

__all__ = ["solutions", "solution_code"]

_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
_MAX_COPIES = 100


def solution_code(source: str) -> str:
    """A solution cell's code without nbgrader's markers."""
    return "\n".join(line for line in source.splitlines() if not _MARKER.match(line)).strip()


def _points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def _notebook(lesson: str, chosen: list) -> nbformat.NotebookNode:
    cells = [new_markdown_cell(f"# Worked solutions — {lesson}\n\nThe reference solution of each exercise "
                               "you have tried, and why it is built that way. The tests are not here: "
                               f"`course check {lesson}/{lesson}.ipynb` runs them on your own notebook.")]
    for exercise in chosen:
        cells.append(new_markdown_cell(f"## {exercise.label} ({_points(exercise.points)})"))
        cells.append(new_markdown_cell(exercise.walkthrough or "*(no walkthrough written yet)*"))
        cells.extend(new_code_cell(solution_code(s)) for s in exercise.solution_sources)
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def _write(out: Path, lesson: str, nb) -> Path:
    """``OUT/<lesson>/<lesson>-solutions.ipynb``, or the next free ``-N`` name; never over a file or link."""
    text = nbformat.writes(nb)
    try:
        with Folder(Path(out) / lesson, create=True) as folder:
            for copy in range(1, _MAX_COPIES + 1):
                name = f"{lesson}-solutions{'' if copy == 1 else f'-{copy}'}.ipynb"
                try:
                    return folder.write_new(name, text)
                except FileExistsError:
                    continue
    except UnsafePath as exc:
        raise CourseError(f"{exc}; nothing was written") from None
    except OSError as exc:
        raise CourseError(f"cannot write into {Path(out) / lesson}: {exc.strerror or exc}") from None
    raise CourseError(f"{Path(out) / lesson} already holds {_MAX_COPIES} solutions files; nothing was written")


def solutions(lessons: list[str] | None = None, *, out: Path, work: Path | None = None,
              force: bool = False, confirm: Callable[[str, str], bool] = lambda lesson, name: False,
              say: Callable[[str], None] = print) -> list[Path]:
    """Write the worked solutions of ``lessons``; return the files written.

    ``confirm(lesson, exercise)`` is asked for each exercise without a sealed
    check in ``work``'s progress file (unless ``force``); a refusal leaves
    that exercise out, with a line saying how to unlock it. A lesson with no
    exercise unlocked gets no file.
    """
    chosen_lessons = lessons_mod.resolve(lessons)
    try:
        done = {"lessons": {}} if force else progress.load(progress.work_folder(work))
    except (UnsafePath, OSError) as exc:
        raise CourseError(str(exc)) from None
    written = []
    for lesson in chosen_lessons:
        chosen = []
        for exercise in exercises_mod.lesson_exercises(lesson):
            if force or progress.sealed_check(done, lesson, exercise.name) or confirm(lesson, exercise.name):
                chosen.append(exercise)
            else:
                say(f"{lesson} {exercise.name}: not written — no check of your attempt yet (write it, run "
                    f"`course check {lesson}/{lesson}.ipynb`, then ask again; --force writes it anyway)")
        if not chosen:
            say(f"{lesson}: nothing written, no exercise unlocked yet")
            continue
        written.append(_write(out, lesson, _notebook(lesson, chosen)))
    return written
