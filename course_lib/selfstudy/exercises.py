"""A lesson's exercises, read from its *source* notebook (the one with solutions).

An exercise is a run of solution cells and the graded test cells after it,
up to the next solution cell (the same grouping grading uses). It is named
by its first solution cell's grade id without a ``_solution`` suffix
(``SafeCounter``, ``bounded_buffer``, ``break_overdraft``).

Its self-study material is written in the source notebook as markdown cells
the release removes, so none of it is in a student's notebook:

* a cell tagged ``hint`` with ``metadata.course.exercise`` naming the
  exercise: one staged hint, in the order they appear (a nudge first, a
  near-solution last);
* a cell tagged ``walkthrough``, likewise: why the reference solution has
  its shape, the mistake it avoids, and the test that catches that mistake.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SELF_STUDY_TAGS", "LESSON_ID", "Exercise", "notebooks_folder", "source_notebook", "lesson_id",
           "lesson_exercises", "find_exercise", "is_self_study_cell"]

SELF_STUDY_TAGS = frozenset({"hint", "walkthrough"})
LESSON_ID = re.compile(r"^\d\d-[a-z0-9-]+$")  # a lesson folder: NN-topic


@dataclass
class Exercise:
    lesson: str
    name: str
    solutions: list[str] = field(default_factory=list)       # grade ids of its solution cells
    tests: dict[str, float] = field(default_factory=dict)    # test grade id -> points
    hints: list[str] = field(default_factory=list)
    walkthrough: str = ""
    solution_sources: list[str] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(self.tests.values())


def notebooks_folder() -> Path:
    """The course's source lessons: ``$COURSE_NOTEBOOKS``, or ``notebooks/`` beside this package."""
    default = Path(__file__).resolve().parent.parent.parent / "notebooks"
    return Path(os.environ.get("COURSE_NOTEBOOKS") or default).resolve()


def lesson_id(name: str, notebooks: Path | None = None) -> str:
    """'03', '03-race-conditions-and-locks' or a path ending in it -> the lesson id."""
    notebooks = notebooks or notebooks_folder()
    name = str(name).rstrip("/").split("/")[-1]
    known = sorted(p.name for p in notebooks.iterdir() if p.is_dir() and LESSON_ID.match(p.name)) \
        if notebooks.is_dir() else []
    for lesson in known:
        if name == lesson or name == lesson.split("-", 1)[0]:
            return lesson
    raise LookupError(f"unknown lesson {name!r}; the lessons are: {', '.join(known) or 'none found'}")


def source_notebook(lesson: str, notebooks: Path | None = None) -> Path:
    folder = (notebooks or notebooks_folder()) / lesson
    found = sorted(folder.glob("*.ipynb"))
    if not found:
        raise LookupError(f"the lesson {lesson} has no notebook under {folder.parent}")
    return found[0]


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags") or []


def is_self_study_cell(cell) -> bool:
    """A hint or walkthrough cell: in the source notebook only, never released."""
    return bool(SELF_STUDY_TAGS & set(_tags(cell)))


def _name(grade_id: str) -> str:
    return grade_id[: -len("_solution")] if grade_id.endswith("_solution") else grade_id


def lesson_exercises(lesson: str, notebooks: Path | None = None) -> list[Exercise]:
    """The exercises of ``lesson`` in notebook order, with their hints and walkthroughs."""
    nb = json.loads(source_notebook(lesson, notebooks).read_text(encoding="utf-8"))
    found: list[Exercise] = []
    current: Exercise | None = None
    tests_seen = False
    notes: list[tuple[str, str, str]] = []  # (exercise, tag, text)
    for cell in nb.get("cells", []):
        meta = _nbgrader(cell)
        if cell.get("cell_type") == "code" and meta.get("solution") and not meta.get("grade"):
            if current is None or tests_seen:
                current = Exercise(lesson, _name(meta["grade_id"]))
                found.append(current)
                tests_seen = False
            current.solutions.append(meta["grade_id"])
            current.solution_sources.append(_source(cell))
        elif cell.get("cell_type") == "code" and meta.get("grade") and current is not None:
            current.tests[meta["grade_id"]] = float(meta.get("points", 0))
            tests_seen = True
        elif is_self_study_cell(cell):
            target = (cell.get("metadata", {}).get("course") or {}).get("exercise", "")
            tag = "hint" if "hint" in _tags(cell) else "walkthrough"
            notes.append((target, tag, _source(cell).strip()))
    by_name = {e.name: e for e in found}
    for target, tag, text in notes:
        exercise = by_name.get(target)
        if exercise is None:
            raise LookupError(f"{lesson}: a {tag} cell names {target!r}, which is not an exercise "
                              f"(the exercises are {', '.join(by_name)})")
        if tag == "hint":
            exercise.hints.append(text)
        else:
            exercise.walkthrough = (exercise.walkthrough + "\n\n" + text).strip()
    return found


def find_exercise(lesson: str, name: str, notebooks: Path | None = None, *,
                  among: list[Exercise] | None = None) -> Exercise:
    """The exercise called ``name`` (any of its grade ids, any case, or its number from 1).

    ``among``: the lesson's exercises already read (e.g. from a released hints file).
    """
    found = among if among is not None else lesson_exercises(lesson, notebooks)
    wanted = str(name).strip().lower()
    for exercise in found:
        names = {exercise.name.lower(), *(g.lower() for g in exercise.solutions)}
        if wanted in names:
            return exercise
    if wanted.isdigit() and 1 <= int(wanted) <= len(found):
        return found[int(wanted) - 1]
    raise LookupError(f"{lesson} has no exercise {name!r}; its exercises are: "
                      f"{', '.join(e.name for e in found)}")
