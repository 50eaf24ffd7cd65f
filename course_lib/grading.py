"""Helpers for the test cells of the lessons: checks that explain themselves.

A test cell should fail with a sentence a student can act on ("your function
returned 3 results, expected 5"), never with a bare ``AssertionError`` or a
hang. Everything here raises :class:`CheckFailed` (an ``AssertionError``, so
nbgrader counts it as a failed test) with such a message, and every wait is
bounded.

What it trades off: the checks compare *type and value*, not ``==`` alone,
so an object whose ``__eq__`` always answers ``True`` earns nothing; and the
time limits use threads or ``SIGALRM`` rather than killing code, so a thread
that never returns is reported, named, and left as a daemon — the grader's
own per-notebook limit is what finally ends a kernel.

Methods for test cells:
    expect(condition, message)         fail with message unless condition
    expect_equal(actual, expected, what)  same type and value, recursively
    call_with_timeout(fn, *args, timeout=...)  run fn in a thread, bounded
    time_limit(seconds)                bound a block in the main thread
    no_thread_leak(grace=...)          fail if a block leaves threads running
    no_fd_leak(grace=...)              fail if a block leaves sockets or pipes open
    read_until_closed(sock, timeout)   read a socket until the peer closes
    passed(name)                       a rendered "passed" badge
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

from .judge.integrity import TEST_FILE

__all__ = [
    "CheckFailed",
    "TimeLimitExceeded",
    "expect",
    "expect_equal",
    "call_with_timeout",
    "time_limit",
    "no_thread_leak",
    "no_fd_leak",
    "read_until_closed",
    "expect_not_built_on",
    "passed",
    "report_failures_to",
]


def _failure_reporting():
    """The pair (report, arm): where failures go, bound in closures (a judge arms it once)."""
    sink = []  # at most one callback, set by the judge before any cell runs
    getframe = sys._getframe

    def test_lines():
        """(innermost, outermost) test line on this thread's stack: where the check was made, and the
        test's own statement it was made under (the referee tells by it whether hidden checks ran first)."""
        inner = outer = None
        frame = getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == TEST_FILE:
                outer = frame.f_lineno
                inner = outer if inner is None else inner
            frame = frame.f_back
        return inner, outer

    def report(message: str) -> None:
        if sink:
            sink[0](message, *test_lines())

    def arm(callback) -> None:
        """Send every CheckFailed made from now on to ``callback(message, line, top)`` (once per process)."""
        if sink:
            raise RuntimeError("check failures are already reported elsewhere")
        sink.append(callback)

    return report, arm


_report_failure, report_failures_to = _failure_reporting()


class CheckFailed(AssertionError):
    """A check failed; the message is written for the student.

    In a judge kernel every one made while a test runs is reported to the
    grader at once, so a failure that other code catches still fails its test.
    """

    def __init__(self, *args):
        super().__init__(*args)
        _report_failure(str(args[0]) if args else "")


