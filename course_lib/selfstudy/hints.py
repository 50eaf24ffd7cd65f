"""Staged hints: each call shows the next hint of an exercise and records it as seen.

Hints are written in the lesson's source notebook (see
:mod:`course_lib.selfstudy.exercises`; on a class hub they come from the
lesson's released hints file, :mod:`course_lib.selfstudy.released`), from a
nudge to a near-solution, and
are given one at a time: asking again shows the next, and past the last one
the answer says there are no more (and points at ``course solutions``).
:func:`list_hints` lists a lesson's exercises, numbered as the notebook
numbers them, with the hints seen of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import progress
from .exercises import find_exercise
from .released import hint_exercises_for

__all__ = ["Hint", "next_hint", "list_hints"]


@dataclass
class Hint:
    lesson: str
    exercise: str
    number: int        # 1-based number of the hint shown; 0 when none is left
    total: int
    text: str
    title: str = ""    # as the notebook names it: "Exercise 1 — SafeCounter"

    @property
    def exhausted(self) -> bool:
        return self.number == 0

    def __str__(self) -> str:
        if self.exhausted:
            return (f"{self.exercise}: you have seen all {self.total} hints. Next step: "
                    f"`course check` your notebook, or `course solutions {self.lesson[:2]} --out DIR` "
                    "for the worked solution.")
        return f"{self.title or self.exercise}, hint {self.number} of {self.total}:\n\n{self.text}"


def next_hint(lesson: str, exercise: str, work: Path) -> Hint:
    """The first hint of ``exercise`` not yet seen in ``work``'s progress file, now recorded."""
    lesson, exercises = hint_exercises_for(lesson, work)
    found = find_exercise(lesson, exercise, among=exercises)
    seen = progress.hints_seen(work, lesson, found.name)
    if seen >= len(found.hints):
        return Hint(lesson, found.name, 0, len(found.hints), "", found.label)
    progress.record_hint(work, lesson, found.name, seen + 1)
    return Hint(lesson, found.name, seen + 1, len(found.hints), found.hints[seen], found.label)



def list_hints(lesson: str, work: Path) -> str:
    """The exercises of ``lesson`` as ``course hint`` names them, with the hints seen so far."""
    lesson, exercises = hint_exercises_for(lesson, work)  # the source, or the lesson's released hints file
    data = progress.load(work)
    lines = [f"{lesson}: ask for a hint with `course hint {lesson[:2]} NUMBER` or `... NAME`"]
    for exercise in exercises:
        seen = min(int(data["lessons"].get(lesson, {}).get(exercise.name, {}).get("hints_seen", 0)),
                   len(exercise.hints))
        number = exercise.number or "-"
        lines.append(f"  {number:>2}  {exercise.name:<28} {exercise.kind:<10} {seen} of {len(exercise.hints)} "
                     "hints seen")
    return "\n".join(lines)
