"""Tests for course_lib.interleave: the controlled scheduler, its search and its bounds."""

import threading
import time

import pytest

from course_lib import interleave
from course_lib.interleave import Deadlock, ScheduleError, explore, replay, stress
from tests.programs import Counter, LockedCounter, OneSlot
from tests.waiting import assert_no_new_threads

pytestmark = pytest.mark.timeout(60)


def increment(counter):
    counter.increment()


def two_increments_kept(counter):
    return counter.value == 2


class TwoLocks:
    def __init__(self):
        self.a = threading.Lock()  # taken first by forward(), second by backward()
        self.b = threading.Lock()  # taken first by backward(), second by forward()


def forward(s):
    with s.a:
        with s.b:
            pass


def backward(s):
    with s.b:
        with s.a:
            pass


@pytest.fixture(autouse=True)
def no_threads_left_and_patches_undone():
    """Every test: no thread left behind, threading and time restored."""
    before = set(threading.enumerate())
    yield
    assert_no_new_threads(before, grace=2)
    assert threading.Lock is interleave._REAL_LOCK
    assert threading.Condition is interleave._REAL_CONDITION
    assert time.sleep is interleave._REAL_SLEEP


@pytest.mark.parametrize("seed", range(10))
def test_random_search_finds_the_lost_update_for_every_seed(seed):
    """Does a seeded random search find the lost update, and does its schedule replay it?"""
    result = explore(Counter, increment, two_increments_kept, count=2, strategy="random",
                     seed=seed, max_schedules=200)
    assert result.failed and result.trace.outcome == "invariant"
    assert result.trace.state.value == 1
    again = replay(Counter, increment, result.schedule, count=2, invariant=two_increments_kept)
    assert again.outcome == "invariant" and again.state.value == 1
    assert again.schedule == result.schedule


def test_dfs_finds_the_lost_update_quickly_and_deterministically():
    """Does the exhaustive search fail on the same early schedule every time?"""
    results = [explore(Counter, increment, two_increments_kept, count=2) for _ in range(3)]
    assert all(r.failed for r in results)
    assert len({r.schedule for r in results}) == 1
    assert results[0].tried <= 5


def test_locked_counter_has_no_failing_schedule_and_says_how_many_were_tried():
    """Does the locked counter pass every schedule, with the count in the message?"""
    result = explore(LockedCounter, increment, two_increments_kept, count=2)
    assert not result.failed and result.exhausted
    assert result.tried > 10
    assert f"no schedule failed, {result.tried} tried" in str(result)


def test_replay_shows_the_read_before_the_other_write():
    """Does a line-level replay show both threads reading 0 before either writes?"""

    def worker(counter):
        seen = counter.value
        counter.value = seen + 1

    trace = replay(Counter, worker, "0 0 1 1 0 1", count=2, granularity="line",
                   observe=lambda c: {"value": c.value})
    assert trace.state.value == 1
    reads = [s for s in trace.steps if s.source.startswith("seen =")]
    assert [s.locals.get("seen") for s in reads] == [0, 0]
    assert trace.steps[-1].shared == {"value": 1}
    html = trace._repr_html_()
    assert "<table" in html and "seen = counter.value" in html
    assert "step" in str(trace)


def test_opposite_order_locks_deadlock_with_their_cycle():
    """Is the opposite-order deadlock found and reported as a named wait-for cycle?"""
    result = explore(TwoLocks, [forward, backward], names=["alice", "bob"])
    assert result.failed and result.trace.outcome == "deadlock"
    deadlock = result.deadlock
    assert isinstance(deadlock, Deadlock)
    assert deadlock.cycle == [("alice", "state.a", "state.b"), ("bob", "state.b", "state.a")]
    assert "alice holds state.a and waits for state.b" in str(deadlock)
    fig = deadlock.plot()
    assert fig.axes


def test_same_order_locks_never_deadlock():
    """Does taking the locks in one global order pass every schedule?"""
    result = explore(TwoLocks, [forward, forward], preemption_bound=None, max_schedules=5000)
    assert not result.failed and result.exhausted


def test_a_missing_notify_is_reported_as_everyone_blocked():
    """Is a wait that nobody will notify reported instead of hanging?"""

    class Box:
        def __init__(self):
            self.cond = threading.Condition()  # notified by nobody: that is the bug
            self.ready = False

    def waiter(box):
        with box.cond:
            while not box.ready:
                box.cond.wait()

    def setter(box):
        box.ready = True  # forgets notify()

    result = explore(Box, [waiter, setter])
    assert result.failed and result.trace.outcome == "deadlock"
    assert result.deadlock.cycle == []
    assert "waits for notify on state.cond" in str(result.deadlock)


