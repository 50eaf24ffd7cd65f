"""Where the lessons are and what they are called.

A lesson is a folder ``notebooks/NN-topic/`` holding one nbgrader *source*
notebook; the folder name is the nbgrader assignment id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "REPO", "NOTEBOOKS", "LESSON_ID", "CourseError", "all_lessons", "resolve", "source_notebooks"
]

REPO = Path(__file__).resolve().parent.parent
# COURSE_NOTEBOOKS points the tools at another set of lessons (tests use a tiny one).
NOTEBOOKS = Path(os.environ.get("COURSE_NOTEBOOKS", REPO / "notebooks")).resolve()
LESSON_ID = re.compile(r"^\d\d-[a-z0-9-]+$")


class CourseError(Exception):
    """A user mistake (wrong path, unknown lesson): reported in one line, exit 2."""


def all_lessons(notebooks: Path = NOTEBOOKS) -> list[str]:
    """Lesson ids in course order."""
    if not notebooks.is_dir():
        return []
    return sorted(
        p.name for p in notebooks.iterdir()
        if p.is_dir() and LESSON_ID.match(p.name) and any(p.glob("*.ipynb"))
    )


def resolve(names: list[str] | None, notebooks: Path = NOTEBOOKS) -> list[str]:
    """Turn user input ('01', '01-processes-and-threads', none) into lesson ids."""
    known = all_lessons(notebooks)
    if not names:
        return known
    chosen = []
    for name in names:
        name = name.rstrip("/").split("/")[-1]
        matches = [k for k in known if k == name or k.split("-", 1)[0] == name]
        if not matches:
            raise CourseError(
                f"unknown lesson {name!r}; the lessons are: {', '.join(known)}"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def source_notebooks(lesson: str, notebooks: Path = NOTEBOOKS) -> list[Path]:
    return sorted((notebooks / lesson).glob("*.ipynb"))
