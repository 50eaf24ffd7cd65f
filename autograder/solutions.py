"""``course solutions``: worked solutions for a learner alone, after an attempt.

Per exercise of a lesson it writes the reference solution with its
walkthrough (why this shape, the mistake it avoids, the test that catches
that mistake) into one notebook, ``OUT/<lesson>/<lesson>-solutions.ipynb`` —
the solution cells only, never a test cell, so no hidden test reaches the
learner. An exercise the learner has not yet run ``course check`` on is
written only after they confirm (``force`` skips the question): a solution
read before trying teaches little. Nothing is ever written over an existing
file, so ``--out`` may be the learner's own work folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.selfstudy import exercises as exercises_mod
from course_lib.selfstudy import progress

from . import lessons as lessons_mod
from .lessons import CourseError

__all__ = ["solutions", "solution_code"]

_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def solution_code(source: str) -> str:
    """A solution cell's code without nbgrader's markers."""
    return "\n".join(line for line in source.splitlines() if not _MARKER.match(line)).strip()


def solutions(lessons: list[str] | None = None, *, out: Path, work: Path | None = None,
              force: bool = False, confirm: Callable[[str, str], bool] = lambda lesson, name: False,
              say: Callable[[str], None] = print) -> list[Path]:
    """Write the worked solutions of ``lessons``; return the files written.

    ``confirm(lesson, exercise)`` is asked for each exercise not yet checked
    in ``work``'s progress file (unless ``force``); a refusal leaves that
    exercise out, with a line saying how to get it.
    """
    chosen = lessons_mod.resolve(lessons)
    targets = {lesson: Path(out) / lesson / f"{lesson}-solutions.ipynb" for lesson in chosen}
    existing = [str(t) for t in targets.values() if t.exists() or t.is_symlink()]
    if existing:
        raise CourseError(f"{', '.join(existing)} exists; nothing was written (move it, or choose another --out)")
    done = {"lessons": {}} if force else progress.load(progress.work_folder(work))
    written = []
    for lesson, target in targets.items():
        checked = done.get("lessons", {}).get(lesson, {})
        cells = [new_markdown_cell(f"# Worked solutions — {lesson}\n\nThe reference solution of each exercise, "
                                   "and why it is built that way. The tests are not here: "
                                   f"`course check {lesson}/{lesson}.ipynb` runs them on your own notebook.")]
        for exercise in exercises_mod.lesson_exercises(lesson):
            cells.append(new_markdown_cell(f"## {exercise.name} ({exercise.points:g} points)"))
            if not force and "checked_at" not in checked.get(exercise.name, {}) and not confirm(lesson, exercise.name):
                cells.append(new_markdown_cell(f"*Left out: you have not run `course check` on "
                                               f"{exercise.name} yet. Try it, check it, then ask again "
                                               "(or pass --force).*"))
                say(f"{lesson} {exercise.name}: left out (not checked yet; --force writes it anyway)")
                continue
            cells.append(new_markdown_cell(exercise.walkthrough or "*(no walkthrough written yet)*"))
            cells.extend(new_code_cell(solution_code(s)) for s in exercise.solution_sources)
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as f:  # "x": never over a file that appeared meanwhile
            nbformat.write(nb, f)
        written.append(target)
    return written