def test_condition_bounded_buffer_passes_and_an_extra_get_blocks():
    """Does a correct Condition buffer pass, and a consumer wanting too much block?"""

    class Buffer(OneSlot):
        def __init__(self):
            super().__init__()
            self.got = []

    def producer(b):
        for i in range(2):
            b.put(i)

    def consumer(b):
        b.got = [b.get(), b.get()]

    ok = explore(Buffer, [producer, consumer], lambda b: b.got == [0, 1], max_schedules=300)
    assert not ok.failed and ok.tried >= 1

    def greedy(b):
        b.got = [b.get(), b.get(), b.get()]

    bad = explore(Buffer, [producer, greedy], lambda b: True)
    assert bad.failed and bad.trace.outcome == "deadlock"


def test_acquire_with_timeout_times_out_when_everyone_is_stuck():
    """Does acquire(timeout=) return False (not deadlock) so a back-off can finish?"""

    class Pair(TwoLocks):
        def __init__(self):
            super().__init__()
            self.done = 0

    def polite(first, second):
        def worker(s):
            one, two = getattr(s, first), getattr(s, second)
            while True:
                with one:
                    if two.acquire(timeout=0.1):
                        s.done += 1
                        two.release()
                        return
                time.sleep(0.01)  # back off: let the other thread go first
        return worker

    result = explore(Pair, [polite("a", "b"), polite("b", "a")], lambda s: s.done == 2,
                     max_schedules=150)
    assert not result.failed
    assert result.tried >= 1


def test_rlock_and_event_and_queue_work_under_the_scheduler():
    """Do RLock re-entry, Event and queue.Queue work cooperatively?"""
    import queue

    class State:
        def __init__(self):
            self.rlock = threading.RLock()
            self.event = threading.Event()  # set by producer after the last put
            self.q = queue.Queue(maxsize=1)
            self.out = []

    def producer(s):
        with s.rlock:
            with s.rlock:
                pass
        for i in range(2):
            s.q.put(i)
        s.event.set()

    def consumer(s):
        s.out = [s.q.get(), s.q.get()]

    def watcher(s):
        assert s.event.wait(), "Event.wait() returned False"
        s.out_when_set = len(s.out)

    result = explore(State, [producer, consumer, watcher], lambda s: s.out == [0, 1],
                     max_schedules=200)
    assert not result.failed


def test_a_spin_loop_stops_at_the_step_bound():
    """Is a thread spinning forever stopped at max_steps and unwound?"""

    def spin(state):
        while True:
            pass

    started = time.monotonic()
    trace = replay(None, [spin], max_steps=300)
    assert trace.outcome == "step_limit"
    assert len(trace.steps) == 300
    assert time.monotonic() - started < 5
    assert trace.left_behind == []


class _Flag:
    def __init__(self):
        self.up = False


def _wait_for_flag(state):
    while not state.up:
        time.sleep(0)          # gives way: the scheduler's voluntary yield


def _raise_flag(state):
    state.up = True


@pytest.mark.parametrize("options", [dict(preemption_bound=0), dict(preemption_bound=None, max_schedules=300),
                                     dict(strategy="random", max_schedules=100)])
def test_a_thread_that_sleeps_until_another_acts_is_not_a_livelock(options):
    """Does a search let the others run after a thread gives way (sleep), instead of choosing the
    sleeper again and again until the step limit while the thread it waits for never runs?"""
    result = explore(_Flag, [_wait_for_flag, _raise_flag], max_steps=200, timeout=10, **options)
    assert not result.failed, result.trace
    if options.get("strategy") != "random":
        assert result.exhausted


class _Window:
    def __init__(self):
        self.ready, self.x, self.seen = False, 0, None
        self.first, self.second = threading.Lock(), threading.Lock()


def _gives_way_then_opens_the_window(state):
    if state.ready:
        time.sleep(0)          # a real sleep(0) may go on at once
        state.x = 1
        state.x = 0


def _looks_through_the_window(state):
    state.ready = True
    state.seen = state.x


def _gives_way_then_locks_in_order(state):
    if state.ready:
        time.sleep(0)
        state.x = 1
        with state.first:
            with state.second:
                pass


def _locks_in_the_other_order_if_it_sees(state):
    state.ready = True
    if state.x == 1:
        with state.second:
            with state.first:
                pass


def test_fairness_keeps_the_schedules_where_a_thread_goes_on_right_after_its_sleep():
    """Does a search still find the race and the deadlock that need a thread to go on at once after its
    sleep(0), before the other thread's next step (fairness bounds that, it does not forbid it)?"""
    race = explore(_Window, [_gives_way_then_opens_the_window, _looks_through_the_window],
                   lambda s: s.seen != 1, preemption_bound=None, max_schedules=3000, timeout=20)
    assert race.failed and race.trace.outcome == "invariant", race
    deadlock = explore(_Window, [_gives_way_then_locks_in_order, _locks_in_the_other_order_if_it_sees], None,
                       preemption_bound=None, max_schedules=3000, timeout=20)
    assert deadlock.failed and deadlock.trace.outcome == "deadlock", deadlock


