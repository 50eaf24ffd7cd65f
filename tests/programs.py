"""Small concurrent programs the scheduler's tests and benchmarks share (benchmarks/bench_interleave.py)."""

import collections
import threading

__all__ = ["Counter", "LockedCounter", "OneSlot"]


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


class OneSlot:
    """A 1-slot buffer on one Condition per reason to wait (lesson 04's solution, shortened)."""

    def __init__(self):
        self.items = collections.deque()
        self.lock = threading.Lock()
        self.not_full = threading.Condition(self.lock)
        self.not_empty = threading.Condition(self.lock)

    def put(self, item):
        with self.not_full:
            while self.items:
                self.not_full.wait()
            self.items.append(item)
            self.not_empty.notify()

    def get(self):
        with self.not_empty:
            while not self.items:
                self.not_empty.wait()
            item = self.items.popleft()
            self.not_full.notify()
            return item