class TimeLimitExceeded(CheckFailed):
    """Code under test did not finish within its time limit."""


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` is true (a real ``bool``)."""
    if condition is not True and condition is not False:
        # A truthy object with a custom __bool__ must not pass by accident.
        condition = _plain_bool(condition)
    if not condition:
        raise CheckFailed(message)


def _plain_bool(value) -> bool:
    if isinstance(value, (int, float, str, bytes, list, tuple, dict, set, type(None))):
        return bool(value)
    raise CheckFailed(
        f"expected True or False, got an object of type {type(value).__name__}"
    )


def expect_equal(actual, expected, what: str = "the result") -> None:
    """Check that ``actual`` has the same type and value as ``expected``.

    Containers are compared element by element, so the message points at the
    first difference ("item 2 of the result: expected 4, got 5"). Types must
    match exactly (a subclass of ``int`` is not an ``int`` here): that is what
    stops an object whose ``__eq__`` always returns ``True``.
    """
    problem = _difference(actual, expected, what)
    if problem:
        raise CheckFailed(problem)


def _difference(actual, expected, where: str) -> str | None:
    if type(actual) is not type(expected):
        return (
            f"{where}: expected a {type(expected).__name__} like {_short(expected)}, "
            f"got a {type(actual).__name__}: {_short(actual)}"
        )
    if isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            return (
                f"{where}: expected {len(expected)} items, got {len(actual)}: "
                f"{_short(actual)}"
            )
        for index, (a, e) in enumerate(zip(actual, expected)):
            problem = _difference(a, e, f"item {index} of {where}")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            return f"{where}: missing keys {missing!r}, unexpected keys {extra!r}"
        for key in expected:
            problem = _difference(actual[key], expected[key], f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(expected, (set, frozenset)):
        if set(actual) ^ set(expected):
            return (
                f"{where}: missing {sorted(expected - actual, key=repr)!r}, "
                f"unexpected {sorted(actual - expected, key=repr)!r}"
            )
        return None
    if isinstance(expected, float):
        if not math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12):
            return f"{where}: expected {expected!r}, got {actual!r}"
        return None
    # Builtin scalars (int, str, bytes, bool, None ...): the exact-type check
    # above means this == is the builtin one, not a student's.
    if not (expected == actual):
        return f"{where}: expected {_short(expected)}, got {_short(actual)}"
    return None


def _short(value, limit: int = 120) -> str:
    try:
        text = repr(value)
    except Exception:  # a student's __repr__ may raise
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def call_with_timeout(fn, *args, timeout: float = 5.0, what: str | None = None, **kwargs):
    """Call ``fn(*args, **kwargs)`` in a daemon thread and wait at most ``timeout`` s.

    Returns what ``fn`` returned and re-raises what it raised. If it has not
    returned by then, raises :class:`TimeLimitExceeded` naming the call; the
    thread cannot be killed and is left running as a daemon.
    """
    if timeout < 0:
        raise ValueError("timeout must be non-negative")
    name = what or f"{getattr(fn, '__name__', 'your function')}()"
    outcome: dict = {}
    done = threading.Event()  # set by the worker when fn returns or raises

    def run():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, name=f"check:{name}", daemon=True)
    worker.start()
    if not done.wait(timeout):
        raise TimeLimitExceeded(
            f"{name} did not return within {timeout:g} s. Is a thread waiting for "
            "something that never happens (a lock never released, a join on a "
            "thread that never ends, a recv with no sender)?"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@contextlib.contextmanager
def time_limit(seconds: float, what: str = "this check"):
    """Bound a block running in the main thread with ``SIGALRM``.

    Only usable from the main thread (where a notebook cell runs). Code that
    blocks inside C without checking signals is interrupted when it returns.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("time_limit() works only in the main thread")

    def on_alarm(signum, frame):
        raise TimeLimitExceeded(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def no_thread_leak(grace: float = 2.0, what: str = "your code"):
    """Fail if threads started inside the block are still alive ``grace`` s after it.

    Threads are compared by identity, so threads that were running before the
    block (the kernel's own, a server started earlier) are not counted.
    """
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + grace
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    if leaked:
        names = ", ".join(sorted(t.name for t in leaked))
        raise CheckFailed(
            f"{what} left {len(leaked)} thread(s) running: {names}. "
            "Every thread you start should be joined (or stopped with an Event) "
            "before your function returns."
        )


def _open_descriptors() -> dict:
    """fd -> what it is (``socket:[inode]``, ``pipe:[inode]``, ...) for this process's sockets, pipes
    and polling objects (an epoll selector is ``anon_inode:[eventpoll]``), read from /proc/self/fd."""
    found = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found  # no /proc: nothing to compare (the check then passes)
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor, for one)
        if target.startswith(("socket:", "pipe:", "anon_inode:")):
            found[int(name)] = target
    return found


@contextlib.contextmanager
def no_fd_leak(grace: float = 1.0, what: str = "your code"):
    """Fail if sockets, pipes or selectors opened inside the block are still open ``grace`` s after it.

    Descriptors are compared by number *and* by what they are, so a number reused for another
    socket counts as new; those open before the block are not counted. Keep the objects alive
    through the check (a socket only dropped is closed by the garbage collector, not by the code).
    """
    before = _open_descriptors()
    yield
    deadline = time.monotonic() + grace
    while True:
        leaked = sorted(set(_open_descriptors().items()) - set(before.items()))
        if not leaked or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    if leaked:
        kinds = ", ".join(target.split(":")[0].replace("anon_inode", "selector") for _, target in leaked)
        raise CheckFailed(
            f"{what} left {len(leaked)} file descriptor(s) open ({kinds}). Close every socket, "
            "socket pair and selector you open once you are done with it."
        )


def expect_not_built_on(obj, kinds: tuple, message: str) -> None:
    """Fail if ``obj`` (an instance, a class or a function) can reach one of the classes ``kinds``
    or an instance of one: in its attributes, its class, or what its methods name (a global, a
    closure, ``module.Class``). The message says where, so a rule an exercise states ("not on
    queue.Queue") is checked by what the code uses, wherever it keeps it."""
    from .reachable import references

    for path, value, _ in references(obj):
        if isinstance(value, kinds) or (isinstance(value, type) and issubclass(value, kinds)):
            shown = value.__name__ if isinstance(value, type) else f"a {type(value).__name__}"
            raise CheckFailed(f"{message} (found {shown} at {path})")


def read_until_closed(sock: socket.socket, timeout: float = 5.0, limit: int = 1 << 20) -> bytes:
    """Read from ``sock`` until the peer closes; bounded in time and size."""
    deadline = time.monotonic() + timeout
    chunks = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeLimitExceeded(
                f"the other side did not close the connection within {timeout:g} s "
                f"(received so far: {_short(b''.join(chunks))})"
            )
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise CheckFailed(f"received more than {limit} bytes without the connection closing")


@dataclass
class Passed:
    """A check that passed, rendered as a green line in the notebook."""

    name: str

    def _repr_html_(self) -> str:
        return (
            '<div style="color:#1a7f37;font-weight:600">&#10004; '
            f"{self.name}: the visible checks passed "
            '<span style="font-weight:400;color:#555">(hidden tests run at grading)</span></div>'
        )

    def __repr__(self) -> str:
        return f"✔ {self.name}: the visible checks passed (hidden tests run at grading)"


def passed(name: str) -> Passed:
    """End a visible test cell with ``passed("run_all")`` to show a green tick."""
    return Passed(name)


# Checks a peer judges (a server's replies, a client's results): ``grading.peer.connect(...)``.
from . import peer  # noqa: E402  (peer imports this module lazily, for CheckFailed)