def test_threads_that_all_keep_giving_way_are_still_a_livelock():
    """Is a loop every thread takes part in, each giving way forever, still stopped as a livelock?"""
    result = explore(_Flag, [_wait_for_flag, _wait_for_flag], max_steps=200, timeout=10)
    assert result.failed and result.trace.outcome == "step_limit"
    assert {step.thread for step in result.trace.steps[-10:]} == set(result.trace.threads)


def test_explore_respects_its_schedule_and_time_bounds():
    """Does explore stop at max_schedules and at timeout?"""
    result = explore(LockedCounter, increment, lambda c: c.value == 3, count=3,
                     preemption_bound=None, max_schedules=7)
    assert result.tried == 7 and not result.exhausted
    started = time.monotonic()
    result = explore(LockedCounter, increment, lambda c: c.value == 4, count=4,
                     preemption_bound=None, max_schedules=10**6, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert not result.exhausted


def test_a_lock_made_before_the_run_and_held_outside_it_is_named_not_hung():
    """Is a worker waiting for a real lock that another thread holds told so, at once?"""
    real = threading.Lock()  # made before the run, so a real C lock
    real.acquire()           # and held by this thread, which is not in the run

    def blocked(state):
        with real:
            pass

    started = time.monotonic()
    try:
        trace = replay(None, [blocked], step_timeout=0.3)
    finally:
        real.release()
    assert trace.outcome == "deadlock"
    assert "made before the run and held by a thread outside it" in trace.message
    assert time.monotonic() - started < 3
    assert not real.locked() and type(real) is type(threading.Lock())  # put back as it was


class ClassLockCounter:
    """A counter whose lock is made once, in the class body, before any run."""
    lock = threading.Lock()

    def __init__(self):
        self.count = 0

    def add(self):
        with ClassLockCounter.lock:
            self.count += 1


class ClassNoLockCounter(ClassLockCounter):
    def add(self):
        value = self.count
        self.count = value + 1


MODULE_LOCK = threading.Lock()


def test_locks_made_before_the_run_are_cooperative_for_it():
    """Do a class-body lock and a module global both serialise workers in every schedule?"""
    result = explore(ClassLockCounter, lambda c: c.add(), count=2, invariant=lambda c: c.count == 2)
    assert not result.failed and result.exhausted, result.message
    assert type(ClassLockCounter.lock) is type(threading.Lock())  # the real lock is back

    def add_under_global(state):
        with MODULE_LOCK:
            value = state["n"]
            state["n"] = value + 1

    result = explore(lambda: {"n": 0}, add_under_global, count=2, invariant=lambda s: s["n"] == 2)
    assert not result.failed and result.exhausted, result.message
    assert type(MODULE_LOCK) is type(threading.Lock())


def test_a_class_without_the_lock_still_loses_an_update():
    """The same search still finds the race when the lock is not taken (the check can fail)."""
    result = explore(ClassNoLockCounter, lambda c: c.add(), count=2, invariant=lambda c: c.count == 2)
    assert result.failed and result.trace.outcome == "invariant"


class Account:
    def __init__(self, balance):
        self.balance = balance
        self.lock = threading.Lock()


def test_a_lock_order_that_differs_between_runs_is_still_explored():
    """Ordering locks by id() (a new order each run) is correct, and the search must not trip over it."""
    def setup():
        return [Account(50), Account(50)]

    def transfer(accounts, i, j, amount):
        first, second = sorted((accounts[i], accounts[j]), key=id)
        with first.lock:
            with second.lock:
                accounts[i].balance -= amount
                accounts[j].balance += amount

    result = explore(setup, [lambda a: transfer(a, 0, 1, 10), lambda a: transfer(a, 1, 0, 20)],
                     invariant=lambda a: sum(x.balance for x in a) == 100, granularity="sync",
                     preemption_bound=None, max_schedules=500)
    assert not result.failed, result.message


def test_worker_exceptions_fail_the_schedule():
    """Is a worker that raises reported with its exception?"""

    def boom(state):
        raise ValueError("no")

    result = explore(None, [boom])
    assert result.failed and result.trace.outcome == "error"
    assert "ValueError: no" in result.trace.message


def test_replay_refuses_a_schedule_that_asks_for_a_blocked_thread():
    """Does replay name the step where a schedule asks for a thread that cannot run?"""
    with pytest.raises(ScheduleError, match="step"):
        replay(TwoLocks, [forward, backward], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1])


