"""Tests for course_lib.puzzles: the stream of readers on a logical clock, for locks of known behaviour."""

import threading

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from course_lib import puzzles  # noqa: E402
from course_lib.timeline import Timeline  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class ReadersFirst:
    """The lightswitch: readers share, a writer is alone, readers never wait for a waiting writer."""

    def __init__(self):
        self.mutex = threading.Lock()       # guards readers
        self.room_empty = threading.Lock()  # held by the writer or by the readers as a group
        self.readers = 0

    def acquire_read(self):
        with self.mutex:
            self.readers += 1
            if self.readers == 1:
                self.room_empty.acquire()

    def release_read(self):
        with self.mutex:
            self.readers -= 1
            if self.readers == 0:
                self.room_empty.release()

    def acquire_write(self):
        self.room_empty.acquire()

    def release_write(self):
        self.room_empty.release()


class WriterFirst:
    """Readers wait while a writer writes or waits."""

    def __init__(self):
        self.changed = threading.Condition()  # notified (all) when anyone leaves
        self.readers = 0
        self.writing = False
        self.waiting = 0

    def acquire_read(self):
        with self.changed:
            while self.writing or self.waiting:
                self.changed.wait()
            self.readers += 1

    def release_read(self):
        with self.changed:
            self.readers -= 1
            self.changed.notify_all()

    def acquire_write(self):
        with self.changed:
            self.waiting += 1
            while self.writing or self.readers:
                self.changed.wait()
            self.waiting -= 1
            self.writing = True

    def release_write(self):
        with self.changed:
            self.writing = False
            self.changed.notify_all()


class Mutex:
    """One plain lock for everybody."""

    def __init__(self):
        self.lock = threading.Lock()  # held by whoever reads or writes

    def acquire_read(self):
        self.lock.acquire()

    def release_read(self):
        self.lock.release()

    acquire_write, release_write = acquire_read, release_read


class NoExclusion:
    """Lets everyone in: a writer is in with readers."""

    def acquire_read(self):
        pass

    release_read = acquire_write = release_write = acquire_read


class NeverReleases(Mutex):
    """A writer that never lets go: readers after it wait for ever."""

    def release_write(self):
        pass


def test_readers_first_starves_the_writer_and_every_later_reader_overtakes_it():
    """Does the writer wait for the whole stream, with every reader that asked after it going first?"""
    run = puzzles.reader_stream(ReadersFirst, readers=6)
    assert run.finished
    assert run.overtook == [f"reader {i}" for i in range(1, 6)]
    assert [who for _, who in run.entries][-1] == "writer"
    assert run.writer_wait >= 10 and run.max_readers >= 2 and not run.problems


def test_writer_priority_lets_the_writer_in_after_the_readers_already_in():
    """Does a writer-priority lock let the writer in once reader 0 leaves, before the later readers?"""
    run = puzzles.reader_stream(WriterFirst, readers=6)
    assert run.finished and not run.overtook and not run.problems
    assert [who for _, who in run.entries][:2] == ["reader 0", "writer"]
    assert run.writer_wait < puzzles.reader_stream(ReadersFirst, readers=6).writer_wait


def test_the_run_is_the_same_every_time():
    """Is the stream deterministic: the same entries, waits and chart intervals on every run?"""
    runs = [puzzles.reader_stream(ReadersFirst, readers=4) for _ in range(3)]
    assert len({tuple(r.entries) for r in runs}) == 1
    assert len({tuple(r.timeline.intervals) for r in runs}) == 1


def test_readers_arrive_on_their_ticks():
    """Does reader i ask at tick 1 + i * arrive_every, and the writer at writer_at?"""
    run = puzzles.reader_stream(WriterFirst, readers=4, arrive_every=3, writer_at=5)
    assert run.asked == {"writer": 5, "reader 0": 1, "reader 1": 4, "reader 2": 7, "reader 3": 10}


def test_without_a_writer_readers_share_unless_the_lock_is_a_mutex():
    """Is max_readers the most readers in at once: 3 with sharing, 1 with a mutex?"""
    assert puzzles.reader_stream(WriterFirst, readers=4, writer_at=None).max_readers == 3
    shared = puzzles.reader_stream(Mutex, readers=4, writer_at=None)
    assert shared.finished and shared.max_readers == 1 and shared.writer_wait is None


def test_a_writer_in_with_readers_is_reported():
    """Does a lock that excludes nobody show up in problems?"""
    run = puzzles.reader_stream(NoExclusion, readers=3)
    assert run.finished and run.problems and "writer" in run.problems[0]


def test_a_lock_that_is_never_released_ends_as_a_deadlock_not_a_hang():
    """Does a writer that never releases end the run (bounded) with the readers reported waiting?"""
    run = puzzles.reader_stream(NeverReleases, readers=3, max_ticks=60)
    assert not run.finished and run.outcome == "deadlock"
    assert "deadlock" in repr(run)


def test_the_timeline_draws_waits_reads_and_the_write_in_ticks():
    """Does the chart have one row per thread that did something, and the kinds wait/read/write?"""
    run = puzzles.reader_stream(ReadersFirst, readers=3)
    assert isinstance(run.timeline, Timeline)
    assert set(run.timeline.threads()) == {"writer", "reader 0", "reader 1", "reader 2"}
    assert {i.kind for i in run.timeline.intervals} == {"wait_lock", "read", "write"}
    assert "ticks" in run.timeline.xlabel
    figure = run.timeline.plot(width=6)
    assert figure.axes
