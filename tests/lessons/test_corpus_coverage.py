"""Does every graded exercise have a solution in another idiom in tests/lessons/corpus/?

Cheap: it reads the files, grades nothing (tests/lessons/test_corpus.py grades them). A new
exercise without an idiom fails here, so the corpus cannot forget it. A prediction has one
right answer, so it needs none. PENDING names the exercises still without one, each with why:
an idiom added for one of them fails the test until its line is removed.
"""

from course_lib.selfstudy.exercises import lesson_exercises
from tests.mutation.corpus import corpus
from tests.mutation.engine import LESSONS

PENDING = {
}


def _needing_an_idiom():
    return {(lesson, e.name) for lesson in LESSONS for e in lesson_exercises(lesson)
            if not e.name.startswith("predict_")}


def test_every_graded_exercise_has_a_full_marks_idiom():
    """Is each exercise that is not a prediction given one idiom expected to earn full marks?"""
    covered = {(e.lesson, e.exercise) for e in corpus() if e.expect == "full" and e.xfail is None}
    missing = _needing_an_idiom() - covered
    assert missing == set(PENDING), (
        f"without an idiom in tests/lessons/corpus/: {sorted(missing - set(PENDING))}; "
        f"PENDING but covered now (remove them): {sorted(set(PENDING) - missing)}")


def test_every_pending_exercise_is_real_and_says_why():
    """Does PENDING name real exercises, each with a reason?"""
    assert set(PENDING) <= _needing_an_idiom()
    assert all(PENDING.values())