def test_other_threads_get_real_locks_during_a_run():
    """Does a thread outside the run still get a real Lock while a run is active?"""
    made = []
    go = threading.Event()  # set by the worker while the run is active
    done = threading.Event()  # set by the bystander after it made its lock

    def bystander():
        go.wait(5)
        made.append(threading.Lock())
        done.set()

    def worker(state):
        go.set()
        done.wait(5)  # cooperative wait: the scheduler sees it blocked... until set

    other = threading.Thread(target=bystander)
    other.start()
    replay(None, [worker], step_timeout=2)
    other.join(5)
    assert made and not isinstance(made[0], interleave._CoLock)


def test_stress_counts_failures_within_its_bounds():
    """Does stress() run plain threads and report a failure count within its runs?"""
    result = stress(Counter, increment, two_increments_kept, count=2, runs=5)
    assert result.runs == 5 and 0 <= result.failures <= 5
    result = stress(lambda: [0], lambda s: 1 / 0, lambda s: True, count=2, runs=3)
    assert result.failures == 3


class Table:
    """Philosophers' forks; eat() notes any seat that eats without both forks."""

    def __init__(self, n):
        self.forks = [threading.Lock() for _ in range(n)]  # fork i: taken by seats i-1 and i
        self.ate = []
        self.cheated = []

    def eat(self, seat):
        n = len(self.forks)
        if not (self.forks[seat].locked() and self.forks[(seat + 1) % n].locked()):
            self.cheated.append(seat)
        self.ate.append(seat)


def left_then_right(table, seat):
    n = len(table.forks)
    with table.forks[seat]:
        with table.forks[(seat + 1) % n]:
            table.eat(seat)


def lower_fork_first(table, seat):
    n = len(table.forks)
    first, second = sorted((seat, (seat + 1) % n))
    with table.forks[first]:
        with table.forks[second]:
            table.eat(seat)


def _philosophers(strategy, n):
    return [lambda t, seat=seat: strategy(t, seat) for seat in range(n)]


def test_sync_granularity_finds_the_philosophers_cycle_and_passes_the_ordered_fix():
    """Does the lock-only search find the 3-philosopher cycle and pass lower-fork-first?"""
    everyone_ate = lambda t: sorted(t.ate) == [0, 1, 2] and not t.cheated  # noqa: E731
    naive = explore(lambda: Table(3), _philosophers(left_then_right, 3), everyone_ate,
                    granularity="sync", preemption_bound=1)
    assert naive.failed and len(naive.deadlock.cycle) == 3
    fixed = explore(lambda: Table(3), _philosophers(lower_fork_first, 3), everyone_ate,
                    granularity="sync", preemption_bound=2)
    assert not fixed.failed and fixed.exhausted and fixed.tried > 50


def test_a_schedule_survives_its_compact_text_form():
    """Does compact() -> parse_schedule() give the schedule back, and replay accept it?"""
    result = explore(Counter, increment, two_increments_kept, count=2)
    text = interleave.compact(result.schedule)
    assert "x" in text and interleave.parse_schedule(text) == list(result.schedule)
    assert replay(Counter, increment, text, count=2).state.value == 1
    assert text in result.message


def test_a_trace_draws_as_a_timeline_and_lists_its_steps():
    """Does a trace become a step timeline (blocked steps as waits) and a table of dicts?"""
    result = explore(TwoLocks, [forward, backward], granularity="sync")
    tl = result.trace.to_timeline()
    assert tl.xlabel == "step"
    assert [i.kind for i in tl.intervals].count("wait_lock") == 2
    assert len(tl.intervals) == len(result.trace.steps)
    rows = result.trace.table()
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["thread"] for r in rows} == {"T0", "T1"}
    assert "deadlock" in str(result.trace)


def test_a_thread_blocked_outside_the_scheduler_ends_the_run_as_stuck():
    """Does a worker waiting where the scheduler cannot see (a socket) end the run as "stuck" after
    step_timeout, naming its step, while the other threads are unwound, and does the run leave no
    thread behind once the socket is answered?"""
    import select
    import socket

    reader, writer = socket.socketpair()

    def waits_on_a_socket(state):
        state["asked"] = True
        select.select([reader], [], [], 10)  # untraced C: the scheduler never hears from it

    def other(state):
        state["other"] = True

    before = set(threading.enumerate())
    try:
        started = time.monotonic()
        trace = replay(dict, [waits_on_a_socket, other], step_timeout=0.3, timeout=10)
        took = time.monotonic() - started
    finally:
        writer.send(b"x")  # lets the stuck worker return, so that it ends
    assert trace.outcome == "stuck", trace.message
    assert trace.failed and "T0 did not reach its next step within 0.3 s" in trace.message
    assert trace.steps[-1].thread == "T0" and trace.steps[-1].event == "stuck"
    assert 0.3 <= took < 8, took
    assert trace.state.get("other") is None  # the run ended there: T1 never ran its body
    assert_no_new_threads(before)
    reader.close()
    writer.close()
