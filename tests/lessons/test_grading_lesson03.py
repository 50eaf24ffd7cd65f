"""Does lesson 03 grade correct, racy and deadlocking submissions as they deserve, in bounded time?

One batch of fixture submissions made from the lesson (tests/submissions.py)
is graded once per module with `course grade`. Points: SafeCounter 4
(counts 1, no lost update 2, stress 1), Bank 6 (basics 1, bad input 1,
never overdrawn 2, conserves money 2).
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
    "SafeCounter": "class SafeCounter:\n    def __init__(self):\n        raise NotImplementedError()",
    "Bank": "class Bank:\n    def __init__(self, balances):\n        raise NotImplementedError()",
}

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

FIXTURES = {
    # student: (replacements, allowed scores)
    "correct": ({}, {10.0}),
    # Deadlocking bank: bad input 1 (basics times out, the explorations report the one-thread
    # deadlock); with a lock per call the counter keeps counts 1, and stress 1 when it misses the race
    "deadlocking_lock_per_call": ({"Bank": DEADLOCKING_BANK, "SafeCounter": LOCK_PER_CALL}, {2.0, 3.0}),
    # Correct in another style (a class-level lock; an RLock bank): full marks.
    "unusual": ({"SafeCounter": CLASS_LOCK_COUNTER, "Bank": RLOCK_BANK}, {10.0}),
    # Racy: counts 1 + bank basics 1 + bad input 1; the two stress cells may
    # pass or fail (a plain stress run rarely catches the race on CPython 3.11),
    # the schedule explorations always fail.
    "racy": ({"SafeCounter": RACY_COUNTER, "Bank": RACY_BANK}, {3.0, 4.0}),
    "unattempted": (NOT_ATTEMPTED, {0.0}),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--jobs", "2", max_score=10.0, within=240, check_status=False, timeout=600)
