"""Is every exercise ready for a learner alone: staged hints, a walkthrough, a prediction per lesson,
a "break it" schedule exercise in the lessons on races, producers and deadlock?"""

import nbformat
import pytest

from autograder.leaks import hidden_lines
from course_lib.selfstudy.exercises import lesson_exercises
from tests.submissions import NOTEBOOKS

LESSONS = sorted(p.name for p in NOTEBOOKS.iterdir() if p.is_dir() and p.name[:2].isdigit())
BREAK_IT = {"03": "break_overdraft", "04": "break_empty_get", "05": "break_opposite_locks"}


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_has_staged_hints_and_a_walkthrough_naming_its_test(lesson):
    found = lesson_exercises(lesson)
    assert found
    for exercise in found:
        assert 2 <= len(exercise.hints) <= 3, f"{exercise.name}: {len(exercise.hints)} hints"
        assert len(set(exercise.hints)) == len(exercise.hints) and all(h.strip() for h in exercise.hints)
        assert exercise.walkthrough, f"{exercise.name} has no walkthrough"
        assert any(f"`{test}`" in exercise.walkthrough for test in exercise.tests), \
            f"{exercise.name}: the walkthrough names none of its tests {sorted(exercise.tests)}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_no_hint_or_walkthrough_quotes_a_hidden_test(lesson):
    nb = nbformat.read(next((NOTEBOOKS / lesson).glob("*.ipynb")), as_version=4)
    secret = hidden_lines(c for c in nb.cells if c.cell_type == "code")
    for exercise in lesson_exercises(lesson):
        for text in [*exercise.hints, exercise.walkthrough]:
            squeezed = "".join(text.split())
            assert not [line for line in secret if line in squeezed], exercise.name


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_asks_one_graded_prediction(lesson):
    predictions = [e for e in lesson_exercises(lesson) if e.name.startswith("predict_")]
    assert len(predictions) == 1 and predictions[0].points >= 1


@pytest.mark.parametrize("lesson", [l for l in LESSONS if l[:2] in BREAK_IT])
def test_the_concurrency_lessons_have_a_break_it_exercise(lesson):
    names = {e.name: e for e in lesson_exercises(lesson)}
    exercise = names[BREAK_IT[lesson[:2]]]
    assert exercise.points >= 2
