"""Does lesson 05 grade correct, deadlocking and racy submissions as they deserve, in bounded time?

One batch of fixture submissions made from the lesson (tests/submissions.py)
is graded once per module with `course grade`. Points: the prediction
(the outcomes of three replayed schedules of forward and backward) 1,
transfer 5 (basics 1, no deadlock 2, conserves money 2), philosopher 5 (eats
1, all eat in every explored schedule 3, five real threads 1), break it (a
schedule that deadlocks the opposite-order transfers) 2 — 13 in all.
"""

import pytest

from tests.submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "05-deadlock"
MAX_SCORE = 13.0

SOURCE_LOCK_FIRST = '''
def transfer(source, target, amount):
    if type(amount) is not int or amount <= 0 or source is target:
        raise ValueError("bad transfer")
    with source.lock:                 # opposite transfers take the locks in opposite order
        with target.lock:
            if source.balance < amount:
                return False
            source.balance -= amount
            target.balance += amount
            return True
'''

LEFT_FORK_FIRST = '''
def philosopher(table, seat, meals):
    n = len(table.forks)
    for _ in range(meals):
        with table.forks[seat]:               # everyone left first: a cycle
            with table.forks[(seat + 1) % n]:
                table.eat(seat)
'''

NO_LOCKS_TRANSFER = '''
def transfer(source, target, amount):
    if type(amount) is not int or amount <= 0 or source is target:
        raise ValueError("bad transfer")
    if source.balance < amount:               # no lock: check-then-act and lost updates
        return False
    source.balance -= amount
    target.balance += amount
    return True
'''

NO_FORKS = '''
def philosopher(table, seat, meals):
    for _ in range(meals):
        table.eat(seat)                       # eats without picking up the forks
'''

# Correct in another style: any fixed global order of the locks prevents the
# deadlock, here the objects' id(); philosophers alternate which fork they
# take first (odd seats right first), which breaks the cycle too.
ID_ORDER_TRANSFER = '''
def transfer(source, target, amount):
    if type(amount) is not int or amount <= 0:
        raise ValueError(f"amount must be a positive int, not {amount!r}")
    if source is target:
        raise ValueError("cannot transfer from an account to itself")
    first, second = (source, target) if id(source) < id(target) else (target, source)
    with first.lock, second.lock:
        if source.balance < amount:
            return False
        source.balance -= amount
        target.balance += amount
        return True
'''

ALTERNATING_PHILOSOPHER = '''
def philosopher(table, seat, meals):
    left, right = table.forks[seat], table.forks[(seat + 1) % len(table.forks)]
    first, second = (right, left) if seat % 2 else (left, right)
    for _ in range(meals):
        with first:
            with second:
                table.eat(seat)
'''

# The prediction: one outcome wrong, and the right outcomes written as a list instead of a tuple.
WRONG_PREDICTION = 'OUTCOMES = ("deadlock", "deadlock", "finished")'
PREDICTION_AS_LIST = 'OUTCOMES = ["deadlock", "finished", "finished"]'
NO_TRANSFER = "def transfer(source, target, amount):\n    raise NotImplementedError()"
NO_PHILOSOPHER = "def philosopher(table, seat, meals):\n    raise NotImplementedError()"
NO_SCHEDULE = "raise NotImplementedError()"
# "break it": each transfer runs to its end in turn: valid, no deadlock ...
HARMLESS_SCHEDULE = 'DEADLOCK_SCHEDULE = "0x3 1x3"'
# ... names to_current again (step 6) while it waits for the lock to_savings holds ...
INVALID_SCHEDULE = 'DEADLOCK_SCHEDULE = "0x2 1x2 0 0"'
# ... the other thread first: a deadlock all the same
OTHER_ORDER_SCHEDULE = 'DEADLOCK_SCHEDULE = "1x2 0x2"'

FIXTURES = {
    # student: (replacements, allowed scores)
    "correct": ({}, {MAX_SCORE}),
    # Correct in another style (id() order; alternating philosophers): full marks.
    "unusual": ({"transfer": ID_ORDER_TRANSFER, "philosopher": ALTERNATING_PHILOSOPHER}, {MAX_SCORE}),
    # Opposite-order locks: the prediction (1) and both basics cells pass (2); every
    # exploration finds the deadlock. Five real left-first philosophers may or may not
    # deadlock in 50 meals (+1 if they happen to finish).
    "deadlocking": ({"transfer": SOURCE_LOCK_FIRST, "philosopher": LEFT_FORK_FIRST}, {5.0, 6.0}),
    # No locks: the prediction (1) and transfer basics (1) pass; every check that looks at the
    # locks or explores schedules fails, the five real threads too (they eat without forks).
    "racy": ({"transfer": NO_LOCKS_TRANSFER, "philosopher": NO_FORKS}, {4.0}),
    "unattempted": ({"predict_replayed_schedules": "raise NotImplementedError()",
                     "transfer": NO_TRANSFER, "philosopher": NO_PHILOSOPHER,
                     "break_opposite_locks": NO_SCHEDULE}, {0.0}),
    # A wrong prediction costs its one point and nothing else.
    "wrong_prediction": ({"predict_replayed_schedules": WRONG_PREDICTION}, {MAX_SCORE - 1}),
    # Only the prediction, right as a list (the same outcomes in order): its point alone.
    "prediction_only": ({"predict_replayed_schedules": PREDICTION_AS_LIST,
                         "transfer": NO_TRANSFER, "philosopher": NO_PHILOSOPHER,
                         "break_opposite_locks": NO_SCHEDULE}, {1.0}),
    # "break it" (2): a schedule that deadlocks nothing, and one naming a blocked thread, earn nothing;
    # the deadlock reached from the other side earns both points.
    "break_it_harmless": ({"break_opposite_locks": HARMLESS_SCHEDULE}, {MAX_SCORE - 2}),
    "break_it_invalid": ({"break_opposite_locks": INVALID_SCHEDULE}, {MAX_SCORE - 2}),
    "break_it_other_order": ({"break_opposite_locks": OTHER_ORDER_SCHEDULE}, {MAX_SCORE - 0}),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--jobs", "2", max_score=MAX_SCORE, within=240, check_status=False, timeout=600)
