"""``course solutions``: the lessons with their solutions, for self-study.

A self-study learner has no instructor to ask; this writes the source
notebooks (solutions and hidden tests included) to a folder of their choice,
never over their own work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import lessons as lessons_mod
from .lessons import CourseError
from .release import COPY_IGNORE


__all__ = ["solutions"]

def solutions(lessons: list[str] | None = None, *, out: Path) -> list[Path]:
    """Copy the source notebooks of ``lessons`` to ``out/<lesson>/``."""
    written = []
    for lesson in lessons_mod.resolve(lessons):
        target = Path(out) / lesson
        if target.exists():
            raise CourseError(f"{target} exists; choose another --out so no work is overwritten")
        shutil.copytree(lessons_mod.NOTEBOOKS / lesson, target, ignore=COPY_IGNORE)
        written.append(target)
    return written
