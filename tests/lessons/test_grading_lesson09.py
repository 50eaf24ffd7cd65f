"""Does lesson 09 grade its puzzle solutions as they deserve, in bounded time?

One batch of fixture submissions made from the lesson (tests/submissions.py)
is graded once per module with `course grade` (sandboxed: the lesson opens no
socket). Points: the prediction (the free permits after one release too many
of a Semaphore(2)) 1; Rendezvous 3 (order in every explored schedule 2, real
threads 1); ReusableBarrier 5 (one round 1, many rounds 3, real threads 1);
ReadWriteLock 5 (basics 1, readers share 1, exclusion 2, writer priority 1);
ConnectionPool 5 (basics 1, timeout 1, exclusive 2, real threads 1) — 19 in all.

Each wrong fixture breaks one behaviour and loses the points of the cells that
check it: a rendezvous where both wait first (deadlock) or one side never
waits; a one-turnstile barrier (a fast thread laps) and one that spins on a
count it has reset (a loop that never ends, bounded by the scheduler and never
started on real threads); a readers-first lock (the writer starves), a plain
mutex (readers do not share), a writer that sets its flag after releasing the
lock (two writers at once); a pool with no limit, one that returns None on a
timeout, one that checks and acts without a lock, and one whose release
forgets to notify (a waiting acquire hangs: bounded by the test's time limits);
the last three also keep the slot of a factory that raised. A pool that calls
its factory under its lock is tests/lessons/corpus/09/ConnectionPool/ (graded
by tests/lessons/test_corpus.py).
"""

import pytest

from tests.submissions import lesson_grading_tests

pytestmark = pytest.mark.slow

LESSON = "09-semaphores-barriers-and-pools"
MAX_SCORE = 19.0

CONDITION_RENDEZVOUS = '''
class Rendezvous:
    """Counts arrivals under one Condition; each waits until both have come."""

    def __init__(self):
        self._arrivals = 0
        self._both = threading.Condition()   # notified by each arrival

    def _arrive(self):
        with self._both:
            self._arrivals += 1
            self._both.notify_all()
            if not self._both.wait_for(lambda: self._arrivals >= 2, timeout=30):
                raise TimeoutError("the other thread never came")

    def arrive_a(self):
        self._arrive()

    def arrive_b(self):
        self._arrive()
'''

WAIT_FIRST_RENDEZVOUS = '''
class Rendezvous:
    def __init__(self):
        self._a_arrived = threading.Semaphore(0)
        self._b_arrived = threading.Semaphore(0)

    def arrive_a(self):
        self._b_arrived.acquire()     # waits before it signals: so does B
        self._a_arrived.release()

    def arrive_b(self):
        self._a_arrived.acquire()
        self._b_arrived.release()
'''

ONE_SIDED_RENDEZVOUS = '''
class Rendezvous:
    def __init__(self):
        self._b_arrived = threading.Semaphore(0)

    def arrive_a(self):
        self._b_arrived.acquire()     # A waits for B ...

    def arrive_b(self):
        self._b_arrived.release()     # ... but B never waits for A
'''

TURNSTILE_BARRIER = '''
class ReusableBarrier:
    """The Little Book's two turnstiles: nobody enters the second before all passed the first."""

    def __init__(self, n):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError("n must be a positive int")
        self.n = n
        self.count = 0
        self.mutex = threading.Lock()
        self.first = threading.Semaphore(0)
        self.second = threading.Semaphore(0)

    def wait(self):
        with self.mutex:
            self.count += 1
            if self.count == self.n:
                self.first.release(self.n)
        self.first.acquire()
        with self.mutex:
            self.count -= 1
            if self.count == 0:
                self.second.release(self.n)
        self.second.acquire()
'''

LAPPING_BARRIER = '''
class ReusableBarrier:
    """One turnstile, opened n times by the last to arrive: a fast thread can lap."""

    def __init__(self, n):
        if type(n) is not int or n < 1:
            raise ValueError("n must be a positive int")
        self.n = n
        self.count = 0
        self.mutex = threading.Lock()
        self.turnstile = threading.Semaphore(0)

    def wait(self):
        with self.mutex:
            self.count += 1
            if self.count == self.n:
                self.count = 0
                self.turnstile.release(self.n)
        self.turnstile.acquire()
'''

# Resets the count, then its waiters (spinning, without a lock) never see n again: they spin for ever.
SPINNING_BARRIER = '''
class ReusableBarrier:
    def __init__(self, n):
        if type(n) is not int or n < 1:
            raise ValueError("n must be a positive int")
        self.n = n
        self.count = 0
        self.mutex = threading.Lock()

    def wait(self):
        with self.mutex:
            self.count += 1
            if self.count == self.n:
                self.count = 0
                return
        while self.count != 0:
            pass
'''

READERS_FIRST_LOCK = '''
class ReadWriteLock:
    """Readers-preference (the lightswitch): correct, but a stream of readers starves a writer."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._room_empty = threading.Lock()
        self._readers = 0

    def acquire_read(self):
        with self._mutex:
            self._readers += 1
            if self._readers == 1:
                self._room_empty.acquire()

    def release_read(self):
        with self._mutex:
            self._readers -= 1
            if self._readers == 0:
                self._room_empty.release()

    def acquire_write(self):
        self._room_empty.acquire()

    def release_write(self):
        self._room_empty.release()
'''

