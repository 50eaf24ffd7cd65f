"""Bounded waits the tests share: poll a condition with a deadline; no thread, fd or socket left behind."""

from __future__ import annotations

import contextlib
import threading
import time

__all__ = ["wait_until", "threads_now", "new_threads", "assert_no_new_threads", "nothing_left_behind",
           "judge_kernels"]


def wait_until(condition, timeout: float = 5.0, interval: float = 0.01):
    """Poll ``condition`` until it is true or ``timeout`` s pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def threads_now() -> set[threading.Thread]:
    return set(threading.enumerate())


def new_threads(before: set[threading.Thread], named: str = "") -> list[threading.Thread]:
    """Live threads not in ``before`` (whose name contains ``named``, if given)."""
    return [t for t in threading.enumerate() if t not in before and t.is_alive() and named in t.name]


def assert_no_new_threads(before: set[threading.Thread], grace: float = 3.0, named: str = "") -> None:
    """Every thread started since ``before`` ends within ``grace`` seconds."""
    wait_until(lambda: not new_threads(before, named), timeout=grace)
    left = new_threads(before, named)
    assert not left, f"threads left running: {[t.name for t in left]}"


def _fds_and_sockets(kind: str) -> tuple[int, int]:
    import psutil

    proc = psutil.Process()
    return proc.num_fds(), len(proc.net_connections(kind=kind))


@contextlib.contextmanager
def nothing_left_behind(kind: str = "inet"):
    """After the block: every server of the kernel stopped, no new thread, no more fds or sockets."""
    from course_lib import servers

    servers.stop_all(timeout=2.0)
    before_threads = threads_now()
    before = _fds_and_sockets(kind)
    yield
    servers.stop_all(timeout=2.0)
    assert_no_new_threads(before_threads)
    no_more = lambda: all(now <= then for now, then in zip(_fds_and_sockets(kind), before))  # noqa: E731
    assert wait_until(no_more, timeout=3.0), f"fds/sockets before {before}, after {_fds_and_sockets(kind)}"


def judge_kernels() -> set[int]:
    """Judge kernels still running below this process (an ended one waiting to be reaped is not)."""
    import psutil

    found = set()
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "course_lib.judge" in " ".join(process.cmdline()):
                found.add(process.pid)
        except psutil.Error:
            continue
    return found
