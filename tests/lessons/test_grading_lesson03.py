"""Does lesson 03 grade correct, racy and deadlocking submissions as they deserve, in bounded time?

One batch of fixture submissions made from the lesson (tests/submissions.py)
is graded once per module with `course grade`. Points: the prediction 1
(predict_lost_update_correct: the counter's value after the replayed
schedule "0x2 1x3 0"), SafeCounter 4 (counts 1, no lost update 2, stress 1),
Bank 6 (basics 1, bad input 1, never overdrawn 2, conserves money 2), break it 2
(break_overdraft_breaks: a schedule that overdraws the check-then-act Account) — 13.
"""

import pytest

from tests.submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "03-race-conditions-and-locks"

RACY_COUNTER = '''
class SafeCounter:
    def __init__(self):
        self._count = 0

    def increment(self, amount=1):
        self._count += amount        # read-add-write with no lock

    def value(self):
        return self._count
'''

RACY_BANK = '''
class Bank:
    def __init__(self, balances):
        self._balances = dict(balances)

    def _check(self, amount):
        if type(amount) is not int or amount <= 0:
            raise ValueError(amount)

    def deposit(self, name, amount):
        self._check(amount)
        self._balances[name] += amount

    def withdraw(self, name, amount):
        self._check(amount)
        if self._balances[name] < amount:      # check ...
            return False
        self._balances[name] -= amount         # ... then act, with no lock
        return True

    def transfer(self, source, target, amount):
        self._check(amount)
        self._balances[target]
        if self._balances[source] < amount:
            return False
        self._balances[source] -= amount
        self._balances[target] += amount
        return True

    def balance(self, name):
        return self._balances[name]

    def total(self):
        return sum(self._balances.values())
'''

# transfer() holds the (plain, not re-entrant) lock and calls withdraw(), which takes it again.
DEADLOCKING_BANK = RACY_BANK.replace(
    "        self._balances = dict(balances)\n",
    "        self._balances = dict(balances)\n        self._lock = threading.Lock()\n",
).replace(
    '''        if self._balances[name] < amount:      # check ...
            return False
        self._balances[name] -= amount         # ... then act, with no lock
        return True''',
    '''        with self._lock:
            if self._balances[name] < amount:
                return False
            self._balances[name] -= amount
            return True''',
).replace(
    '''        self._balances[target]
        if self._balances[source] < amount:
            return False
        self._balances[source] -= amount
        self._balances[target] += amount
        return True''',
    '''        with self._lock:
            self._balances[target]
            if not self.withdraw(source, amount):
                return False
            self.deposit(target, amount)
            return True''',
)

NOT_ATTEMPTED = {
    "predict_lost_update": "# Your prediction, before you run the replay below (FINAL_COUNTER_VALUE, an int):\n"
                           "raise NotImplementedError()",
    "SafeCounter": "class SafeCounter:\n    def __init__(self):\n        raise NotImplementedError()",
    "Bank": "class Bank:\n    def __init__(self, balances):\n        raise NotImplementedError()",
    "break_overdraft": "raise NotImplementedError()",
}

# The prediction: the naive answer (each call counted, the lost update not seen) is wrong; the
# right number written as an expression counts; the right number written as a str does not (the
# question asks for an int, and the visible check says so).
WRONG_PREDICTION = "FINAL_COUNTER_VALUE = 2"
PREDICTION_AS_EXPRESSION = "FINAL_COUNTER_VALUE = 2 - 1  # two increments, one of them lost"
PREDICTION_AS_STR = 'FINAL_COUNTER_VALUE = "1"'

# Correct in another style: one lock for the whole class (coarse, but every
# increment is atomic), and a bank whose transfer composes withdraw and
# deposit under one re-entrant lock. The scheduler must see the class-level
# lock, made before any run, as the lock it is.
CLASS_LOCK_COUNTER = '''
class SafeCounter:
    """Every counter shares one lock: coarse, but no update is lost."""
    _lock = threading.Lock()

    def __init__(self):
        self._count = 0

    def increment(self, amount=1):
        with SafeCounter._lock:
            self._count += amount

    def value(self):
        with SafeCounter._lock:
            return self._count
'''

RLOCK_BANK = '''
class Bank:
    """One re-entrant lock: transfer holds it while it calls withdraw and deposit."""

    def __init__(self, balances):
        self._balances = dict(balances)
        self._lock = threading.RLock()

    @staticmethod
    def _check(amount):
        if type(amount) is not int or amount <= 0:
            raise ValueError(f"amount must be a positive int, not {amount!r}")

    def deposit(self, name, amount):
        self._check(amount)
        with self._lock:
            self._balances[name] = self._balances[name] + amount

    def withdraw(self, name, amount):
        self._check(amount)
        with self._lock:
            if self._balances[name] < amount:
                return False
            self._balances[name] = self._balances[name] - amount
            return True

    def transfer(self, source, target, amount):
        self._check(amount)
        with self._lock:
            self._balances[target]  # KeyError before any money moves
            if not self.withdraw(source, amount):
                return False
            self.deposit(target, amount)
            return True

    def balance(self, name):
        with self._lock:
            return self._balances[name]

    def total(self):
        with self._lock:
            return sum(self._balances.values())
'''