RACY_WRITER_LOCK = '''
class ReadWriteLock:
    def __init__(self):
        self._changed = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    def acquire_read(self):
        with self._changed:
            while self._writing or self._writers_waiting:
                self._changed.wait()
            self._readers += 1

    def release_read(self):
        with self._changed:
            self._readers -= 1
            self._changed.notify_all()

    def acquire_write(self):
        with self._changed:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._changed.wait()
            self._writers_waiting -= 1
        self._writing = True          # after the lock is released: two writers can both get here

    def release_write(self):
        with self._changed:
            self._writing = False
            self._changed.notify_all()
'''

MUTEX_LOCK = '''
class ReadWriteLock:
    """One plain lock for everybody: safe, but readers never share."""

    def __init__(self):
        self._lock = threading.Lock()

    def acquire_read(self):
        self._lock.acquire()

    def release_read(self):
        self._lock.release()

    def acquire_write(self):
        self._lock.acquire()

    def release_write(self):
        self._lock.release()
'''

SEMAPHORE_RW_LOCK = '''
class Lightswitch:
    """The first one in takes the semaphore for the group, the last one out gives it back."""

    def __init__(self):
        self.count = 0
        self.mutex = threading.Lock()

    def enter(self, semaphore):
        with self.mutex:
            self.count += 1
            if self.count == 1:
                semaphore.acquire()

    def leave(self, semaphore):
        with self.mutex:
            self.count -= 1
            if self.count == 0:
                semaphore.release()

class ReadWriteLock:
    """The Little Book's writer-priority solution, all semaphores."""

    def __init__(self):
        self.readers = Lightswitch()
        self.writers = Lightswitch()
        self.no_readers = threading.Semaphore(1)
        self.no_writers = threading.Semaphore(1)

    def acquire_read(self):
        self.no_readers.acquire()
        self.readers.enter(self.no_writers)
        self.no_readers.release()

    def release_read(self):
        self.readers.leave(self.no_writers)

    def acquire_write(self):
        self.writers.enter(self.no_readers)
        self.no_writers.acquire()

    def release_write(self):
        self.no_writers.release()
        self.writers.leave(self.no_readers)
'''

SEMAPHORE_POOL = '''
import collections

class ConnectionPool:
    """Permits from a BoundedSemaphore, idle connections in a deque under a lock."""

    def __init__(self, factory, size):
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError("size must be a positive int")
        self._factory = factory
        self._permits = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle = collections.deque()

    def acquire(self, timeout=None):
        if not self._permits.acquire(timeout=timeout):
            raise TimeoutError("pool exhausted")
        with self._lock:
            if self._idle:
                return self._idle.popleft()
        try:
            return self._factory()
        except BaseException:
            self._permits.release()
            raise

    def release(self, conn):
        with self._lock:
            self._idle.append(conn)
        self._permits.release()
'''

UNBOUNDED_POOL = '''
class ConnectionPool:
    """Makes a new connection whenever none is idle: no limit."""

    def __init__(self, factory, size):
        if type(size) is not int or size < 1:
            raise ValueError("bad size")
        self._factory = factory
        self._idle = []
        self._lock = threading.Lock()

    def acquire(self, timeout=None):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._factory()

    def release(self, conn):
        with self._lock:
            self._idle.append(conn)
'''

NONE_ON_TIMEOUT_POOL = '''
class ConnectionPool:
    def __init__(self, factory, size):
        if type(size) is not int or size < 1:
            raise ValueError("bad size")
        self._factory = factory
        self._size = size
        self._idle = []
        self._made = 0
        self._returned = threading.Condition()

    def acquire(self, timeout=None):
        with self._returned:
            if not self._returned.wait_for(lambda: self._idle or self._made < self._size, timeout):
                return None           # time ran out: None instead of an exception
            if self._idle:
                return self._idle.pop()
            self._made += 1
            return self._factory()

    def release(self, conn):
        with self._returned:
            self._idle.append(conn)
            self._returned.notify()
'''

UNLOCKED_POOL = '''
class ConnectionPool:
    """Polls, and checks then acts without a lock."""

    def __init__(self, factory, size):
        if type(size) is not int or size < 1:
            raise ValueError("bad size")
        self._factory = factory
        self._size = size
        self._idle = []
        self._made = 0

    def acquire(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._idle:
                return self._idle.pop()
            if self._made < self._size:
                self._made += 1
                return self._factory()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no connection")
            time.sleep(0.001)

    def release(self, conn):
        self._idle.append(conn)
'''

