"""Do the solution files of tests/lessons/corpus/ earn what they say, graded as a class is graded?

Each file is one exercise's solution cell written another way (tests/mutation/corpus.py):
an idiom a careful student would use (select.poll or select.select beside selectors,
socketserver, a thread pool, semaphores, a queue) must earn every point of its exercise;
a wrong one (a reference that was wrong, a mutant that once survived) must lose some. One
``course grade`` batch, sandboxed, one student per file, the lesson's other exercises
unattempted. A file marked ``# xfail: policy`` is an idiom the grader's policy still refuses
wrongly: its test is expected to fail until the policy is fixed (strict: a pass is news). There is no
mark for a verdict right only on some runs: a search's verdict must not depend on how far it got.
"""

import pytest

from tests.mutation.corpus import corpus
from tests.mutation.grading import grade_variants

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ENTRIES = corpus()


def test_every_entry_says_what_it_must_earn_and_why():
    """Does each corpus file carry its expectation and a reason, and name real cells?"""
    assert ENTRIES
    for entry in ENTRIES:
        assert entry.expect in ("full", "loses") and entry.why, entry.path
        assert entry.xfail in (None, "policy"), entry.path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return grade_variants([e.variant() for e in ENTRIES], tmp_path_factory.mktemp("corpus"), jobs=2, timeout=900)


def _case(entry):
    marks = [pytest.mark.xfail(strict=True, reason="policy")] if entry.xfail == "policy" else []
    return pytest.param(entry, id=entry.name, marks=marks)


@pytest.mark.timeout(1500)  # the first test that needs the batch waits for it
@pytest.mark.parametrize("entry", [_case(e) for e in ENTRIES])
def test_a_corpus_solution_earns_what_it_says(graded, entry):
    """Does this solution earn every point (an idiom) or lose some (a wrong one), with no incident?"""
    verdict = graded[entry.variant().student]
    assert verdict.status == "graded", f"{entry.path.name}: {verdict.status}: {verdict.reason}"
    if entry.expect == "full":
        assert verdict.full_marks, f"{entry.path.name} ({entry.why}): {verdict.points}/{verdict.max_points} {verdict.failed}"
    else:
        assert verdict.lost_points, f"{entry.path.name} ({entry.why}) kept every point"
