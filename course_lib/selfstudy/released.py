"""Self-study material as released to a class: the hints file that travels with a lesson.

A learner with the course's checkout reads a lesson's exercises and hints
from its source notebook (:mod:`course_lib.selfstudy.exercises`). A student
on a class hub never can: their account reads only what was released. So
``course release`` (and the hub, through the same code) writes
``<lesson>/hints.json`` beside the student notebook, and it travels with the
lesson (nbgrader's exchange, ``fetch``). It holds each exercise's name,
grade ids and points, and its hints only when the instructor left them on
for that lesson; never a walkthrough, a solution or a test.

Where the material comes from, in order: the source notebook when this
machine has it, else the lesson's hints file in the learner's work folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .exercises import LESSON_ID, Exercise, lesson_exercises, notebooks_folder

__all__ = ["HINTS_FILE", "HintsOff", "hints_document", "write_hints", "read_hints", "has_source",
           "released_lessons", "resolve_lesson", "exercises_for", "hint_exercises_for"]

HINTS_FILE = "hints.json"
VERSION = 1


class HintsOff(LookupError):
    """The lesson was released to this class without its hints (the instructor's choice)."""


def hints_document(lesson: str, exercises: list[Exercise], *, hints: bool) -> dict:
    """What ``hints.json`` holds: the exercises' names, grade ids and points, and the hints if on."""
    return {"version": VERSION, "lesson": lesson, "hints": "on" if hints else "off",
            "exercises": [{"name": e.name, "number": e.number, "solutions": list(e.solutions), "tests": dict(e.tests),
                           **({"hints": list(e.hints)} if hints else {})} for e in exercises]}


def write_hints(lesson_dir: Path, lesson: str, *, hints: bool, notebooks: Path | None = None) -> Path:
    """Write ``lesson_dir/hints.json`` from the lesson's source notebook (hints only if ``hints``)."""
    document = hints_document(lesson, lesson_exercises(lesson, notebooks), hints=hints)
    target = Path(lesson_dir) / HINTS_FILE
    fd, tmp = tempfile.mkstemp(prefix=".hints-", dir=lesson_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target


def read_hints(path: Path) -> tuple[bool, list[Exercise]]:
    """(hints on?, the exercises) from a hints file; LookupError with the reason if it is unusable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        on = data["hints"] == "on"
        exercises = [Exercise(data["lesson"], str(e["name"]), [str(s) for s in e["solutions"]],
                              {str(k): float(v) for k, v in e["tests"].items()},
                              [str(h) for h in e.get("hints", [])] if on else [],
                              number=str(e.get("number", "")))
                     for e in data["exercises"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LookupError(f"{path} is not a usable hints file ({type(exc).__name__}); fetch the lesson again")
    return on, exercises


def has_source(lesson: str) -> bool:
    """Is the lesson's source notebook readable here (a learner's checkout, not a class hub)?"""
    folder = notebooks_folder() / lesson
    try:
        return any(folder.glob("*.ipynb"))
    except OSError:
        return False


def _source_lessons() -> list[str]:
    try:
        return sorted(p.name for p in notebooks_folder().iterdir()
                      if p.is_dir() and LESSON_ID.match(p.name) and has_source(p.name))
    except OSError:
        return []


def released_lessons(work: Path) -> list[str]:
    """Lesson folders in the learner's work folder that came with a hints file."""
    try:
        return sorted(p.name for p in Path(work).iterdir()
                      if LESSON_ID.match(p.name) and (p / HINTS_FILE).is_file())
    except OSError:
        return []


def resolve_lesson(name: str, work: Path) -> str:
    """'06', '06-networks' or a path ending in it -> the lesson id, from the sources or the work folder."""
    known = _source_lessons() or released_lessons(work)
    wanted = str(name).rstrip("/").split("/")[-1]
    for lesson in known:
        if wanted == lesson or wanted == lesson.split("-", 1)[0]:
            return lesson
    where = "" if _source_lessons() else f" in {work} (a lesson's hints come with it when you fetch it)"
    raise LookupError(f"unknown lesson {name!r}; the lessons{where} are: {', '.join(known) or 'none found'}")


def exercises_for(lesson: str, work: Path) -> tuple[str, list[Exercise]]:
    """(lesson id, its exercises): from the source notebook if here, else the released hints file.

    Exercises read from a hints file of a lesson whose hints are off have no
    hints; :func:`hint_exercises_for` refuses those instead.
    """
    lesson = resolve_lesson(lesson, work)
    if has_source(lesson):
        return lesson, lesson_exercises(lesson)
    return lesson, read_hints(Path(work) / lesson / HINTS_FILE)[1]


def hint_exercises_for(lesson: str, work: Path) -> tuple[str, list[Exercise]]:
    """Like :func:`exercises_for`, but :class:`HintsOff` when the instructor released no hints."""
    lesson = resolve_lesson(lesson, work)
    if has_source(lesson):
        return lesson, lesson_exercises(lesson)
    on, exercises = read_hints(Path(work) / lesson / HINTS_FILE)
    if not on:
        raise HintsOff(f"hints are turned off for {lesson} in this class: your instructor released it "
                       "without them")
    return lesson, exercises