# A new lock on every call: each increment holds a lock nobody else can see.
LOCK_PER_CALL = '''
class SafeCounter:
    def __init__(self):
        self._count = 0

    def increment(self, amount=1):
        with threading.Lock():
            self._count += amount

    def value(self):
        return self._count
'''

MAX_SCORE = 13.0

# "break it" (2 points): schedules for the check-then-act Account of course_lib.breakit.
HARMLESS_SCHEDULE = 'OVERDRAFT_SCHEDULE = "0x7 1"'           # alice finishes first: bob is refused
FINISHED_THREAD_SCHEDULE = 'OVERDRAFT_SCHEDULE = "0x7 1x4 0"'  # names alice after she has finished
SPELLED_OUT_SCHEDULE = 'OVERDRAFT_SCHEDULE = "0 0 0 0 1 1 1 1"'  # 0x4 1x4: both pass the check
# A str that "splits" into the breaking schedule: only a plain str is read as a schedule.
FAKE_STR_SCHEDULE = """
class Schedule(str):
    def split(self, *args):
        return ["0", "0", "0", "1", "1", "1", "0"]

OVERDRAFT_SCHEDULE = Schedule("0x7 1")
"""
# Reaching for the program the schedule is judged on: the policy refuses the cell.
TAMPERED_PROGRAM = """
from course_lib import breakit
breakit.OVERDRAFT = breakit.OPPOSITE_LOCKS
OVERDRAFT_SCHEDULE = "0x2 1x2"
"""

FIXTURES = {
    # student: (replacements, allowed scores)
    "correct": ({}, {MAX_SCORE}),
    # Deadlocking bank: prediction 1 + bad input 1 (basics times out, the explorations report the
    # one-thread deadlock); with a lock per call the counter keeps counts 1 only (stress forces two
    # increments to overlap, which a lock per call does not keep apart)
    "deadlocking_lock_per_call": ({"Bank": DEADLOCKING_BANK, "SafeCounter": LOCK_PER_CALL}, {5.0}),
    # Correct in another style (a class-level lock; an RLock bank): full marks.
    "unusual": ({"SafeCounter": CLASS_LOCK_COUNTER, "Bank": RLOCK_BANK}, {MAX_SCORE}),
    # Racy: prediction 1 + counts 1 + bank basics 1 + bad input 1 + break it 2; the schedule
    # explorations fail, and so does stress (a plain stress run rarely catches the race on
    # CPython 3.11, but its two increments forced to overlap always lose one).
    "racy": ({"SafeCounter": RACY_COUNTER, "Bank": RACY_BANK}, {6.0}),
    "unattempted": (NOT_ATTEMPTED, {0.0}),
    # Everything right but the prediction: only the prediction's point is lost.
    "wrong_prediction": ({"predict_lost_update": WRONG_PREDICTION}, {MAX_SCORE - 1}),
    # The right prediction, computed: full marks.
    "prediction_as_expression": ({"predict_lost_update": PREDICTION_AS_EXPRESSION}, {MAX_SCORE}),
    # The right number as a str: refused by the visible type check, so the prediction's point is lost.
    "prediction_as_str": ({"predict_lost_update": PREDICTION_AS_STR}, {MAX_SCORE - 1}),
    # Break it: a harmless schedule, one naming a finished thread, a str subclass and a tampered
    # program each lose the 2 points; the breaking schedule written step by step earns them.
    "break_it_harmless": ({"break_overdraft": HARMLESS_SCHEDULE}, {MAX_SCORE - 2}),
    "break_it_finished_thread": ({"break_overdraft": FINISHED_THREAD_SCHEDULE}, {MAX_SCORE - 2}),
    "break_it_fake_str": ({"break_overdraft": FAKE_STR_SCHEDULE}, {MAX_SCORE - 2}),
    "break_it_tampered": ({"break_overdraft": TAMPERED_PROGRAM}, {MAX_SCORE - 2}),
    "break_it_spelled_out": ({"break_overdraft": SPELLED_OUT_SCHEDULE}, {MAX_SCORE}),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--jobs", "2", max_score=MAX_SCORE, within=300, check_status=False, timeout=600)


@pytest.mark.parametrize("student,words", [
    ("break_it_harmless", ["kept its promise", "balance = 20", "What your schedule did", "Goal:"]),
    ("break_it_finished_thread", ["not a valid schedule", "had finished"]),
])
def test_break_it_feedback_says_what_the_schedule_did(graded, tmp_path_factory, student, words):
    """Does a schedule that earns nothing come back with why (its final state, or its invalid step) in the
    instructor's graded notebook, while the student's feedback, written after hidden checks ran, says only
    where it failed and that `course check` shows the rest?"""
    import html

    base = tmp_path_factory.getbasetemp()
    pages = list(base.glob(f"graded-03*/feedback/{student}/{LESSON}/*.html"))
    assert pages, "no feedback page"
    text = html.unescape(pages[0].read_text(encoding="utf-8"))
    assert "break_overdraft_breaks" in text and "failed at test line" in text and "course check" in text, text[-3000:]
    assert not any(w in text for w in words), [w for w in words if w in text]
    graded_nb = next(base.glob(f"graded-03*/autograded/{student}/{LESSON}/*.ipynb")).read_text(encoding="utf-8")
    graded_nb = graded_nb.encode().decode("unicode_escape", errors="replace")
    assert all(w in graded_nb for w in words), [w for w in words if w not in graded_nb]
