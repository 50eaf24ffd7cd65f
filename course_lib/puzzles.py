"""Readers and a writer on a logical clock: who waits for a readers-writer lock, drawn every time the same.

Writer starvation is a story about time: readers keep arriving, each while
another one still reads, so the lock never becomes free for the writer.
With real threads and real sleeps the picture changes from run to run (and
on a busy machine the stream of readers may thin out by itself). Here the
threads run under the controlled scheduler of :mod:`course_lib.interleave`
and time is a *clock thread* that counts ticks: in every tick each thread
that can run takes one turn, so "reader 3 arrives at tick 6 and reads for 5
ticks" means exactly that, on any machine. The same lock class always gives
the same chart.

What it trades off: ticks are not seconds (the x-axis says so), and a
thread blocked inside the lock takes no turns, which is the point: it waits.
A lock that spins without ever sleeping or blocking runs at most
``max_steps`` steps and the run is reported as cut short.

Functions for the caller::

    reader_stream(make_lock, readers=6, arrive_every=2, hold=5,
                  writer_at=2, write_for=3) -> StreamRun
    run.timeline.plot(...)     a Gantt chart: wait (red), read, write
    run.entries                [(tick, who)] in the order they got the lock
    run.writer_wait            ticks the writer waited (None without a writer)
    run.max_readers            most readers holding the lock at once
    run.overtook               readers that asked after the writer and got in before it

``make_lock()`` must return an object with ``acquire_read``, ``release_read``,
``acquire_write`` and ``release_write`` (as the lesson's ``ReadWriteLock``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .timeline import Timeline

__all__ = ["StreamRun", "reader_stream"]


@dataclass
class StreamRun:
    """What happened in one run of :func:`reader_stream`."""

    timeline: Timeline
    entries: list = field(default_factory=list)   # (tick, who) in the order they got the lock
    asked: dict = field(default_factory=dict)     # who -> tick it asked for the lock
    writer_wait: int | None = None
    max_readers: int = 0
    overtook: list = field(default_factory=list)  # readers that asked after the writer, in before it
    problems: list = field(default_factory=list)  # exclusion broken: a writer with anyone else
    outcome: str = "finished"
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.outcome == "finished"

    def __repr__(self) -> str:
        if not self.finished:
            return f"<StreamRun {self.outcome}: {self.message}>"
        writer = "no writer" if self.writer_wait is None else f"the writer waited {self.writer_wait} ticks"
        return (f"<StreamRun {writer}; at most {self.max_readers} readers at once; "
                f"readers that overtook the waiting writer: {self.overtook or 'none'}>")


class _Stream:
    """The shared state of one run (made in setup, so the lock inside is cooperative)."""

    def __init__(self, lock, threads: int):
        self.lock = lock
        self.now = 0            # the clock: written by the clock thread only
        self.left = threads     # threads (clock excluded) still running; each decrements its own exit
        self.records = []       # (who, kind, start, end): list.append from one thread at a time
        self.entries = []
        self.asked = {}
        self.readers_in = 0
        self.writers_in = 0
        self.max_readers = 0
        self.problems = []


def _wait_until(s: _Stream, tick: int) -> None:
    while s.now < tick:
        time.sleep(0)  # under the scheduler: one turn, then the others go


def reader_stream(make_lock: Callable[[], object], *, readers: int = 6, arrive_every: int = 2,
                  hold: int = 5, writer_at: int | None = 2, write_for: int = 3,
                  max_ticks: int = 300, max_steps: int = 30000, timeout: float = 8.0) -> StreamRun:
    """Readers arriving every ``arrive_every`` ticks, each reading ``hold`` ticks; one writer.

    Reader ``i`` asks for the lock at tick ``1 + i * arrive_every``; the writer
    asks at ``writer_at`` (None: no writer) and writes for ``write_for``
    ticks. Deterministic: the run is replayed with the scheduler's default
    choices, and time is the clock thread's count of rounds. The clock stops
    after ``max_ticks``: a thread still waiting for the lock then is reported
    (``run.outcome == "deadlock"``), as is a run over ``max_steps`` steps.
    """
    from . import interleave

    # The clock is the last thread: the scheduler's default choices go round the threads in
    # order, so it ticks once every thread that can run has had its turn.
    names = (["writer"] if writer_at is not None else []) + [f"reader {i}" for i in range(readers)] + ["clock"]

    def setup():
        return _Stream(make_lock(), len(names) - 1)

    def clock(s):
        while s.left and s.now < max_ticks:
            s.now += 1
            time.sleep(0)

    def enter(s, who, kind):
        if kind == "read":
            s.readers_in += 1
            s.max_readers = max(s.max_readers, s.readers_in)
        else:
            s.writers_in += 1
        if s.writers_in and (s.writers_in > 1 or s.readers_in):
            s.problems.append(f"tick {s.now}: {who} got in while {s.readers_in} readers and "
                              f"{s.writers_in} writers held the lock")
        s.entries.append((s.now, who))

    def leave(kind, s):
        if kind == "read":
            s.readers_in -= 1
        else:
            s.writers_in -= 1

    def user(who, kind, at, length):
        def body(s):
            try:
                _wait_until(s, at)
                asked = s.asked[who] = s.now
                (s.lock.acquire_read if kind == "read" else s.lock.acquire_write)()
                got = s.now
                s.records.append((who, "wait", asked, got))
                enter(s, who, kind)
                _wait_until(s, got + length)
                leave(kind, s)
                s.records.append((who, kind, got, s.now))
                (s.lock.release_read if kind == "read" else s.lock.release_write)()
            finally:
                s.left -= 1
        return body

    workers = [user("writer", "write", writer_at, write_for)] if writer_at is not None else []
    workers += [user(f"reader {i}", "read", 1 + i * arrive_every, hold) for i in range(readers)]
    workers.append(clock)
    trace = interleave.replay(setup, workers, names=names, granularity="line",
                              max_steps=max_steps, timeout=timeout, step_timeout=2.0)
    s: _Stream = trace.state

    ticks = [0]
    timeline = Timeline(clock=lambda: ticks[0])
    timeline.xlabel = "clock ticks (each thread that can run takes one turn a tick)"
    timeline.start()
    for who, kind, start, end in sorted(s.records, key=lambda r: names.index(r[0])):
        if kind == "wait" and end == start:
            continue  # got the lock at once: nothing to draw
        timeline.record("wait_lock" if kind == "wait" else kind, start, end, thread=who,
                        label="waits" if kind == "wait" else kind)
    ticks[0] = max([end for *_, end in s.records] + [1])
    timeline.stop()

    run = StreamRun(timeline=timeline, entries=list(s.entries), asked=dict(s.asked),
                    max_readers=s.max_readers, problems=list(s.problems))
    if trace.outcome != "finished":
        run.outcome, run.message = trace.outcome, trace.message
    got = {who: tick for tick, who in s.entries}
    if writer_at is not None and "writer" in got:
        run.writer_wait = got["writer"] - s.asked["writer"]
        order = [who for _, who in s.entries]
        writer_asked = s.asked["writer"]
        run.overtook = [who for who in order[:order.index("writer")]
                        if who != "writer" and s.asked[who] > writer_asked]
    return run
