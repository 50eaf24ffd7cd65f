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

An exercise is numbered as the notebook numbers it: by the last
``### Exercise N`` heading above its first solution cell (the predictions,
which come before the Exercises section, have no number). Two exercises
under one heading (lesson 01's ``speedup`` and ``classify_workload``) share
it. :func:`is_stub` tells a solution cell still as released (nothing but
``raise NotImplementedError()`` in it) from one the learner has written.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SELF_STUDY_TAGS", "LESSON_ID", "Exercise", "notebooks_folder", "source_notebook", "lesson_id",
           "lesson_exercises", "exercises_in", "find_exercise", "is_self_study_cell", "is_stub"]

SELF_STUDY_TAGS = frozenset({"hint", "walkthrough"})
LESSON_ID = re.compile(r"^\d\d-[a-z0-9-]+$")  # a lesson folder: NN-topic
_HEADING = re.compile(r"^#{2,4}\s*Exercise\s+(\d+)\b", re.MULTILINE)  # "### Exercise 2 — `Bank`"


@dataclass
class Exercise:
    lesson: str
    name: str
    solutions: list[str] = field(default_factory=list)       # grade ids of its solution cells
    tests: dict[str, float] = field(default_factory=dict)    # test grade id -> points
    hints: list[str] = field(default_factory=list)
    walkthrough: str = ""
    solution_sources: list[str] = field(default_factory=list)
    number: str = ""    # as the notebook numbers it ("2"); "" for a prediction

    @property
    def points(self) -> float:
        return sum(self.tests.values())

    @property
    def kind(self) -> str:
        """"prediction", "break it" or "exercise": what the learner is asked to write."""
        if self.name.startswith("predict_"):
            return "prediction"
        return "break it" if self.name.startswith("break_") else "exercise"

    @property
    def label(self) -> str:
        """How a list shows it: "Exercise 1 — SafeCounter", "prediction — predict_lost_update"."""
        return f"Exercise {self.number} — {self.name}" if self.number else f"{self.kind} — {self.name}"


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
    return exercises_in(nb, lesson)


def exercises_in(nb: dict, lesson: str) -> list[Exercise]:
    """The exercises of a notebook (source or released: a released one has no hints), in order."""
    found: list[Exercise] = []
    current: Exercise | None = None
    tests_seen = False
    number = ""
    notes: list[tuple[str, str, str]] = []  # (exercise, tag, text)
    for cell in nb.get("cells", []):
        meta = _nbgrader(cell)
        if cell.get("cell_type") == "markdown" and not is_self_study_cell(cell):
            headings = _HEADING.findall(_source(cell))
            number = headings[-1] if headings else number
        if cell.get("cell_type") == "code" and meta.get("solution") and not meta.get("grade"):
            if current is None or tests_seen:
                current = Exercise(lesson, _name(meta["grade_id"]))
                current.number = "" if current.kind == "prediction" else number
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
    """The exercise called ``name``: any of its grade ids (any case), or its number in the notebook.

    ``among``: the lesson's exercises already read (e.g. from a released hints file).
    """
    found = among if among is not None else lesson_exercises(lesson, notebooks)
    wanted = str(name).strip().lower()
    for exercise in found:
        names = {exercise.name.lower(), *(g.lower() for g in exercise.solutions)}
        if wanted in names:
            return exercise
    numbered = [e for e in found if e.number and e.number == wanted.lstrip("0")]
    if len(numbered) == 1:
        return numbered[0]
    if numbered:
        raise LookupError(f"Exercise {wanted} of {lesson} has {len(numbered)} parts: "
                          f"{', '.join(e.name for e in numbered)}; name the one you mean")
    raise LookupError(f"{lesson} has no exercise {name!r}; its exercises are: "
                      f"{', '.join(e.label for e in found)}")


#: What a released stub holds besides ``raise NotImplementedError()``: docstrings, comments,
#: ``pass`` and imports, inside the ``def``/``class`` lines around them.
_STUB_NODES = (ast.Pass, ast.Import, ast.ImportFrom)


def _is_stub_raise(node: ast.AST) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _has_stub(node: ast.AST) -> bool:
    return any(_is_stub_raise(n) for n in ast.walk(node))


def _untouched(node: ast.stmt) -> bool:
    """Is this statement still as released? A function the course wrote (no stub in it) counts as such."""
    if isinstance(node, _STUB_NODES) or _is_stub_raise(node):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # a docstring
        return True
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return not _has_stub(node) or all(_untouched(n) for n in node.body if not _is_helper(n))
    if isinstance(node, ast.ClassDef):
        return all(_untouched(n) for n in node.body)
    return False


def _is_helper(node: ast.stmt) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _has_stub(node)


def is_stub(source: str) -> bool:
    """Is this solution cell still the released stub (its ``raise NotImplementedError()`` all in place)?

    A cell the learner has started — one method written, a value assigned —
    is not a stub, even if other methods still raise; a helper the lesson
    provides beside the stubs does not make it one. A cell that does not
    parse has been edited, so it is not a stub either.
    """
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    module = ast.Module(body=body, type_ignores=[])
    return _has_stub(module) and all(_untouched(n) for n in body)
