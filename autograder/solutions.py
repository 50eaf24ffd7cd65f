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

For a class (a hub, where students never read the source notebooks), the
instructor releases a lesson's worked solutions into nbgrader's exchange
with :func:`release_solutions` — only once that lesson's feedback is in the
exchange — and a student's ``course solutions`` copies what was released
(:func:`released_solutions`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.selfstudy import exercises as exercises_mod
from course_lib.selfstudy import progress
from course_lib.selfstudy.workfiles import Folder, UnsafePath

from . import lessons as lessons_mod
from .lessons import CourseError

__all__ = ["SOLUTIONS_ENV", "solutions", "solution_code", "release_solutions", "released_solutions"]

# Where a class's released worked solutions are (set by the class hub in every user's environment).
SOLUTIONS_ENV = "COURSE_SOLUTIONS"

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
    if not lessons_mod.NOTEBOOKS.is_dir():  # a class hub: only what the instructor has released
        return released_solutions(lessons, out=out, work=work, say=say)
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


def release_solutions(lessons: list[str], *, course: Path, exchange: Path, course_id: str | None = None,
                      say: Callable[[str], None] = print) -> list[Path]:
    """For a class: put each lesson's worked solutions into ``exchange/<course>/solutions/<lesson>/``.

    Refused for a lesson whose feedback is not in the exchange yet
    (``course feedback release``), or not yet for every student who handed
    it in through the exchange: the walkthroughs explain the tests, so they
    follow the grading, never precede it. Releasing again replaces the file.
    """
    from .config import COURSE_ID

    course_id = course_id or COURSE_ID
    chosen = lessons_mod.resolve(lessons)
    waiting = [why for why in (_feedback_missing(course, exchange, lesson, course_id) for lesson in chosen) if why]
    if waiting:
        raise CourseError(f"the feedback of {'; '.join(waiting)} is not released yet; worked solutions follow "
                          "it: run `course feedback release` first (nothing was released)")
    written = []
    for lesson in chosen:
        folder = Path(exchange) / course_id / "solutions" / lesson
        with tempfile.TemporaryDirectory(prefix="course-solutions-") as tmp:
            made = solutions([lesson], out=Path(tmp), force=True, say=say)[0]
            folder.mkdir(parents=True, exist_ok=True)
            for level in (folder.parent, folder):
                level.chmod(0o755)
            staged = folder / f".{made.name}.new"
            shutil.copyfile(made, staged)
            staged.chmod(0o644)
            os.replace(staged, folder / made.name)
        written.append(folder / made.name)
    return written


def _feedback_missing(course: Path, exchange: Path, lesson: str, course_id: str) -> str:
    """Why ``lesson``'s walkthroughs must wait ("" when its feedback is out for everyone it can reach)."""
    from .feedback_release import awaiting_feedback, released_students

    if not released_students(course, exchange, lesson, course_id):
        return lesson
    waiting = awaiting_feedback(course, exchange, lesson, course_id)
    return f"{lesson} (for {', '.join(waiting)})" if waiting else ""


def released_solutions(lessons: list[str] | None, *, out: Path, work: Path | None = None,
                       say: Callable[[str], None] = print) -> list[Path]:
    """On a class hub: copy the worked solutions the instructor released into ``out/<lesson>/``."""
    from course_lib.selfstudy import released

    where = os.environ.get(SOLUTIONS_ENV)
    if not where:
        raise CourseError("this machine has neither the course's source notebooks nor a class's released "
                          "solutions; nothing to write")
    shelf = Path(where)
    available = sorted(p.name for p in shelf.iterdir() if p.is_dir()) if shelf.is_dir() else []
    chosen = []
    for name in lessons or available:
        try:
            lesson = released.resolve_lesson(name, work or Path.cwd())
        except LookupError:
            matches = [a for a in available if name in (a, a.split("-", 1)[0])]
            if not matches:
                raise CourseError(f"unknown lesson {name!r}; worked solutions released so far: "
                                  f"{', '.join(available) or 'none'}")
            lesson = matches[0]
        if lesson not in available:
            raise CourseError(f"the worked solutions of {lesson} are not released yet: your instructor releases "
                              f"them after {lesson}'s feedback")
        chosen.append(lesson)
    if not chosen:
        raise CourseError("no worked solutions are released yet: they come after each lesson's feedback")
    targets = {lesson: Path(out) / lesson / f"{lesson}-solutions.ipynb" for lesson in chosen}
    existing = [str(t) for t in targets.values() if t.exists() or t.is_symlink()]
    if existing:
        raise CourseError(f"{', '.join(existing)} exists; nothing was written (move it, or choose another --out)")
    for lesson, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(shelf / lesson / target.name, "rb") as src, open(target, "xb") as dst:
            shutil.copyfileobj(src, dst)
        say(f"{lesson}: the worked solutions your instructor released")
    return list(targets.values())
