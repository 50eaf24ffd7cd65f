"""Do the test-cell helpers catch wrong answers, explain them, and never hang?"""

import socket
import threading
import time

import pytest

from course_lib import grading
from course_lib.grading import CheckFailed, TimeLimitExceeded


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class SneakyInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


def test_expect_equal_rejects_an_object_whose_eq_always_says_true():
    """Does an always-True __eq__ earn nothing?"""
    with pytest.raises(CheckFailed, match="expected a int"):
        grading.expect_equal(AlwaysEqual(), 4, "double(2)")
    with pytest.raises(CheckFailed, match="expected a int"):
        grading.expect_equal(SneakyInt(5), 4, "double(2)")
    with pytest.raises(CheckFailed):
        grading.expect_equal([AlwaysEqual()], [4], "the list")


def test_expect_equal_points_at_the_first_difference():
    """Does the message say which item differs and how?"""
    with pytest.raises(CheckFailed, match=r"item 2 of results: expected 9, got 8"):
        grading.expect_equal([1, 4, 8], [1, 4, 9], "results")
    with pytest.raises(CheckFailed, match="expected 3 items, got 2"):
        grading.expect_equal([1, 4], [1, 4, 9], "results")
    with pytest.raises(CheckFailed, match="missing keys"):
        grading.expect_equal({"a": 1}, {"a": 1, "b": 2}, "counts")


def test_expect_equal_accepts_equal_values():
    """Do equal values of the same type pass, floats within rounding?"""
    grading.expect_equal([1, "a", (2.0, None)], [1, "a", (2.0, None)])
    grading.expect_equal(0.1 + 0.2, 0.3)
    grading.expect_equal({1, 2}, {2, 1})


def test_expect_refuses_a_truthy_object():
    """Can a custom __bool__ pass a check by accident?"""
    class Truthy:
        def __bool__(self):
            return True

    with pytest.raises(CheckFailed, match="expected True or False"):
        grading.expect(Truthy(), "should not pass")
    with pytest.raises(CheckFailed, match="the message"):
        grading.expect(False, "the message")


def test_call_with_timeout_returns_value_and_reraises_errors():
    """Does it pass results and exceptions through unchanged?"""
    assert grading.call_with_timeout(lambda x: x * 2, 21, timeout=2) == 42
    with pytest.raises(ZeroDivisionError):
        grading.call_with_timeout(lambda: 1 / 0, timeout=2)


def test_call_with_timeout_reports_a_call_that_never_returns():
    """Is a hanging call bounded and named, and is the worker a daemon?"""
    release = threading.Event()  # set by this test to let the stuck call end
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match="stuck\\(\\) did not return within 0.2 s"):
        grading.call_with_timeout(release.wait, timeout=0.2, what="stuck()")
    assert time.monotonic() - started < 2
    stuck = [t for t in threading.enumerate() if t.name == "check:stuck()"]
    assert stuck and all(t.daemon for t in stuck)
    release.set()
    for t in stuck:
        t.join(2)


def test_time_limit_interrupts_the_main_thread():
    """Does time_limit stop a busy loop in the main thread?"""
    with pytest.raises(TimeLimitExceeded, match="the loop did not finish"):
        with grading.time_limit(0.2, "the loop"):
            while True:
                pass


def test_no_thread_leak_names_the_leaked_thread():
    """Is a thread left running reported by name, and a joined one not?"""
    stop = threading.Event()  # set by the test to end the leaked thread
    with pytest.raises(CheckFailed, match="left 1 thread\\(s\\) running: leaky"):
        with grading.no_thread_leak(grace=0.2):
            threading.Thread(target=stop.wait, name="leaky", daemon=True).start()
    stop.set()
    with grading.no_thread_leak(grace=1):
        t = threading.Thread(target=lambda: None, name="tidy")
        t.start()
        t.join()


def test_read_until_closed_collects_everything_and_is_bounded():
    """Does it read split sends to the end, and give up on a silent peer?"""
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"hel")
        b.sendall(b"lo\r\n")
        b.shutdown(socket.SHUT_WR)
        assert grading.read_until_closed(a, timeout=2) == b"hello\r\n"
    c, d = socket.socketpair()
    with c, d:
        d.sendall(b"partial")
        with pytest.raises(TimeLimitExceeded, match="received so far: b'partial'"):
            grading.read_until_closed(c, timeout=0.2)


def test_passed_renders_for_the_notebook():
    """Does a passed check say that hidden tests are still to come?"""
    badge = grading.passed("run_all_order")
    assert "hidden tests run at grading" in badge._repr_html_()
    assert "run_all_order" in repr(badge)
