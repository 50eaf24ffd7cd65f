"""Do the reference solutions' mutants lose points, and is the reviewed list of equivalents current?

The full run is ``make mutants`` (every mutant, about an hour: the table in the README).
Here, within ``make test``'s budget: the engine's own checks (no grading), and a fixed
sample graded through ``course grade``, sandboxed, one student per mutant: every mutant
that once survived and is now killed by a strengthened test, and one of each kind of
operator that matters most (a lock, a wait, a deadline, a join, a send).
"""

import pytest

from tests.mutation.engine import LESSONS, all_mutants
from tests.mutation.grading import control, grade_variants
from tests.mutation.reviewed import equivalents
from tests.mutation.run import mutant_variant

# The sample graded by make test: each must lose points. Chosen to be killed only by tests
# added for them (so a weakened test shows), or to stand for an operator family.
SAMPLE = [
    "01-run_in_threads-deadline_restart-1",       # each join gets the whole timeout
    "01-thread_sees_global-join_remove-1",        # returns before its thread has set the value
    "02-start_ticker-daemon_flip-2",              # a ticker started from the main thread is no daemon
    "03-Bank-compare-5",                          # the whole balance cannot be withdrawn
    "03-Bank-region_split-5",                     # a transfer half-done is seen by total()
    "04-bounded_buffer-region_split-1",           # two producers both take the last slot
    "04-run_pipeline-join_remove-4",              # results returned before the consumers end
    "05-transfer-region_split-1",                 # the balance checked, then the lock let go
    "06-parse_host_port-constant-12",             # port 65536 accepted
    "06-port_accepts-compare-1",                  # port 0 refused
    "07-ThreadedDaytimeServer-deadline_restart-1",  # stop() gives each join the whole timeout
    "07-get_daytime-timeout_remove-1",            # a connect that never completes is waited for
    "08-RoomClient-timeout_remove-2",             # a quiet server ends the client after its connect timeout
    "08-ChatRoom-with_unwrap-4",                  # two joins at once, neither told of the other (held schedule)
    "08-ChatRoom-join_remove-2",                  # stop() sleeps instead of joining (threads held at their end)
    "08-ChatRoom-region_split-3",                 # a newcomer recorded after the lock is let go (held at a line)
    "08-ChatRoom-region_shrink-5",                # a joiner added outside the lock (held at a line)
    "09-ConnectionPool-signal_remove-2",          # release() forgets to notify: waiters wake at their timeout
    "09-ReadWriteLock-region_shrink-4",           # a reader leaves, its count changed outside the lock
    "09-ConnectionPool-region_shrink-4",          # a failed factory() gives its slot back outside the lock
    "10-SelectorDaytimeServer-except_remove-2",   # accept() out of descriptors (EMFILE) ends the loop
    "10-AsyncChatRoom-cleanup_remove-2",          # a member 10 MB behind is never dropped
]


@pytest.fixture(scope="module")
def mutants():
    return {m.id: m for m in all_mutants()}


def test_every_exercise_has_mutants(mutants):
    """Does the engine make mutants for every exercise of every lesson?"""
    from course_lib.selfstudy.exercises import lesson_exercises

    made = {(m.lesson, m.exercise) for m in mutants.values()}
    missing = [(lesson, e.name) for lesson in LESSONS for e in lesson_exercises(lesson) if (lesson, e.name) not in made]
    assert not missing, missing


def test_mutants_compile_and_differ_from_the_reference(mutants):
    """Is every mutant valid Python, and really changed?"""
    for mutant in mutants.values():
        compile(mutant.source, mutant.id, "exec")
        assert mutant.source != mutant.original, mutant.id
        assert "### BEGIN SOLUTION" not in mutant.source


def test_every_reviewed_equivalent_is_current(mutants):
    """Does each entry of equivalent.txt name a mutant the engine still makes, unchanged since review?"""
    stale = [f"{e.id} (reviewed {e.fingerprint}, now {mutants[e.id].fingerprint if e.id in mutants else 'gone'})"
             for e in equivalents().values() if e.id not in mutants or mutants[e.id].fingerprint != e.fingerprint]
    assert not stale, "review these again (tests/mutation/equivalent.txt): " + ", ".join(stale)


def test_the_sample_is_made_and_none_of_it_is_listed_equivalent(mutants):
    """Is every sampled mutant one the engine makes, and not excused as equivalent?"""
    assert set(SAMPLE) <= set(mutants), sorted(set(SAMPLE) - set(mutants))
    assert not set(SAMPLE) & set(equivalents())


@pytest.fixture(scope="module")
def graded(mutants, tmp_path_factory):
    chosen = [mutants[i] for i in SAMPLE]
    controls = {(m.lesson, m.exercise) for m in chosen}
    variants = [control(lesson, exercise) for lesson, exercise in sorted(controls)]
    variants += [mutant_variant(m) for m in chosen]
    return grade_variants(variants, tmp_path_factory.mktemp("mutants"), jobs=2, timeout=900)


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.timeout(1500)  # the first test that needs the batch waits for it
def test_the_reference_alone_earns_its_exercise_s_points(graded, mutants):
    """Does each sampled exercise's reference earn every point with the lesson's other exercises unattempted?"""
    for lesson, exercise in sorted({(mutants[i].lesson, mutants[i].exercise) for i in SAMPLE}):
        verdict = graded[control(lesson, exercise).student]
        assert verdict.full_marks, verdict


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("mutant_id", SAMPLE)
def test_a_sampled_mutant_loses_points(graded, mutant_id, mutants):
    """Does this mutant of a reference solution lose points, graded as a class is graded?"""
    verdict = graded[mutant_id]
    assert verdict.status == "graded", verdict
    assert verdict.lost_points, f"{mutant_id} kept {verdict.points}/{verdict.max_points}:\n{mutants[mutant_id].diff()}"
