"""Bounded waits the tests share: poll a condition with a deadline; no thread left behind."""

from __future__ import annotations

import threading
import time

__all__ = ["wait_until", "threads_now", "new_threads", "assert_no_new_threads"]


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