# Waits without a timeout, and release forgets to notify: a waiting acquire sleeps for ever.
FORGETFUL_POOL = '''
class ConnectionPool:
    def __init__(self, factory, size):
        if type(size) is not int or size < 1:
            raise ValueError("bad size")
        self._factory = factory
        self._size = size
        self._idle = []
        self._made = 0
        self._returned = threading.Condition()

    def acquire(self, timeout=None):
        with self._returned:
            while not self._idle and self._made >= self._size:
                self._returned.wait()          # no timeout: waits for a notify ...
            if self._idle:
                return self._idle.pop()
            self._made += 1
            return self._factory()

    def release(self, conn):
        with self._returned:
            self._idle.append(conn)            # ... that never comes
'''

NO_RENDEZVOUS = "class Rendezvous:\n    def __init__(self):\n        raise NotImplementedError()"
NO_BARRIER = "class ReusableBarrier:\n    def __init__(self, n):\n        raise NotImplementedError()"
NO_RW_LOCK = "class ReadWriteLock:\n    def __init__(self):\n        raise NotImplementedError()"
NO_POOL = "class ConnectionPool:\n    def __init__(self, factory, size):\n        raise NotImplementedError()"
WRONG_PREDICTION = "FREE_PERMITS = 2"
PREDICTION_AS_EXPRESSION = "FREE_PERMITS = 2 - 2 + 3"

FIXTURES = {
    # student: (replacements, allowed scores)
    "correct": ({}, {MAX_SCORE}),
    # Right in other styles: a Condition rendezvous, the Little Book's two-turnstile barrier,
    # its all-semaphore writer-priority lock, a BoundedSemaphore pool: full marks.
    "unusual": ({"Rendezvous": CONDITION_RENDEZVOUS, "ReusableBarrier": TURNSTILE_BARRIER,
                 "ReadWriteLock": SEMAPHORE_RW_LOCK, "ConnectionPool": SEMAPHORE_POOL}, {MAX_SCORE}),
    # Both wait before they signal: every rendezvous cell fails (3); a mutex: readers_share (1).
    "deadlocking": ({"Rendezvous": WAIT_FIRST_RENDEZVOUS, "ReadWriteLock": MUTEX_LOCK}, {MAX_SCORE - 4}),
    # B never waits: the explored order fails (2), and 200 real meetings almost surely show it too
    # (1); readers first: writer_priority (1).
    "one_sided": ({"Rendezvous": ONE_SIDED_RENDEZVOUS, "ReadWriteLock": READERS_FIRST_LOCK},
                  {MAX_SCORE - 4, MAX_SCORE - 3}),
    # One turnstile: many_rounds (3) and the real threads, refused after the scheduler's plain run
    # deadlocks (1); None on a timeout: ConnectionPool_timeout (1), and the slot a failing factory
    # took is never given back: ConnectionPool_basics (1).
    "lapping": ({"ReusableBarrier": LAPPING_BARRIER, "ConnectionPool": NONE_ON_TIMEOUT_POOL}, {MAX_SCORE - 6}),
    # Spins for ever once it resets its count: every barrier cell (5), bounded (no real thread starts).
    "spinning": ({"ReusableBarrier": SPINNING_BARRIER}, {MAX_SCORE - 5}),
    # Two writers at once, found by the exploration (2); a pool without a lock, found by the
    # exploration (2) — its real threads may or may not hit the race (0 or 1 more) — that also
    # counts a failing factory's connection as made (basics, 1).
    "racy": ({"ReadWriteLock": RACY_WRITER_LOCK, "ConnectionPool": UNLOCKED_POOL}, {MAX_SCORE - 5, MAX_SCORE - 6}),
    # No limit: timeout (1), exclusive (2), real threads (1).
    "unbounded": ({"ConnectionPool": UNBOUNDED_POOL}, {MAX_SCORE - 4}),
    # release never notifies and acquire ignores its timeout: timeout (1, after the test's 5 s limit),
    # exclusive (2, a deadlock), real threads (1, left waiting), and after a failing factory the
    # next acquire waits for ever (basics, 1): bounded, the batch goes on.
    "hanging": ({"ConnectionPool": FORGETFUL_POOL}, {MAX_SCORE - 5}),
    "unattempted": ({"predict_extra_release": "raise NotImplementedError()", "Rendezvous": NO_RENDEZVOUS,
                     "ReusableBarrier": NO_BARRIER, "ReadWriteLock": NO_RW_LOCK, "ConnectionPool": NO_POOL},
                    {0.0}),
    # A wrong prediction costs its one point and nothing else.
    "wrong_prediction": ({"predict_extra_release": WRONG_PREDICTION}, {MAX_SCORE - 1}),
    # Only the prediction, right as an expression (an int all the same): its point alone.
    "prediction_only": ({"predict_extra_release": PREDICTION_AS_EXPRESSION, "Rendezvous": NO_RENDEZVOUS,
                         "ReusableBarrier": NO_BARRIER, "ReadWriteLock": NO_RW_LOCK, "ConnectionPool": NO_POOL},
                        {1.0}),
}


# The batch is graded once per module; each fixture's row is checked, and the batch's time.
graded, test_fixture_gets_its_expected_score, test_the_batch_is_graded_in_bounded_time = lesson_grading_tests(
    LESSON, FIXTURES, "--jobs", "2", max_score=MAX_SCORE, within=240, check_status=False, timeout=600)
