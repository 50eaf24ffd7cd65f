"""Small concurrent programs the scheduler's tests and benchmarks share (benchmarks/bench_interleave.py)."""

import threading

__all__ = ["Counter", "LockedCounter"]


class Counter:
    """The classic unsafe counter: += is a read, an add and a write."""

    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1


class LockedCounter:
    def __init__(self):
        self.value = 0
        self.lock = threading.Lock()  # taken by increment() around the read-add-write

    def increment(self):
        with self.lock:
            self.value += 1
