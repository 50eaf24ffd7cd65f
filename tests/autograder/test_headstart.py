"""Does `course check` start its judge kernel before it reads the lesson, with exactly the tests it then runs,
and leave no kernel behind whether it takes that kernel or not?"""

from __future__ import annotations

import json

import pytest

from autograder import check, headstart, lessons, referee, warm
from autograder.normalize import DEMO_TAG, normalize
from tests.submissions import make_submission
from tests.waiting import judge_kernels


def _tests_the_check_runs(template, lesson: str, exercise: str | None) -> dict[str, str]:
    """What BoundedExecute hands the kernel when the check builds its notebook (check.py's own steps)."""
    from course_lib.selfstudy.exercises import exercises_in

    if exercise:
        template = check._select(template, check.exercise_named(exercises_in(json.loads(json.dumps(template)), lesson),
                                                       exercise), {})
    plans = referee.plan_tests(normalize(template, {"cells": []}, lesson).notebook)
    return {gid: plan.source for gid, plan in plans.items() if not plan.here}


def test_the_guess_is_what_the_check_runs():
    """For every lesson, each of its exercises and the whole notebook, hidden tests in or out, are the
    tests guessed from the lesson's JSON exactly those the check's kernel gets (else no head start)?"""
    from course_lib.selfstudy.exercises import exercises_in

    assert (headstart._REFEREE_TAG, headstart._DEMO_TAG) == (referee.REFEREE_TAG, DEMO_TAG)
    compared = 0
    for lesson in lessons.all_lessons():
        source = json.loads(lessons.source_notebooks(lesson)[0].read_text(encoding="utf-8"))
        for hidden in (False, True):
            template = check._lesson_cells(lesson, {"cells": []}, hidden=hidden).template
            for exercise in [None, *(e.name for e in exercises_in(source, lesson))]:
                guessed = headstart.kernel_tests(source, lesson, exercise, hidden=hidden)
                assert guessed == _tests_the_check_runs(template, lesson, exercise), (lesson, exercise, hidden)
                compared += 1
    assert compared > 60


def test_hidden_regions_are_cut_as_nbgrader_cuts_them():
    """Is a hidden region cut with its delimiter lines, and the lines around it kept as they were?"""
    source = 'a = 1\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS\nb = 2\n'
    assert headstart._without_hidden(source) == "a = 1\nb = 2\n"
    assert headstart._without_hidden("no region") == "no region"




@pytest.mark.slow
def test_a_check_runs_in_the_kernel_started_first(tmp_path, monkeypatch):
    """Does a one-exercise check take the kernel started before the lesson was read (no second kernel),
    grade as before, and leave no kernel running?"""
    taken = []
    take = warm.take
    monkeypatch.setattr(warm, "take", lambda *a, **k: taken.append(take(*a, **k)) or taken[-1])
    notebook = make_submission(tmp_path, "learner", "07-daytime-client-server")
    results = check.check(notebook, exercise="get_daytime")
    assert {r.grade_id: r.outcome for r in results} == {"get_daytime_reply": "passed",
                                                        "get_daytime_pieces": "passed",
                                                        "get_daytime_failures": "passed"}
    # a second take only follows a kernel that died before its first reply (the cold retry, under load)
    assert taken and taken[0] is not None and len(taken) <= 2, "the check started a kernel of its own"
    assert warm._slot is None and not judge_kernels()


@pytest.mark.slow
def test_a_check_that_stops_before_running_leaves_no_kernel(tmp_path, monkeypatch):
    """When the check fails after its kernel was started (here: the policy cannot read the lesson), is that
    kernel shut down before the error reaches the learner?"""
    notebook = make_submission(tmp_path, "learner", "07-daytime-client-server")

    def broken(*args, **kwargs):
        assert warm._slot is not None, "the kernel should be starting by now"
        raise check.CourseError("the lesson cannot be read")

    monkeypatch.setattr(check, "_lesson_cells", broken)
    with pytest.raises(check.CourseError, match="cannot be read"):
        check.check(notebook, exercise="get_daytime")
    assert warm._slot is None and not judge_kernels()
