"""Tests for course_lib.timeline: recorded intervals for known programs, and the PNG."""

import threading

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import pytest  # noqa: E402

from course_lib.timeline import Interval, Timeline  # noqa: E402

pytestmark = pytest.mark.timeout(30)


def _two_threads_and_a_lock(tl: Timeline):
    """A holds L until B has asked for it: B's wait must lie inside A's hold."""
    lock = tl.lock("L")
    a_holds = threading.Event()  # set by A once it holds L
    b_asks = threading.Event()  # set by B just before it asks for L

    def a():
        with tl.task("A's work"):
            with lock:
                a_holds.set()
                b_asks.wait(5)
                tl.sleep(0.05, "nap")  # B is now (very probably) blocked in acquire

    def b():
        a_holds.wait(5)
        with tl.task("B's work"):
            b_asks.set()
            with lock:
                pass

    threads = [threading.Thread(target=a, name="A"), threading.Thread(target=b, name="B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    return threads


def test_lock_records_wait_then_hold_in_order():
    """Does B's wait for L end when A's hold ends, and does B then hold it?"""
    with Timeline() as tl:
        _two_threads_and_a_lock(tl)
    a_hold = tl.of("A", "hold_lock")
    b_wait = tl.of("B", "wait_lock")
    b_hold = tl.of("B", "hold_lock")
    assert len(a_hold) == 1 and len(b_wait) == 1 and len(b_hold) == 1
    assert b_wait[0].start >= a_hold[0].start
    assert b_wait[0].end >= a_hold[0].end  # B got L only after A let go
    assert b_hold[0].start >= b_wait[0].end
    assert b_wait[0].duration >= 0.04  # it really waited through A's 50 ms nap
    assert {i.label for i in tl.of(kind="hold_lock")} == {"L"}


def test_intervals_have_thread_kind_label_and_relative_times():
    """Are intervals sorted, relative to the start, and nested spans deeper?"""
    with Timeline() as tl:
        _two_threads_and_a_lock(tl)
    intervals = tl.intervals
    assert all(isinstance(i, Interval) for i in intervals)
    assert [i.start for i in intervals] == sorted(i.start for i in intervals)
    assert all(0 <= i.start <= i.end <= tl.elapsed for i in intervals)
    kinds = {(i.thread, i.kind) for i in intervals}
    assert kinds == {("A", "run"), ("A", "wait_lock"), ("A", "hold_lock"), ("A", "sleep"),
                     ("B", "run"), ("B", "wait_lock"), ("B", "hold_lock")}
    nap = tl.of("A", "sleep")[0]
    assert nap.label == "nap" and nap.depth == 2  # inside A's "run" span and its hold of L
    assert tl.of("A", "hold_lock")[0].depth == 1
    assert tl.of("A", "run")[0].depth == 0
    assert tl.threads() == ["A", "B"]


def test_span_records_even_when_the_block_raises():
    """Is a span that ends in an exception still recorded?"""
    tl = Timeline().start()
    with pytest.raises(ZeroDivisionError):
        with tl.span("compute", "oops"):
            1 / 0
    assert [(i.kind, i.label) for i in tl.intervals] == [("compute", "oops")]


def test_queue_records_put_and_a_blocking_get():
    """Does a get on an empty queue record the time it waited?"""
    with Timeline() as tl:
        q = tl.queue(maxsize=1, name="q")
        getter_started = threading.Event()  # set by the consumer just before get()

        def consumer():
            getter_started.set()
            q.get(timeout=5)

        t = threading.Thread(target=consumer, name="consumer")
        t.start()
        getter_started.wait(5)
        tl.sleep(0.05)
        q.put("item")
        t.join(5)
    get = tl.of("consumer", "get")
    put = tl.of("MainThread", "put")
    assert len(get) == 1 and len(put) == 1
    assert get[0].end >= put[0].start and get[0].duration >= 0.04


def test_rlock_hold_is_outermost_and_timeout_is_labelled():
    """Is a re-entered RLock drawn as one hold, and a timed-out wait labelled?"""
    with Timeline() as tl:
        r = tl.rlock("R")
        with r:
            with r:
                pass
        plain = tl.lock("P")
        plain.acquire()
        got = []
        t = threading.Thread(target=lambda: got.append(plain.acquire(timeout=0.02)), name="T")
        t.start()
        t.join(5)
        plain.release()
    assert len(tl.of(kind="hold_lock")) == 2  # R once, P once
    assert got == [False]
    assert tl.of("T", "wait_lock")[0].label == "P (timed out)"


def test_traced_lock_works_under_a_condition():
    """Can a threading.Condition use a traced lock?"""
    with Timeline() as tl:
        cond = threading.Condition(tl.lock("C"))
        ready = []

        def waiter():
            with cond:
                cond.wait_for(lambda: ready, timeout=5)

        t = threading.Thread(target=waiter, name="W")
        t.start()
        with cond:
            ready.append(1)
            cond.notify()
        t.join(5)
    assert not t.is_alive()
    assert len(tl.of("W", "hold_lock")) >= 1


def test_thread_helper_records_the_whole_run():
    """Does timeline.thread() record its target as one run span?"""
    with Timeline() as tl:
        t = tl.thread(tl.sleep, args=(0.02,), name="sleeper", label="sleeps")
        t.start()
        t.join(5)
    run = tl.of("sleeper", "run")
    assert len(run) == 1 and run[0].label == "sleeps"
    assert run[0].start <= tl.of("sleeper", "sleep")[0].start


def test_save_png_has_the_size_asked(tmp_path):
    """Is the saved PNG non-empty and width*dpi x height*dpi pixels?"""
    with Timeline() as tl:
        _two_threads_and_a_lock(tl)
        with tl.span("custom kind", "mine"):
            pass
    path = tl.save_png(tmp_path / "t.png", width=6, height=2.5, dpi=80)
    data = (tmp_path / "t.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (200, 480)
    assert pixels[..., :3].std() > 0.05  # something was drawn, not a blank canvas


def test_plot_has_one_row_per_thread_and_a_legend():
    """Does the chart label its rows by thread and list each kind in the legend?"""
    with Timeline() as tl:
        _two_threads_and_a_lock(tl)
    fig = tl.plot(width=8)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["run", "sleep", "wait_lock", "hold_lock"]
    assert fig.get_size_inches()[0] == 8


def test_empty_timeline_still_plots():
    """Does an empty timeline draw (an empty chart) instead of failing?"""
    fig = Timeline().start().stop().plot()
    assert fig.axes


def test_a_semaphore_draws_waiting_for_a_permit_apart_from_holding_it():
    """Does a traced semaphore record a thread's wait for a permit and its hold in two kinds, of two
    colours, the second thread's wait ending only after the first gave its permit back?"""
    from course_lib.timeline import KIND_COLOURS

    first_in = threading.Event()      # set by A once it holds the only permit
    with Timeline() as tl:
        door = tl.semaphore(1, "door")

        def a():
            with door:
                first_in.set()

        def b():
            first_in.wait(timeout=5)
            with door:
                pass

        threads = [threading.Thread(target=f, name=n) for f, n in ((a, "A"), (b, "B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=5)
    (a_hold,) = tl.of("A", "hold_permit")
    (b_wait,) = tl.of("B", "wait_permit")
    assert b_wait.end >= a_hold.end and tl.of("B", "hold_permit")
    assert KIND_COLOURS["wait_permit"] != KIND_COLOURS["hold_permit"]
    with pytest.raises(ValueError):
        door.release()                          # bounded: one release too many is loud
