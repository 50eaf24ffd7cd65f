"""Record what threads do, and draw it as a Gantt chart.

A :class:`Timeline` is a list of intervals — *thread T was doing KIND (with
LABEL) from START to END seconds* — that any thread appends to while a demo
runs, and that :meth:`Timeline.plot` draws with one row per thread and time
on the x-axis. The lessons use it to make the invisible visible: three
sleeping threads overlap, a thread waits for a lock another one holds, a
consumer waits on an empty queue.

What it models and what it trades off:

* Recording is cheap on purpose (two ``time.perf_counter()`` calls and one
  ``list.append``, which is atomic under the GIL, so no lock of our own that
  would change the very timing we are showing). The price: intervals are
  what the threads *say* they do. Nothing is sampled; time spent outside a
  ``span`` is simply not drawn.
* Kinds are free strings; the built-in ones (``run``, ``sleep``,
  ``wait_lock``, ``hold_lock``, ``wait_permit``, ``hold_permit``, ``put``,
  ``get``) get fixed colours and a fixed legend order — waiting and holding
  always in different colours — any other kind gets the next colour of a palette.
* Spans may nest (a thread holds a lock while it sleeps). Nested spans are
  drawn on top of their parent as thinner bars, so both stay visible.
* Times are relative to :meth:`Timeline.start` (entering the ``with``
  block), in seconds.

Methods for the caller::

    with Timeline() as tl:                  # start the clock
        with tl.span("run", "task A"):      # from any thread
            tl.sleep(0.1)                   # a recorded time.sleep
        lock = tl.lock("L")                 # acquire records wait_lock, then hold_lock
        door = tl.semaphore(3, "door")      # acquire records wait_permit, then hold_permit
        q = tl.queue(maxsize=2)             # put/get record their (blocking) time
        t = tl.thread(work, args=(1,))      # a Thread whose whole run is a "run" span
    tl.intervals                            # list[Interval], sorted by start
    tl.plot()                               # a matplotlib Figure
    tl.save_png("timeline.png", width=8, height=3)
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

__all__ = ["Interval", "Timeline", "TracedLock", "TracedSemaphore", "TracedQueue", "KIND_COLOURS",
           "new_figure"]

#: Colour of each built-in kind, in the order the legend lists them.
KIND_COLOURS = {
    "run": "#6baed6",
    "sleep": "#bdbdbd",
    "wait_lock": "#ef3b2c",
    "hold_lock": "#41ab5d",
    "wait_permit": "#f768a1",
    "hold_permit": "#1c9099",
    "put": "#fd8d3c",
    "get": "#807dba",
}
_EXTRA_COLOURS = ["#e7ba52", "#17becf", "#e377c2", "#8c564b", "#bcbd22", "#393b79"]


@dataclass(frozen=True)
class Interval:
    """One thing one thread did: ``kind`` (and ``label``) from ``start`` to ``end`` s."""

    thread: str
    kind: str
    label: str | None
    start: float
    end: float
    depth: int = 0  # how many spans of the same thread were open around this one

    @property
    def duration(self) -> float:
        return self.end - self.start


class Timeline:
    """A recorder of thread activity; see the module docstring for the tour."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self._t0 = clock()
        self._t_end: float | None = None
        self._records: list[Interval] = []  # list.append is atomic under the GIL
        self._depth = threading.local()  # per-thread count of open spans
        self._extra_colours: dict[str, str] = {}
        self.xlabel = "time since start (s)"  # what the chart's x-axis measures

    # ---- the clock -----------------------------------------------------
    def start(self) -> "Timeline":
        """Forget what was recorded and restart the clock at 0."""
        self._records = []
        self._t0 = self._clock()
        self._t_end = None
        return self

    def stop(self) -> "Timeline":
        """Mark the end of the demo (the chart's right edge)."""
        self._t_end = self._clock() - self._t0
        return self

    def __enter__(self) -> "Timeline":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def now(self) -> float:
        """Seconds since the timeline started."""
        return self._clock() - self._t0

    @property
    def elapsed(self) -> float:
        """Seconds from start to stop (or to now, while still running)."""
        return self._t_end if self._t_end is not None else self.now()

    # ---- recording -----------------------------------------------------
    def record(self, kind: str, start: float, end: float, label: str | None = None,
               thread: str | None = None, depth: int = 0) -> Interval:
        """Add an interval measured by the caller (times relative to the start)."""
        if end < start:
            raise ValueError(f"an interval cannot end ({end}) before it starts ({start})")
        interval = Interval(thread or threading.current_thread().name, kind, label,
                            start, end, depth)
        self._records.append(interval)
        return interval

    @contextlib.contextmanager
    def span(self, kind: str, label: str | None = None) -> Iterator[None]:
        """Record the time the ``with`` block takes as ``kind`` for the current thread.

        The interval is recorded even if the block raises, so a crash still
        shows how long the thread worked before it.
        """
        depth = getattr(self._depth, "value", 0)
        self._depth.value = depth + 1
        start = self._clock()
        try:
            yield
        finally:
            end = self._clock()
            self._depth.value = depth
            self._records.append(Interval(threading.current_thread().name, kind, label,
                                          start - self._t0, end - self._t0, depth))

    def task(self, label: str | None = None):
        """``span("run", label)``: the thread is working on something."""
        return self.span("run", label)

    def sleep(self, seconds: float, label: str | None = None) -> None:
        """``time.sleep(seconds)``, recorded as a ``sleep`` span."""
        with self.span("sleep", label):
            time.sleep(seconds)

    def lock(self, name: str = "lock") -> "TracedLock":
        """A ``threading.Lock`` look-alike that records ``wait_lock`` then ``hold_lock``."""
        return TracedLock(self, name, reentrant=False)

    def rlock(self, name: str = "rlock") -> "TracedLock":
        """An ``RLock`` look-alike; the hold is drawn from the outermost acquire to release."""
        return TracedLock(self, name, reentrant=True)

    def semaphore(self, value: int = 1, name: str = "semaphore", bounded: bool = True) -> "TracedSemaphore":
        """A (bounded) ``threading.Semaphore`` look-alike: ``wait_permit`` while it waits, then ``hold_permit``."""
        return TracedSemaphore(self, value, name, bounded=bounded)

    def queue(self, maxsize: int = 0, name: str = "queue") -> "TracedQueue":
        """A ``queue.Queue`` whose ``put``/``get`` record the time they take (waits included)."""
        return TracedQueue(self, maxsize=maxsize, name=name)

    def thread(self, target: Callable, args: tuple = (), kwargs: dict | None = None,
               name: str | None = None, label: str | None = None,
               daemon: bool = True) -> threading.Thread:
        """A (not yet started) Thread whose whole ``target`` call is a ``run`` span."""
        kwargs = kwargs or {}

        def run():
            with self.span("run", label):
                target(*args, **kwargs)

        return threading.Thread(target=run, name=name, daemon=daemon)

    # ---- reading -------------------------------------------------------
    @property
    def intervals(self) -> list[Interval]:
        """Every recorded interval, sorted by start time (then thread)."""
        return sorted(self._records, key=lambda i: (i.start, i.depth, i.thread))

    def threads(self) -> list[str]:
        """Thread names in order of their first recorded interval (the chart's rows)."""
        seen: dict[str, None] = {}
        for interval in self.intervals:
            seen.setdefault(interval.thread, None)
        return list(seen)

    def of(self, thread: str | None = None, kind: str | None = None) -> list[Interval]:
        """The intervals of one thread and/or one kind."""
        return [i for i in self.intervals
                if (thread is None or i.thread == thread) and (kind is None or i.kind == kind)]

    def total(self, kind: str, thread: str | None = None) -> float:
        """Sum of durations of ``kind`` (in one thread, or all)."""
        return sum(i.duration for i in self.of(thread, kind))

    def colour(self, kind: str) -> str:
        if kind in KIND_COLOURS:
            return KIND_COLOURS[kind]
        if kind not in self._extra_colours:
            self._extra_colours[kind] = _EXTRA_COLOURS[len(self._extra_colours) % len(_EXTRA_COLOURS)]
        return self._extra_colours[kind]

    # ---- drawing -------------------------------------------------------
    def plot(self, ax=None, width: float = 9.0, height: float | None = None,
             title: str | None = None, labels: bool = True):
        """Draw a Gantt chart and return its matplotlib ``Figure``.

        One row per thread (first to appear at the top), time in seconds on
        x, one colour per kind with a legend. Bars wide enough to hold text
        show their label. With ``ax`` the chart is drawn there; otherwise a
        new Figure of ``width`` x ``height`` inches is made *without* pyplot,
        so a notebook shows it once (as the cell's value) and nothing stays
        open in pyplot's registry.
        """
        from matplotlib.patches import Patch

        intervals = self.intervals
        rows = self.threads()
        if ax is None:
            height = height if height is not None else 1.2 + 0.55 * max(1, len(rows))
            fig = new_figure(width, height)
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        right = max([self.elapsed] + [i.end for i in intervals]) if intervals else self.elapsed
        right = right if right > 0 else 1.0
        row_of = {name: index for index, name in enumerate(rows)}
        kinds_seen: dict[str, None] = {}
        covered = _covered_by_deeper(intervals)
        # Width of the plotting area in points (about 80 % of the figure),
        # to decide how much of a label fits in its bar.
        bar_points = fig.get_size_inches()[0] * 72 * 0.8
        for interval in sorted(intervals, key=lambda i: (i.depth, i.start)):
            kinds_seen.setdefault(interval.kind, None)
            bar_height = 0.7 * (0.72 ** interval.depth)
            y = row_of[interval.thread]
            # A zero-length interval would vanish: give it a hairline width.
            bar_width = max(interval.duration, right / 800)
            ax.barh(y, bar_width, left=interval.start, height=bar_height,
                    color=self.colour(interval.kind), edgecolor="white", linewidth=0.6,
                    zorder=2 + interval.depth)
            if labels and interval.label and id(interval) not in covered:
                text = _fit(interval.label, interval.duration / (right * 1.02) * bar_points)
                if text:
                    ax.text(interval.start + interval.duration / 2, y, text,
                            ha="center", va="center", fontsize=8, clip_on=True,
                            zorder=10 + interval.depth)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_ylim(len(rows) - 0.5 if rows else 0.5, -0.5)
        ax.set_xlim(0, right * 1.02)
        ax.set_xlabel(self.xlabel)
        ax.grid(axis="x", alpha=0.3, zorder=0)
        ordered = [k for k in KIND_COLOURS if k in kinds_seen] + \
                  [k for k in kinds_seen if k not in KIND_COLOURS]
        if ordered:
            handles = [Patch(color=self.colour(k), label=k) for k in ordered]
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                      fontsize=8, frameon=False)
        if title:
            ax.set_title(title)
        return fig

    def save_png(self, path, width: float = 9.0, height: float | None = None,
                 dpi: int = 100, **plot_options) -> str:
        """Draw the chart into a PNG of ``width*dpi`` x ``height*dpi`` pixels; return the path."""
        fig = self.plot(width=width, height=height, **plot_options)
        fig.savefig(path, dpi=dpi, format="png")
        return str(path)

    def __repr__(self) -> str:
        return (f"<Timeline {len(self._records)} intervals, {len(self.threads())} threads, "
                f"{self.elapsed:.3f} s>")


