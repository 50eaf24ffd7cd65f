"""Solution variants kept as files: tests/lessons/corpus/NN/<exercise>/<name>.py.

A file is what a student would write in the exercise's solution cell. Its first comment
lines say what it must earn::

    # expect: full          (every point of its exercise) or: loses (at least one point less)
    # xfail: policy         (optional: the grader's policy wrongly refuses it for now)
    # why: one line

An exercise with two solution cells takes a ``# cell: GRADE_ID`` line before each part;
the cells it does not name keep the reference. Idioms (other correct ways) expect full
marks; mutants that once survived, and wrong references, expect to lose points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from course_lib.selfstudy.exercises import lesson_exercises

from .engine import LESSONS
from .grading import Variant

__all__ = ["CORPUS", "Entry", "corpus"]

CORPUS = Path(__file__).resolve().parents[1] / "lessons" / "corpus"
HEADER = re.compile(r"^# (expect|xfail|why): (.*)$")
CELL = re.compile(r"^# cell: (\S+)\s*$", re.M)


@dataclass(frozen=True)
class Entry:
    path: Path
    lesson: str
    exercise: str
    expect: str          # "full" or "loses"
    xfail: str | None
    why: str
    cells: tuple         # (grade_id, source) pairs

    @property
    def name(self) -> str:
        return f"{self.lesson[:2]}-{self.exercise}-{self.path.stem}"

    def variant(self) -> Variant:
        return Variant(student=self.name.replace("_", "-"), lesson=self.lesson, exercise=self.exercise,
                       cells=dict(self.cells))


def _entry(path: Path) -> Entry:
    lesson = next(l for l in LESSONS if l[:2] == path.parent.parent.name)
    exercise = next(e for e in lesson_exercises(lesson) if e.name == path.parent.name)
    text = path.read_text(encoding="utf-8")
    header = {}
    for line in text.splitlines():
        match = HEADER.match(line)
        if not match:
            break
        header[match.group(1)] = match.group(2).strip()
    if header.get("expect") not in ("full", "loses") or not header.get("why"):
        raise ValueError(f"{path}: its first lines need `# expect: full|loses` and `# why: ...`")
    parts = CELL.split(text)
    if len(parts) == 1:
        if len(exercise.solutions) != 1:
            raise ValueError(f"{path}: {exercise.name} has cells {exercise.solutions}: name each with # cell:")
        cells = ((exercise.solutions[0], text),)
    else:
        cells = tuple((grade_id, body.lstrip("\n")) for grade_id, body in zip(parts[1::2], parts[2::2]))
        unknown = {g for g, _ in cells} - set(exercise.solutions)
        if unknown:
            raise ValueError(f"{path}: {sorted(unknown)} are not solution cells of {exercise.name}")
    return Entry(path=path, lesson=lesson, exercise=exercise.name, expect=header["expect"],
                 xfail=header.get("xfail"), why=header["why"], cells=cells)


def corpus(root: Path = CORPUS) -> list[Entry]:
    return [_entry(path) for path in sorted(root.glob("[0-9][0-9]/*/*.py"))]
