"""Grade solution variants (mutants, idioms) the way a class is graded, one student each.

Each variant is one student's submission of its lesson: the variant in its solution cell,
the exercise's other cells as the reference has them, and every *other* exercise of the
lesson left unattempted (its cells ``raise NotImplementedError()``: their tests fail at
once instead of spending the batch's time). One ``course grade --jobs N``, sandboxed,
grades them all; a variant's points are read per test from ``results/`` and
summed over its exercise's test cells. Beside them a *control* student per exercise hands
in the reference alone: it must earn the exercise's full points, or the run says so.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.selfstudy.exercises import lesson_exercises

from tests.submissions import grade, make_submission

__all__ = ["Variant", "Verdict", "UNATTEMPTED", "control", "grade_variants"]

UNATTEMPTED = "raise NotImplementedError()"


@dataclass(frozen=True)
class Variant:
    """One submission to grade: ``cells`` maps solution grade ids of one exercise to their source."""

    student: str
    lesson: str
    exercise: str
    cells: dict = field(hash=False)


@dataclass
class Verdict:
    student: str
    lesson: str
    exercise: str
    points: float
    max_points: float
    status: str
    reason: str
    failed: list          # "test: message" of each test of the exercise that lost points
    seconds: float | None

    @property
    def full_marks(self) -> bool:
        return self.status == "graded" and self.points == self.max_points

    @property
    def lost_points(self) -> bool:
        return self.points < self.max_points


def control(lesson: str, exercise: str) -> Variant:
    """The reference alone (the other exercises unattempted): it must earn every point."""
    return Variant(student=f"control-{lesson[:2]}-{exercise}", lesson=lesson, exercise=exercise, cells={})


def _replacements(variant: Variant, exercises) -> dict:
    replace = {}
    for exercise in exercises:
        if exercise.name == variant.exercise:
            replace.update(variant.cells)
        else:
            replace.update({grade_id: UNATTEMPTED for grade_id in exercise.solutions})
    return replace


def grade_variants(variants: list[Variant], out: Path, *, jobs: int = 2, timeout: float = 7200,
                   extra: tuple = ()) -> dict[str, Verdict]:
    """Grade every variant in one ``course grade`` batch and return {student: Verdict}.

    Students are unique across lessons (``submitted/<student>/<lesson>/``), so one batch and
    one set of workers grade every lesson at once. ``out`` keeps the submissions and the
    graded batch: a run that stops resumes there; a student of an earlier run that is no
    longer a variant is removed from ``out/submitted`` first.
    """
    out = Path(out)
    submitted, graded = out / "submitted", out / "graded"
    exercises = {lesson: lesson_exercises(lesson) for lesson in sorted({v.lesson for v in variants})}
    wanted = {v.student for v in variants}
    if submitted.is_dir():
        for old in submitted.iterdir():
            if old.name not in wanted:
                shutil.rmtree(old)
    for variant in variants:
        make_submission(submitted, variant.student, variant.lesson, _replacements(variant, exercises[variant.lesson]))
    started = time.monotonic()
    grade(submitted, graded, "--jobs", str(jobs), *extra, timeout=timeout)
    print(f"graded {len(variants)} submissions of {', '.join(exercises)} in {time.monotonic() - started:.0f} s",
          flush=True)
    verdicts = {}
    for variant in variants:
        result = json.loads((graded / "results" / variant.student / f"{variant.lesson}.json").read_text())
        tests = {e.name: e.tests for e in exercises[variant.lesson]}[variant.exercise]
        scored = {t["name"]: t for t in result["tests"] if t["name"] in tests}
        failed = [f"{name}: {(scored.get(name) or {}).get('message', 'not run')}"[:300]
                  for name in tests if float((scored.get(name) or {}).get("score") or 0) < tests[name]]
        verdicts[variant.student] = Verdict(
            student=variant.student, lesson=variant.lesson, exercise=variant.exercise,
            points=sum(float(t.get("score") or 0) for t in scored.values()),
            max_points=sum(tests.values()), status=result["status"], reason=result.get("reason", ""),
            failed=failed, seconds=result.get("seconds"))
    return verdicts