def new_figure(width: float, height: float):
    """A matplotlib Figure made without pyplot's registry, that a notebook still shows.

    Figures made by pyplot stay open in its registry (and are shown at the
    end of the cell); a plain ``Figure`` is shown once, as the cell's value,
    and then freed. IPython shows a plain Figure only if a PNG formatter is
    registered for it, which ``%matplotlib inline`` does but a kernel does
    not do by itself: register it here when running under IPython.
    """
    from matplotlib.figure import Figure

    _register_png_formatter(Figure)
    return Figure(figsize=(width, height), layout="constrained")


def _register_png_formatter(figure_type) -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # not in IPython: nothing to register
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    formatter = shell.display_formatter.formatters["image/png"]
    if figure_type in formatter.type_printers:
        return
    from IPython.core.pylabtools import print_figure

    formatter.for_type(figure_type, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def _fit(label: str, points: float, char_points: float = 5.0) -> str:
    """The label, shortened with "…" to fit ``points`` wide at 8 pt; "" if under 3 characters fit."""
    room = int(points // char_points) - 1
    if len(label) <= room:
        return label
    return label[: room - 1] + "…" if room >= 4 else ""


def _covered_by_deeper(intervals: list[Interval]) -> set[int]:
    """ids of intervals whose middle lies under a deeper one of the same thread.

    Their label would be printed under the deeper bar's label, so it is left out.
    """
    covered = set()
    for outer in intervals:
        middle = (outer.start + outer.end) / 2
        for inner in intervals:
            if (inner.thread == outer.thread and inner.depth > outer.depth
                    and inner.start <= middle <= inner.end):
                covered.add(id(outer))
                break
    return covered


class TracedLock:
    """A Lock (or RLock) that records how long each thread waited for it and held it.

    Usable wherever a lock is: ``with``, ``acquire(blocking, timeout)``,
    ``release()``, ``locked()``, and as the lock of a ``threading.Condition``.
    A wait that times out is recorded as ``wait_lock`` with label
    ``"NAME (timed out)"``.
    """

    def __init__(self, timeline: Timeline, name: str, reentrant: bool = False):
        self.timeline = timeline
        self.name = name
        self.reentrant = reentrant
        # The real lock; acquired/released by the threads using this wrapper.
        self._lock = threading.RLock() if reentrant else threading.Lock()
        self._hold_start: float | None = None  # written only by the holder
        self._hold_depth = 0  # re-entry count of the holder (RLock)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        tl = self.timeline
        if self.reentrant and self._hold_depth and self._owned_by_me():
            self._lock.acquire()
            self._hold_depth += 1
            return True
        depth = getattr(tl._depth, "value", 0)
        asked = tl.now()
        got = self._lock.acquire(blocking, timeout)
        now = tl.now()
        if got:
            tl.record("wait_lock", asked, now, self.name, depth=depth)
            self._hold_start = now
            self._hold_depth = 1
            # While held, the lock counts as an open span: what the holder does
            # meanwhile (a sleep, a put) is drawn on top of the hold bar.
            tl._depth.value = depth + 1
        elif blocking:
            tl.record("wait_lock", asked, now, f"{self.name} (timed out)", depth=depth)
        return got

    def release(self) -> None:
        if self.reentrant and self._hold_depth > 1:
            self._hold_depth -= 1
            self._lock.release()
            return
        start, self._hold_start, self._hold_depth = self._hold_start, None, 0
        end = self.timeline.now()
        self._lock.release()  # may raise RuntimeError like a real lock; then nothing recorded
        if start is not None:
            depth = max(0, getattr(self.timeline._depth, "value", 1) - 1)
            self.timeline._depth.value = depth
            self.timeline.record("hold_lock", start, end, self.name, depth=depth)

    def _owned_by_me(self) -> bool:
        # Not named _is_owned: threading.Condition would call that on a plain Lock.
        return self._lock._is_owned()  # RLock only

    def locked(self) -> bool:
        if self.reentrant:
            return self._hold_depth > 0
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<TracedLock {self.name!r} {'locked' if self.locked() else 'unlocked'}>"


class TracedSemaphore:
    """A Semaphore (bounded by default) that records each thread's wait for a permit and its hold of it.

    A permit has no owner, so the hold drawn is the acquiring thread's, from
    its acquire to its own release (``with`` does both); a release by another
    thread gives the permit back without drawing a hold.
    """

    def __init__(self, timeline: Timeline, value: int, name: str, bounded: bool = True):
        self.timeline = timeline
        self.name = name
        # The real semaphore; taken and given back by the threads using this wrapper.
        self._semaphore = threading.BoundedSemaphore(value) if bounded else threading.Semaphore(value)
        self._held = threading.local()   # .since: when this thread's permit was granted

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        tl = self.timeline
        depth = getattr(tl._depth, "value", 0)
        asked = tl.now()
        got = self._semaphore.acquire(blocking, timeout)
        now = tl.now()
        if got:
            tl.record("wait_permit", asked, now, self.name, depth=depth)
            self._held.since = now
            tl._depth.value = depth + 1  # what the holder does meanwhile is drawn on the hold bar
        elif blocking:
            tl.record("wait_permit", asked, now, f"{self.name} (timed out)", depth=depth)
        return got

    def release(self, n: int = 1) -> None:
        since = getattr(self._held, "since", None)
        end = self.timeline.now()
        self._semaphore.release(n)  # may raise ValueError (bounded): then nothing recorded
        if since is not None:
            self._held.since = None
            depth = max(0, getattr(self.timeline._depth, "value", 1) - 1)
            self.timeline._depth.value = depth
            self.timeline.record("hold_permit", since, end, self.name, depth=depth)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<TracedSemaphore {self.name!r}>"


class TracedQueue(queue.Queue):
    """A ``queue.Queue`` that records each ``put``/``get`` (including time blocked)."""

    def __init__(self, timeline: Timeline, maxsize: int = 0, name: str = "queue"):
        super().__init__(maxsize)
        self.timeline = timeline
        self.name = name

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        with self.timeline.span("put", self.name):
            super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None):
        with self.timeline.span("get", self.name):
            return super().get(block, timeout)

