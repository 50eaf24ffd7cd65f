"""Run threads under a controlled scheduler: replay one interleaving, search them all.

A race or a deadlock that shows up once in a million real runs is useless in
a lesson and unfair in a grader. This module runs two or more Python
functions as *real threads* of which exactly one advances at a time; the
scheduler decides who goes next at every *step*, so a chosen interleaving can
be replayed exactly (:func:`replay`) and every interleaving of a small program
can be tried (:func:`explore`).

How it works. Each worker thread installs ``sys.settrace``; in the frames of
*traced* code (everything outside the standard library, site-packages and
this module: notebook cells, the student's functions, test files) the trace
function hands control back to the scheduler before each *step*:

* ``granularity="opcode"`` (default): before every bytecode that can touch
  shared state (attribute, global, subscript and closure loads/stores, calls,
  in-place operators). That is what makes ``counter += 1`` split into "read"
  and "write", the whole point of the race lesson; opcodes that only touch the
  thread's own stack (``LOAD_FAST``, jumps ...) never need a switch.
* ``granularity="line"``: before every source line (readable, coarser).
* ``granularity="sync"``: only before lock acquires, condition waits and
  notifies (no tracing at all, so much faster and far fewer schedules). It
  finds deadlocks and lost wake-ups, not data races: use it for lock-order
  questions, ``opcode`` for "is this update atomic?".
* explicitly: :func:`checkpoint` and ``time.sleep`` in a worker.

While a run is active, ``threading.Lock``, ``RLock`` and ``Condition`` (and
so ``Event``, ``Semaphore``, ``Barrier`` and ``queue.Queue``, which are built
from them) made by the ``setup`` function or by a worker are *cooperative*:
a worker that must wait for one is marked *blocked* and the scheduler runs
someone else, instead of the thread hanging in C. When every unfinished
worker is blocked the run stops with a :class:`Deadlock` that names the
wait-for cycle (who holds which lock and waits for which). A blocking call
with a ``timeout`` times out only when nobody else can run (the longest
waiter first): time is modelled as passing only when the program is stuck.

Every run is bounded: ``max_steps`` steps, ``timeout`` seconds in total, and
``step_timeout`` seconds for one step. A worker that runs past a bound is
unwound with an exception from its next step (its ``finally`` blocks run) and
its thread ends; :attr:`Trace.left_behind` names any thread that could not be
ended (see the limits).

Limits (say them to students, they are real):

* Only traced code is interleaved. Code in the standard library or an
  installed package runs as one indivisible step, and a thread blocked inside
  a C call (a lock created *before* the run, ``socket.recv``, ``input()``,
  ``Thread.join``) cannot be seen: the run stops as ``stuck`` after
  ``step_timeout`` and that thread may be left behind as a daemon.
* ``time.sleep`` in a worker does not sleep: it is a point where the thread
  lets the others go first; a sleep never prevents any interleaving (which
  is the truth about sleeps "fixing" races). ``time.monotonic`` is real time,
  so stdlib loops that re-wait until a real deadline (``Queue.get(timeout=)``)
  may spin until ``max_steps``.
* Locks bound to names before the run by ``from threading import Lock`` in a
  module other than the workers' own are not replaced; create locks in
  ``setup``. Code that catches ``BaseException`` and loops can survive an
  abort. Workers must not start threads of their own. A debugger or coverage
  tool that uses ``sys.settrace`` in the workers is displaced during a run.
* The search is exhaustive only up to its bounds (``preemption_bound``
  switches away from a thread that could have continued, ``max_schedules``);
  :class:`Exploration` says which bound it hit. ``strategy="random"`` with a
  ``seed`` is reproducible and suits larger programs.

Why not frontrun (PyPI 0.7.0, which finds the same races and deadlocks and
works in kernels)? It has no public step-by-step replay with values, which
the lessons are built on; it refuses to run unless its global lock patching
is switched on (an environment variable or its CLI); its default search
reports code that blocks in ``Condition.wait`` as inconclusive; and it is an
alpha. It is faster at proving a small program correct (its DPOR pruning:
the locked two-thread counter in about 13 ms, against 114 schedules in about
120 ms here) and slower to the first failure (the racy counter in about
85 ms, against about 1.5 ms here) — benchmarks/bench_interleave.py measures
both in one process. Neither matters at the sizes a lesson or a grader uses.

Functions for the caller::

    replay(setup, workers, schedule)          -> Trace (a step table, HTML in a notebook)
    explore(setup, workers, invariant, ...)   -> Exploration (failing schedule + trace, or "N tried")
    stress(setup, workers, invariant, runs=)  -> StressResult (plain threads, no scheduler)
    checkpoint()                              an explicit switch point inside a worker
"""

from __future__ import annotations

import _thread
import dis
import html
import linecache
import os
import random
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = [
    "replay",
    "explore",
    "stress",
    "checkpoint",
    "compact",
    "parse_schedule",
    "Trace",
    "Step",
    "Exploration",
    "Deadlock",
    "StressResult",
    "SchedulerError",
    "ScheduleError",
]

_REAL_LOCK = threading.Lock
_REAL_RLOCK = threading.RLock
_REAL_CONDITION = threading.Condition
_REAL_SLEEP = time.sleep

# Only one controlled run at a time in a process: the factories below are
# module attributes. Taken by replay/explore for a whole run, never by workers.
_RUN_GUARD = _thread.allocate_lock()
_ACTIVE: "_Run | None" = None

# Bytecodes before which another thread may be switched in ("opcode" grain):
# the ones that read or write something another thread can see.
_SHARED_OPS = frozenset({
    "LOAD_ATTR", "STORE_ATTR", "DELETE_ATTR", "LOAD_METHOD",
    "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME",
    "LOAD_DEREF", "STORE_DEREF", "LOAD_CLASSDEREF",
    "BINARY_SUBSCR", "STORE_SUBSCR", "DELETE_SUBSCR", "BINARY_SLICE", "STORE_SLICE",
    "CALL", "CALL_FUNCTION_EX", "CALL_FUNCTION", "CALL_METHOD", "CALL_KW",
    "BINARY_OP", "INPLACE_ADD", "CONTAINS_OP", "GET_ITER", "FOR_ITER",
    "BEFORE_WITH", "LOAD_SUPER_ATTR",
    # Loop back-edges: a loop that touches nothing shared still counts its
    # turns, so a spin loop ends at max_steps instead of running untraced.
    "JUMP_BACKWARD", "JUMP_ABSOLUTE",
})


class SchedulerError(RuntimeError):
    """The scheduler was used in a way it cannot honour."""


class ScheduleError(SchedulerError, ValueError):
    """A schedule asked for a thread that could not run at that step."""


class _Abort(BaseException):
    """Raised inside a worker to unwind it when its run is stopped."""


# ----------------------------------------------------------------------------
# Which code is traced
# ----------------------------------------------------------------------------
_UNTRACED_DIRS = tuple(sorted({
    os.path.realpath(p) + os.sep
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
}))
_THIS_FILE = os.path.realpath(__file__)
_traced_cache: dict[str, bool] = {}
_op_cache: dict[Any, dict[int, str]] = {}


def _is_traced_file(filename: str) -> bool:
    known = _traced_cache.get(filename)
    if known is None:
        if filename.startswith("<") and not filename.startswith("<ipython-input"):
            known = filename.startswith("<string") or filename.startswith("<stdin")
        else:
            real = os.path.realpath(filename)
            known = real != _THIS_FILE and not real.startswith(_UNTRACED_DIRS)
        _traced_cache[filename] = known
    return known


def _opname(code, offset: int) -> str:
    table = _op_cache.get(code)
    if table is None:
        table = {ins.offset: ins.opname for ins in dis.get_instructions(code)}
        _op_cache[code] = table
    return table.get(offset, "?")


# ----------------------------------------------------------------------------
# Cooperative primitives (made by the factories while a run is active)
# ----------------------------------------------------------------------------
class _Resource:
    name = "?"

    def available(self, worker: "_Worker") -> bool:  # can the blocked worker proceed?
        raise NotImplementedError

    def holders(self) -> list["_Worker"]:
        return []


class _CoLock(_Resource):
    """A Lock whose waits are seen by the scheduler; a real lock underneath.

    The real lock keeps it correct when threads that are not workers of a run
    use it (after the run, or the controller in setup): they block for real.
    """

    _count = 0
    held_outside = False  # made before the run and held by a thread outside it (see _Adopted)

    def __init__(self, run: "_Run"):
        _CoLock._count += 1
        self.name = f"{self._kind()}-{_CoLock._count}"
        self._run = run
        self._real = _thread.allocate_lock()  # taken by whoever holds this lock
        self._owner: _Worker | None = None

    @staticmethod
    def _kind() -> str:
        return "lock"

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        worker = _current_worker()
        if worker is None:
            return self._real.acquire(blocking, timeout)
        if worker.run.sync_mode:
            worker.run.pause(worker, op="acquire")
        while True:
            if self._real.acquire(False):
                self._owner = worker
                return True
            if not blocking:
                return False
            if not worker.run.block(worker, self, timed=timeout is not None and timeout >= 0):
                return False  # timed out (the scheduler decided time passed)

    def release(self) -> None:
        self._owner = None
        self._real.release()

    def locked(self) -> bool:
        return self._real.locked()

    def available(self, worker) -> bool:
        return not self._real.locked()

    def holders(self):
        return [self._owner] if self._owner is not None else []

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()

    def _at_fork_reinit(self) -> None:
        self._real = _thread.allocate_lock()

    def __repr__(self) -> str:
        return f"<cooperative {self.name} {'locked' if self.locked() else 'unlocked'}>"


class _CoRLock(_CoLock):
    """A re-entrant lock: the holder may acquire again; released as often."""

    @staticmethod
    def _kind() -> str:
        return "rlock"

    def __init__(self, run):
        super().__init__(run)
        self._owner_ident: int | None = None
        self._depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        if self._owner_ident == me:
            self._depth += 1
            return True
        if not super().acquire(blocking, timeout):
            return False
        self._owner_ident, self._depth = me, 1
        return True

    __enter__ = acquire

    def release(self) -> None:
        if self._owner_ident != threading.get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._depth -= 1
        if self._depth == 0:
            self._owner_ident = None
            super().release()

    def _is_owned(self) -> bool:
        return self._owner_ident == threading.get_ident()

    def _release_save(self):
        state = (self._owner_ident, self._depth)
        self._depth = 1
        self.release()
        return state

    def _acquire_restore(self, state) -> None:
        super().acquire()
        self._owner_ident, self._depth = state


class _Notified(_Resource):
    """What a worker waiting in Condition.wait blocks on: a notify."""

    def __init__(self, condition: "_CoCondition"):
        self.condition = condition
        self.name = f"notify on {condition.name}"
        self.flag = False

    def available(self, worker) -> bool:
        return self.flag


class _CoCondition:
    """A Condition whose waits are seen by the scheduler (real waits for other threads)."""

    _count = 0

    def __init__(self, run: "_Run", lock=None):
        _CoCondition._count += 1
        self.name = f"condition-{_CoCondition._count}"
        self._lock = lock if lock is not None else _CoRLock(run)
        self.acquire = self._lock.acquire
        self.release = self._lock.release
        self._waiters: list = []  # _Notified records (workers) or real locks (other threads)

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def _release_save(self):
        if hasattr(self._lock, "_release_save"):
            return self._lock._release_save()
        self._lock.release()
        return None

    def _acquire_restore(self, state) -> None:
        if hasattr(self._lock, "_acquire_restore"):
            self._lock._acquire_restore(state)
        else:
            self._lock.acquire()

    def _is_owned(self) -> bool:
        if hasattr(self._lock, "_is_owned"):
            return self._lock._is_owned()
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def wait(self, timeout: float | None = None) -> bool:
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        worker = _current_worker()
        if worker is None:
            waiter = _thread.allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
            saved = self._release_save()
            try:
                got = waiter.acquire(True, -1 if timeout is None else max(timeout, 0))
                if not got and waiter in self._waiters:
                    self._waiters.remove(waiter)
                return got
            finally:
                self._acquire_restore(saved)
        if worker.run.sync_mode:
            worker.run.pause(worker, op="wait")
        record = _Notified(self)
        self._waiters.append(record)
        saved = self._release_save()
        try:
            got = worker.run.block(worker, record, timed=timeout is not None)
            if not got and record in self._waiters:
                self._waiters.remove(record)
            return got
        finally:
            self._acquire_restore(saved)

    def wait_for(self, predicate, timeout: float | None = None):
        result = predicate()
        while not result:
            if not self.wait(timeout):
                return predicate()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        worker = _current_worker()
        if worker is not None and worker.run.sync_mode:
            worker.run.pause(worker, op="notify")
        for waiter in self._waiters[:n]:
            self._waiters.remove(waiter)
            if isinstance(waiter, _Notified):
                waiter.flag = True
            else:
                waiter.release()

    def notify_all(self) -> None:
        self.notify(len(self._waiters))

    notifyAll = notify_all

    def __repr__(self) -> str:
        return f"<cooperative {self.name} on {self._lock!r}>"


def _in_scope() -> "_Run | None":
    """The active run if the calling thread belongs to it (a worker, or setup)."""
    run = _ACTIVE
    if run is None:
        return None
    ident = threading.get_ident()
    if ident in run.idents or (run.in_setup and ident == run.controller):
        return run
    return None


def _current_worker() -> "_Worker | None":
    run = _ACTIVE
    if run is None:
        return None
    return run.idents.get(threading.get_ident())


def _lock_factory(*args, **kwargs):
    run = _in_scope()
    return _CoLock(run) if run else _REAL_LOCK(*args, **kwargs)


def _rlock_factory(*args, **kwargs):
    run = _in_scope()
    return _CoRLock(run) if run else _REAL_RLOCK(*args, **kwargs)


def _condition_factory(lock=None):
    run = _in_scope()
    if run is None or (lock is not None and not isinstance(lock, _CoLock)):
        return _REAL_CONDITION(lock)
    return _CoCondition(run, lock)


def _sleep(seconds: float) -> None:
    worker = _current_worker()
    if worker is None:
        return _REAL_SLEEP(seconds)
    worker.run.pause(worker, voluntary=True)


def checkpoint() -> None:
    """A point where the scheduler may switch threads (a no-op outside a run).

    Useful in code the scheduler does not trace, or to make a ``line`` or
    opcode schedule easier to read: the thread offers to let others go first.
    """
    worker = _current_worker()
    if worker is not None:
        worker.run.pause(worker, voluntary=True)


# ----------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------
@dataclass
class Step:
    """One step of a run: which thread ran what, and the values after it."""

    index: int
    thread: str
    line: int | None
    source: str
    op: str
    event: str  # "ran", "blocked", "timed out", "finished", "raised", "started"
    detail: str
    shared: dict
    locals: dict


@dataclass
class Deadlock:
    """Every unfinished thread is blocked; ``cycle`` is the wait-for cycle, if any.

    Each cycle entry is ``(thread, holds, waits_for)``: the thread holds lock
    ``holds`` and waits for ``waits_for``, which the next entry's thread holds.
    """

    cycle: list[tuple[str, str, str]]
    blocked: dict[str, str]  # every blocked thread -> what it waits for

    def __str__(self) -> str:
        if self.cycle:
            parts = [f"{t} holds {h} and waits for {w}" for t, h, w in self.cycle]
            return "deadlock: " + "; ".join(parts) + " (a cycle)"
        waits = ", ".join(f"{t} waits for {w}" for t, w in self.blocked.items())
        return f"every thread is blocked and nobody can wake them: {waits}"

    def plot(self, ax=None, width: float = 5.0, height: float = 4.0):
        """Draw the cycle as a resource-allocation graph (threads as boxes, locks as circles; its
        wait-for graph has the threads only, T1 -> T2 when T1 waits for a lock T2 holds);
        returns the Figure."""
        import math

        from course_lib.timeline import new_figure

        if ax is None:
            fig = new_figure(width, height)
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        nodes: list[tuple[str, str]] = []  # (kind, name) around a circle
        for thread, holds, _waits in self.cycle:
            nodes.append(("thread", thread))
            nodes.append(("lock", holds))
        if not nodes:  # no cycle: list the blocked threads
            ax.text(0.5, 0.5, str(self), ha="center", va="center", wrap=True)
            ax.axis("off")
            return fig
        # order: thread_i, then the lock it waits for (held by thread_i+1)
        ordered = []
        for index, (thread, _holds, waits) in enumerate(self.cycle):
            ordered.append(("thread", thread))
            ordered.append(("lock", waits))
        n = len(ordered)
        pos = {}
        for i, node in enumerate(ordered):
            angle = math.pi / 2 - 2 * math.pi * i / n
            pos[i] = (math.cos(angle), math.sin(angle))
        for i, (kind, name) in enumerate(ordered):
            x, y = pos[i]
            style = dict(boxstyle="round,pad=0.4", fc="#c6dbef") if kind == "thread" else \
                dict(boxstyle="circle,pad=0.3", fc="#fdd0a2")
            ax.text(x, y, name, ha="center", va="center", fontsize=10, bbox=style, zorder=3)
        for i, (kind, _name) in enumerate(ordered):
            j = (i + 1) % n
            label = "waits for" if kind == "thread" else "held by"
            colour = "#cb181d" if kind == "thread" else "#238b45"
            (x0, y0), (x1, y1) = pos[i], pos[j]
            ax.annotate("", xy=(x0 + 0.78 * (x1 - x0), y0 + 0.78 * (y1 - y0)),
                        xytext=(x0 + 0.22 * (x1 - x0), y0 + 0.22 * (y1 - y0)),
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=2), zorder=2)
            ax.text((x0 + x1) / 2 * 1.12, (y0 + y1) / 2 * 1.12, label, color=colour,
                    ha="center", va="center", fontsize=9)
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title("resource-allocation graph: a cycle")
        return fig


@dataclass
class Trace:
    """What one controlled run did, step by step, and how it ended.

    ``outcome`` is one of ``"finished"``, ``"invariant"`` (finished, but the
    invariant failed), ``"error"`` (a worker raised), ``"deadlock"``,
    ``"step_limit"``, ``"time_limit"``, ``"stuck"`` (a step did not come back:
    the thread is blocked outside the scheduler).
    """

    threads: list[str]
    steps: list[Step]
    schedule: tuple[int, ...]
    outcome: str
    message: str
    deadlock: Deadlock | None = None
    errors: dict = field(default_factory=dict)
    state: Any = None
    elapsed: float = 0.0
    left_behind: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.outcome != "finished"

    def table(self, only_switches: bool = False) -> list[dict]:
        """The steps as a list of dicts (one per step), e.g. for pandas."""
        rows = []
        previous = None
        for step in self.steps:
            if only_switches and step.thread == previous and step.event == "ran":
                continue
            previous = step.thread
            rows.append({"step": step.index, "thread": step.thread, "line": step.line,
                         "code": step.source, "op": step.op, "event": step.event,
                         **step.shared, **{f"{step.thread}.{k}": v for k, v in step.locals.items()}})
        return rows

    def __str__(self) -> str:
        lines = [f"{'step':>4}  {'thread':<10} {'line':>4}  {'code':<34} {'op':<13} after the step"]
        for s in self.steps:
            values = ", ".join(f"{k}={v!r}" for k, v in {**s.shared, **s.locals}.items())
            note = f" [{s.event}{': ' + s.detail if s.detail else ''}]" if s.event != "ran" else ""
            lines.append(f"{s.index:>4}  {s.thread:<10} {s.line if s.line else '':>4}  "
                         f"{s.source[:34]:<34} {s.op:<13} {values}{note}")
        lines.append(f"outcome: {self.outcome} — {self.message}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        palette = ["#deebf7", "#fee6ce", "#e5f5e0", "#efedf5", "#fde0ef", "#f0f0f0"]
        colour = {name: palette[i % len(palette)] for i, name in enumerate(self.threads)}
        shared_keys: list[str] = []
        for s in self.steps:
            for key in s.shared:
                if key not in shared_keys:
                    shared_keys.append(key)
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in
                       ["step", "thread", "line", "code", "op", *shared_keys, "thread's locals", "note"])
        body = []
        for s in self.steps:
            cells = [str(s.index), html.escape(s.thread), str(s.line or ""),
                     f"<code>{html.escape(s.source)}</code>", html.escape(s.op)]
            cells += [html.escape(repr(s.shared.get(k, ""))) for k in shared_keys]
            cells.append(html.escape(", ".join(f"{k}={v!r}" for k, v in s.locals.items())))
            note = s.event if s.event != "ran" else ""
            if s.detail:
                note += f": {s.detail}"
            cells.append(html.escape(note))
            body.append(f'<tr style="background:{colour.get(s.thread, "#fff")}">' +
                        "".join(f'<td style="text-align:left">{c}</td>' for c in cells) + "</tr>")
        verdict_colour = "#1a7f37" if not self.failed else "#b31d28"
        return (f'<table style="font-size:12px"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>'
                f'<p style="color:{verdict_colour};font-weight:600">{html.escape(self.outcome)}: '
                f'{html.escape(self.message)}</p>')

    def to_timeline(self):
        """The run as a course_lib.timeline.Timeline, one time unit per step."""
        from course_lib.timeline import Timeline

        tl = Timeline().start()
        tl.xlabel = "step"
        for s in self.steps:
            kind = {"blocked": "wait_lock", "timed out": "wait_lock"}.get(s.event, "run")
            code = (s.source.split("#")[0].strip() or f"line {s.line}") if s.line else "start"
            label = code if len(code) <= 24 else code[:23] + "…"
            tl.record(kind, s.index - 1, s.index, label=label, thread=s.thread)
        tl._t_end = len(self.steps)
        return tl


@dataclass
class Exploration:
    """The result of :func:`explore`: a failing schedule and its trace, or how many passed."""

    failed: bool
    tried: int
    exhausted: bool
    strategy: str
    bound: str
    elapsed: float
    trace: Trace | None = None  # the failing run (or None)

    @property
    def schedule(self) -> tuple[int, ...] | None:
        return self.trace.schedule if self.trace else None

    @property
    def deadlock(self) -> Deadlock | None:
        return self.trace.deadlock if self.trace else None

    @property
    def message(self) -> str:
        if self.failed:
            return (f"schedule {self.tried} failed ({self.trace.outcome}): {self.trace.message}. "
                    f"Replay it with replay(setup, workers, \"{compact(self.trace.schedule)}\")")
        scope = "all schedules" if self.exhausted else "schedules"
        return (f"no schedule failed, {self.tried} tried ({scope} with {self.bound}, "
                f"{self.strategy}, {self.elapsed:.2f} s)")

    def __str__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = "#b31d28" if self.failed else "#1a7f37"
        text = f'<p style="color:{colour};font-weight:600">{html.escape(self.message)}</p>'
        return text + (self.trace._repr_html_() if self.failed else "")


@dataclass
class StressResult:
    """Plain-thread runs: how many of them broke the invariant."""

    runs: int
    failures: int
    messages: list[str]
    elapsed: float

    def __str__(self) -> str:
        return (f"{self.failures} of {self.runs} stress runs broke the invariant "
                f"({self.elapsed:.2f} s)")


def compact(schedule: Sequence[int]) -> str:
    """A schedule as run-length text: ``(0, 0, 0, 1, 1, 0)`` -> ``"0x3 1x2 0"``.

    :func:`replay` accepts this text as well as the list.
    """
    runs: list[list[int]] = []
    for thread in schedule:
        if runs and runs[-1][0] == thread:
            runs[-1][1] += 1
        else:
            runs.append([thread, 1])
    return " ".join(f"{t}x{n}" if n > 1 else str(t) for t, n in runs)


def parse_schedule(text: str) -> list[int]:
    """The inverse of :func:`compact`; also accepts plain ``"0 0 1"`` or ``"0,0,1"``."""
    steps: list[int] = []
    for token in text.replace(",", " ").split():
        thread, _, times = token.partition("x")
        steps.extend([int(thread)] * (int(times) if times else 1))
    return steps


# ----------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------
class _Worker:
    def __init__(self, run: "_Run", index: int, fn: Callable, name: str):
        self.run = run
        self.index = index
        self.fn = fn
        self.name = name
        self.go = _thread.allocate_lock()  # released by the controller: "your turn"
        self.go.acquire()
        self.status = "new"  # new, ready, blocked, done, error
        self.resource: _Resource | None = None
        self.timed = False  # blocked with a timeout
        self.blocked_at = 0  # step number when it blocked (longest waiter first)
        self.timed_out = False  # set by the controller when it wakes it by timeout
        self.voluntary = False  # it offered to yield (sleep/checkpoint)
        self.frame = None
        self.op = ""
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None


class _Run:
    """One controlled execution of setup + workers (used by replay and explore)."""

    def __init__(self, setup, workers, names, granularity, max_steps, deadline, step_timeout,
                 observe):
        if granularity not in ("opcode", "line", "sync"):
            raise ValueError("granularity must be 'opcode', 'line' or 'sync'")
        self.setup = setup
        self.fns = workers
        self.names = names
        self.line_mode = granularity == "line"
        self.sync_mode = granularity == "sync"
        self.max_steps = max_steps
        self.deadline = deadline
        self.step_timeout = step_timeout
        self.observe = observe
        self.idents: dict[int, _Worker] = {}
        self.controller = threading.get_ident()
        self.in_setup = False
        self.aborting = False
        self.back = _thread.allocate_lock()  # released by the running worker: "I paused"
        self.back.acquire()
        self.workers: list[_Worker] = []
        self.state = None

    # ---- worker side ---------------------------------------------------
    def _trace_call(self, frame, event, arg):
        if event != "call" or not _is_traced_file(frame.f_code.co_filename):
            return None
        if not self.line_mode:
            frame.f_trace_opcodes = True
        return self._trace_local

    def _trace_local(self, frame, event, arg):
        if self.aborting:
            raise _Abort()
        if self.line_mode:
            if event == "line":
                worker = self.idents.get(threading.get_ident())
                if worker is not None:
                    worker.frame, worker.op = frame, ""
                    self.pause(worker)
        elif event == "opcode":
            op = _opname(frame.f_code, frame.f_lasti)
            if op in _SHARED_OPS:
                worker = self.idents.get(threading.get_ident())
                if worker is not None:
                    worker.frame, worker.op = frame, op
                    self.pause(worker)
        return self._trace_local

    def pause(self, worker: _Worker, voluntary: bool = False, op: str | None = None) -> None:
        """Hand control to the scheduler; return when it is this worker's turn again."""
        if self.aborting:
            raise _Abort()
        worker.status = "ready"
        worker.voluntary = voluntary
        if voluntary or op:
            worker.frame = _traced_caller()
            worker.op = op or "yield"
        self._hand_back_and_wait(worker)

    def block(self, worker: _Worker, resource: _Resource, timed: bool) -> bool:
        """The worker waits for ``resource``; False if woken by a time-out."""
        if self.aborting:
            raise _Abort()
        worker.status = "blocked"
        worker.resource = resource
        worker.timed = timed
        worker.timed_out = False
        worker.blocked_at = self.step_count
        worker.voluntary = False
        worker.frame = _traced_caller()
        self._hand_back_and_wait(worker)
        worker.resource = None
        if worker.timed_out:
            worker.timed_out = False
            return False
        return True

    def _hand_back_and_wait(self, worker: _Worker) -> None:
        self.back.release()
        # Bounded: the controller always releases us (a step, or an abort).
        if not worker.go.acquire(True, max(1.0, self.deadline - time.monotonic() + 5)):
            self.aborting = True
        if self.aborting:
            raise _Abort()

    def _worker_main(self, worker: _Worker) -> None:
        self.idents[threading.get_ident()] = worker
        try:
            worker.status = "ready"
            worker.op = "start"
            self._hand_back_and_wait(worker)
            if self.sync_mode:  # no tracing: steps are the lock operations only
                worker.fn(self.state)
            else:
                sys.settrace(self._trace_call)
                try:
                    worker.fn(self.state)
                finally:
                    sys.settrace(None)
            worker.status = "done"
        except _Abort:
            worker.status = "aborted"
        except BaseException as exc:  # reported in the trace, not in the kernel
            worker.status = "error"
            worker.error = exc
        finally:
            if not self.aborting:
                self.back.release()

    # ---- controller side -----------------------------------------------
    def execute(self, choose: Callable) -> Trace:
        global _ACTIVE
        started = time.monotonic()
        steps: list[Step] = []
        schedule: list[int] = []
        outcome, message, deadlock = "finished", "every thread finished", None
        errors: dict = {}
        self.step_count = 0
        adopted = None
        _ACTIVE = self
        try:
            self.in_setup = True
            try:
                self.state = self.setup() if self.setup is not None else None
            finally:
                self.in_setup = False
            adopted = _Adopted(self).adopt(self.state, self.fns)
            _name_resources(self.state)
            for index, (fn, name) in enumerate(zip(self.fns, self.names)):
                worker = _Worker(self, index, fn, name)
                self.workers.append(worker)
                thread = threading.Thread(target=self._worker_main, args=(worker,),
                                          name=f"interleave:{name}", daemon=True)
                worker.thread = thread
                thread.start()
                if not self.back.acquire(True, self.step_timeout):
                    raise SchedulerError(f"thread {name} did not start")
            previous: _Worker | None = None
            while True:
                if self.step_count >= self.max_steps:
                    outcome = "step_limit"
                    message = (f"stopped after {self.max_steps} steps: a loop that never ends "
                               "(or threads that keep giving way to each other: livelock)?")
                    break
                if time.monotonic() > self.deadline:
                    outcome, message = "time_limit", "the run went over its time limit"
                    break
                runnable = [w for w in self.workers if w.status == "ready" or
                            (w.status == "blocked" and w.resource.available(w))]
                by_timeout = False
                if not runnable:
                    waiting = [w for w in self.workers if w.status == "blocked"]
                    if not waiting:
                        break  # everyone finished (or raised)
                    timed = [w for w in waiting if w.timed]
                    if not timed:
                        outcome = "deadlock"
                        deadlock = _find_deadlock(waiting)
                        message = str(deadlock)
                        break
                    runnable = [min(timed, key=lambda w: (w.blocked_at, w.index))]
                    by_timeout = True
                chosen = choose(len(schedule), [w.index for w in runnable],
                                previous.index if previous else None,
                                bool(previous and previous.voluntary))
                worker = self.workers[chosen]
                if worker not in runnable:
                    raise ScheduleError(
                        f"step {len(schedule)}: the schedule asks for thread {chosen} "
                        f"({worker.name}), which is {worker.status}"
                        + (f" on {worker.resource.name}" if worker.resource else ""))
                where = _position(worker)
                if by_timeout:
                    worker.timed_out = True
                schedule.append(chosen)
                self.step_count += 1
                worker.go.release()
                if not self.back.acquire(True, self.step_timeout):
                    outcome = "stuck"
                    message = (f"{worker.name} did not reach its next step within "
                               f"{self.step_timeout:g} s: it is blocked outside the scheduler "
                               "(a lock made before the run, a socket, input(), join) or "
                               "runs long untraced code")
                    steps.append(self._step(worker, where, "stuck", ""))
                    break
                event, detail = "ran", ""
                if by_timeout:
                    event, detail = "timed out", ""
                if worker.status == "blocked":
                    event = "blocked"
                    detail = f"waits for {worker.resource.name}" + _held_by(worker.resource)
                elif worker.status == "done":
                    event = "finished"
                elif worker.status == "error":
                    event = "raised"
                    detail = f"{type(worker.error).__name__}: {worker.error}"
                elif where[3] == "start":
                    event = "started"
                steps.append(self._step(worker, where, event, detail))
                previous = worker
            errors = {w.name: w.error for w in self.workers if w.error is not None}
            if outcome == "finished" and errors:
                outcome = "error"
                name, exc = next(iter(errors.items()))
                message = f"{name} raised {type(exc).__name__}: {exc}"
        finally:
            left = self._end_threads()
            if adopted is not None:
                adopted.restore()
            _ACTIVE = None
        return Trace(threads=list(self.names), steps=steps, schedule=tuple(schedule),
                     outcome=outcome, message=message, deadlock=deadlock,
                     errors=errors, state=self.state,
                     elapsed=time.monotonic() - started, left_behind=left)

    def _step(self, worker: _Worker, where, event: str, detail: str) -> Step:
        line, source, op, _ = where
        shared = {}
        if self.observe is not None:
            try:
                shared = dict(self.observe(self.state))
            except Exception as exc:  # an observer must not break the run
                shared = {"observe": f"{type(exc).__name__}: {exc}"}
        frame = worker.frame
        local_values = _simple_locals(frame) if frame is not None and worker.status in (
            "ready", "blocked") else {}
        return Step(self.step_count, worker.name, line, source, op, event, detail, shared,
                    local_values)

    def _end_threads(self) -> list[str]:
        """Unwind every worker still paused, then join them (bounded)."""
        self.aborting = True
        for worker in self.workers:
            if worker.status in ("ready", "blocked", "new"):
                try:
                    worker.go.release()
                except RuntimeError:
                    pass  # already released: it is running (stuck) right now
        left = []
        end = time.monotonic() + max(0.5, min(2.0, self.step_timeout))
        for worker in self.workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, end - time.monotonic()))
                if worker.thread.is_alive():
                    left.append(worker.thread.name)
        return left


def _traced_caller():
    frame = sys._getframe(2)
    while frame is not None and not _is_traced_file(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def _position(worker: _Worker):
    frame = worker.frame
    if worker.op == "start" or frame is None:
        name = getattr(worker.fn, "__name__", "worker")
        return (None, f"{name}(state)", "start", "start")
    line = frame.f_lineno or frame.f_code.co_firstlineno
    source = linecache.getline(frame.f_code.co_filename, line).strip()
    op = worker.op if worker.status == "ready" else ("acquire/wait" if worker.status == "blocked" else worker.op)
    return (line, source, op, "")


def _simple_locals(frame) -> dict:
    values = {}
    for key, value in frame.f_locals.items():
        if key.startswith("_") or key == "self" or key == "state":
            continue
        if isinstance(value, (int, float, str, bool, type(None))) or (
                isinstance(value, (tuple, list)) and len(value) <= 6 and
                all(isinstance(v, (int, float, str, bool, type(None))) for v in value)):
            values[key] = value
    return values


_LOCK_TYPES = (type(_REAL_LOCK()), type(_REAL_RLOCK()))


class _Adopted:
    """Locks and conditions made *before* a run, swapped for cooperative ones while it lasts.

    A lock in a class body, a module global or a closure was created with
    the real factory, so a worker waiting for it would block in C where the
    scheduler cannot see it. Those reachable from the run's state and from
    the workers (:mod:`course_lib.reachable`) are replaced for the run, the
    same real object always by the same cooperative one (a Condition built
    on a shared lock stays on it), and put back afterwards. A lock already
    held by a thread outside the run starts held, so waiting for it is named
    as such instead of hanging.
    """

    def __init__(self, run: "_Run"):
        self.run = run
        self.swapped: dict[int, Any] = {}        # id(real) -> its cooperative stand-in
        self.keep: list[Any] = []                # the real objects, kept alive while their ids are keys
        self.undo: list[Callable[[], None]] = []

    @staticmethod
    def _is_real(value) -> bool:
        return isinstance(value, _LOCK_TYPES) or type(value) is _REAL_CONDITION

    def stand_in(self, real):
        if id(real) not in self.swapped:
            self.keep.append(real)
            if type(real) is _REAL_CONDITION:
                inner = getattr(real, "_lock", None)
                lock = self.stand_in(inner) if isinstance(inner, _LOCK_TYPES) else None
                self.swapped[id(real)] = _CoCondition(self.run, lock)
            elif isinstance(real, type(_REAL_RLOCK())):
                self.swapped[id(real)] = _CoRLock(self.run)
            else:
                stand_in = self.swapped[id(real)] = _CoLock(self.run)
                if real.locked():  # held by a thread that is not in the run: so is its stand-in
                    stand_in._real.acquire()
                    stand_in.held_outside = True
        return self.swapped[id(real)]

    def adopt(self, state, fns) -> "_Adopted":
        from .reachable import references

        own = (_CoLock, _CoCondition, _Resource, _Run, _Worker)  # the scheduler's: never looked into
        for root in (state, *fns):
            for _, value, replace in references(root, opaque=own):
                if replace is not None and self._is_real(value):
                    replace(self.stand_in(value))
                    self.undo.append(lambda put=replace, original=value: put(original))
        return self

    def restore(self) -> None:
        for undo in reversed(self.undo):
            try:
                undo()
            except Exception:
                pass
        self.undo.clear()


def _name_resources(state, max_depth: int = 3) -> None:
    """Name the cooperative locks found in ``state`` by where they live (``acct.lock``)."""
    seen = set()

    def walk(obj, path, depth):
        if id(obj) in seen or depth > max_depth:
            return
        seen.add(id(obj))
        if isinstance(obj, (_CoLock, _CoCondition)):
            obj.name = path
            return
        if isinstance(obj, dict):
            items = [(f"{path}[{k!r}]", v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple)):
            items = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            items = [(f"{path}.{k}", v) for k, v in vars(obj).items()]
        else:
            return
        for sub_path, value in items:
            walk(value, sub_path, depth + 1)

    walk(state, "state", 0)


def _held_by(resource: _Resource) -> str:
    holders = resource.holders()
    if holders:
        return f" (held by {holders[0].name})"
    if getattr(resource, "held_outside", False):
        return " (made before the run and held by a thread outside it: a thread left running?)"
    return ""


def _find_deadlock(waiting: list[_Worker]) -> Deadlock:
    blocked = {}
    waits_on: dict[_Worker, _Resource] = {}
    for worker in waiting:
        waits_on[worker] = worker.resource
        blocked[worker.name] = worker.resource.name + _held_by(worker.resource)
    # Follow thread -> lock it waits for -> that lock's holder -> ...
    for start in waiting:
        path: list[_Worker] = []
        current = start
        while current is not None and current not in path:
            path.append(current)
            resource = waits_on.get(current)
            holders = resource.holders() if resource is not None else []
            current = holders[0] if holders else None
        if current is not None and current in path:
            loop = path[path.index(current):]
            cycle = []
            for i, worker in enumerate(loop):
                wanted = waits_on[worker]
                previous = loop[i - 1]  # the thread that waits for what `worker` holds
                held = waits_on[previous]
                cycle.append((worker.name, held.name, wanted.name))
            # Rotate so the lowest-numbered thread comes first.
            first = min(range(len(loop)), key=lambda i: loop[i].index)
            cycle = cycle[first:] + cycle[:first]
            return Deadlock(cycle=cycle, blocked=blocked)
    return Deadlock(cycle=[], blocked=blocked)


# ----------------------------------------------------------------------------
# Patching, scoped to one run at a time
# ----------------------------------------------------------------------------
class _Patched:
    """Install the cooperative factories (thread-aware) for the duration of a search."""

    def __init__(self, fns: Sequence[Callable]):
        self.fns = fns
        self.rebound: list[tuple[dict, str, Any]] = []

    def __enter__(self):
        if not _RUN_GUARD.acquire(True, 30):
            raise SchedulerError("another controlled run is still active in this process")
        threading.Lock = _lock_factory
        threading.RLock = _rlock_factory
        threading.Condition = _condition_factory
        time.sleep = _sleep
        # Names bound by `from threading import Lock` in the workers' modules.
        replacements = {id(_REAL_LOCK): _lock_factory, id(_REAL_RLOCK): _rlock_factory,
                        id(_REAL_CONDITION): _condition_factory, id(_REAL_SLEEP): _sleep}
        seen = set()
        for fn in self.fns:
            namespace = getattr(fn, "__globals__", None)
            if namespace is None or id(namespace) in seen:
                continue
            seen.add(id(namespace))
            for key, value in list(namespace.items()):
                if id(value) in replacements:
                    self.rebound.append((namespace, key, value))
                    namespace[key] = replacements[id(value)]
        return self

    def __exit__(self, *exc):
        threading.Lock = _REAL_LOCK
        threading.RLock = _REAL_RLOCK
        threading.Condition = _REAL_CONDITION
        time.sleep = _REAL_SLEEP
        for namespace, key, value in self.rebound:
            namespace[key] = value
        _RUN_GUARD.release()


def _normalise(setup, workers, count, names):
    if callable(workers):
        workers = [workers] * (count or 2)
    workers = list(workers)
    if not workers:
        raise ValueError("give at least one worker function")
    if names is None:
        names = [f"T{i}" for i in range(len(workers))]
    if len(names) != len(workers):
        raise ValueError("give one name per worker")
    fns = list(workers) + [f for f in (setup,) if f is not None]
    return workers, list(names), fns


def _check_invariant(trace: Trace, invariant) -> Trace:
    if invariant is None or trace.outcome != "finished":
        return trace
    try:
        verdict = invariant(trace.state)
    except AssertionError as exc:
        verdict, why = False, str(exc) or "the invariant's assertion failed"
    else:
        why = "the invariant returned False after every thread finished"
        if isinstance(verdict, str):
            verdict, why = False, verdict
    if verdict is not True and verdict is not None and not verdict:
        trace.outcome, trace.message = "invariant", why
    return trace


def replay(setup: Callable[[], Any] | None, workers, schedule: Sequence[int] | str = (),
           *, count: int | None = None, names: Sequence[str] | None = None,
           invariant: Callable[[Any], bool] | None = None,
           observe: Callable[[Any], dict] | None = None, granularity: str = "opcode",
           max_steps: int = 2000, timeout: float = 5.0, step_timeout: float = 1.0) -> Trace:
    """Run ``workers`` (each called as ``worker(state)``) following ``schedule``.

    ``schedule`` lists, step by step, the index of the thread that runs next
    (as :attr:`Trace.schedule` and :attr:`Exploration.schedule` give it, or a
    string like ``"0 0 1 1 0"``). When it runs out, the current thread keeps
    going while it can, then the lowest-numbered one that can run. ``observe``
    maps the state to the shared values shown after every step, e.g.
    ``lambda s: {"value": s.value}``. Never hangs: ``max_steps``, ``timeout``
    and ``step_timeout`` bound the run.
    """
    if isinstance(schedule, str):
        schedule = parse_schedule(schedule)
    schedule = list(schedule)
    workers, names, fns = _normalise(setup, workers, count, names)

    def choose(step, runnable, previous, voluntary):
        if step < len(schedule):
            return schedule[step]
        return _default_choice(runnable, previous, voluntary)

    with _Patched(fns):
        run = _Run(setup, workers, names, granularity, max_steps,
                   time.monotonic() + timeout, step_timeout, observe)
        trace = run.execute(choose)
    return _check_invariant(trace, invariant)


def _default_choice(runnable, previous, voluntary):
    """Keep the current thread going (no preemption) unless it offered to yield."""
    if previous in runnable and not voluntary:
        return previous
    if previous is not None and voluntary:
        later = [i for i in runnable if i > previous]
        if later:
            return later[0]
    return runnable[0]


def explore(setup: Callable[[], Any] | None, workers, invariant: Callable[[Any], bool] | None = None,
            *, count: int | None = None, names: Sequence[str] | None = None,
            strategy: str = "dfs", preemption_bound: int | None = 2, max_schedules: int = 2000,
            seed: int = 0, observe: Callable[[Any], dict] | None = None,
            granularity: str = "opcode", max_steps: int = 2000, timeout: float = 10.0,
            step_timeout: float = 1.0, stop_on_failure: bool = True) -> Exploration:
    """Search interleavings of ``workers`` for one that breaks ``invariant`` or deadlocks.

    ``setup()`` makes a fresh shared state for every schedule; each worker is
    called as ``worker(state)`` (pass one function and ``count`` to run it in
    ``count`` threads); ``invariant(state)`` is checked when all have finished
    (return False, or raise AssertionError with a message). A run that
    deadlocks, raises, or hits a bound also counts as a failure.

    ``strategy="dfs"`` tries every schedule with at most ``preemption_bound``
    switches away from a thread that could have continued (None: no bound),
    in depth-first order; ``strategy="random"`` picks the next thread at random
    at every step, reproducibly from ``seed``. Both stop after
    ``max_schedules`` schedules or ``timeout`` seconds.

    Returns an :class:`Exploration`: ``.failed``, ``.schedule`` and ``.trace``
    (replayable with :func:`replay`), or "no schedule failed, N tried".
    """
    if strategy not in ("dfs", "random"):
        raise ValueError("strategy must be 'dfs' or 'random'")
    workers, names, fns = _normalise(setup, workers, count, names)
    started = time.monotonic()
    deadline = started + timeout
    tried = 0
    exhausted = False
    bound_text = (f"at most {preemption_bound} preemption{'' if preemption_bound == 1 else 's'}"
                  if strategy == "dfs" and preemption_bound is not None else
                  "no preemption bound" if strategy == "dfs" else f"seed {seed}")
    first_failure: Trace | None = None
    rng = random.Random(seed)

    # DFS state: for each decision point, the runnable threads, the ones tried,
    # and the preemptions spent before it.
    stack: list[dict] = []
    prefix: list[int] = []

    with _Patched(fns):
        while tried < max_schedules and time.monotonic() < deadline:
            decisions: list[dict] = []
            diverged: list[int] = []

            def choose(step, runnable, previous, voluntary):
                if strategy == "random":
                    pick = rng.choice(runnable)
                elif step < len(prefix) and prefix[step] in runnable:
                    pick = prefix[step]
                else:
                    if step < len(prefix):
                        # This run went another way than the recorded one (code whose lock order
                        # depends on id() or hash()): search on from here as if it were new.
                        diverged.append(step)
                        del prefix[step:]
                    pick = _default_choice(runnable, previous, voluntary)
                decisions.append({"runnable": runnable, "previous": previous,
                                  "voluntary": voluntary, "chosen": pick})
                return pick

            run = _Run(setup, workers, names, granularity, max_steps,
                       min(deadline, time.monotonic() + timeout), step_timeout, observe)
            trace = _check_invariant(run.execute(choose), invariant)
            tried += 1
            if trace.failed:
                if trace.outcome == "time_limit" and time.monotonic() >= deadline:
                    tried -= 1
                    break
                first_failure = first_failure or trace
                if stop_on_failure:
                    break
            if strategy == "random":
                continue
            if diverged:
                del stack[diverged[0]:]
            # Extend the stack with this run's decisions past the prefix.
            for i in range(len(stack), len(decisions)):
                d = decisions[i]
                spent = stack[-1]["spent_after"] if stack else 0
                cost = _is_preemption(d, d["chosen"])
                stack.append({**d, "tried": {d["chosen"]}, "spent_before": spent,
                              "spent_after": spent + cost})
            # Backtrack to the deepest decision with an untried, affordable choice.
            prefix = []
            while stack:
                d = stack[-1]
                options = [t for t in d["runnable"] if t not in d["tried"] and
                           (preemption_bound is None or
                            d["spent_before"] + _is_preemption(d, t) <= preemption_bound)]
                if options:
                    pick = options[0]
                    d["tried"].add(pick)
                    d["chosen"] = pick
                    d["spent_after"] = d["spent_before"] + _is_preemption(d, pick)
                    prefix = [s["chosen"] for s in stack]
                    break
                stack.pop()
            if not stack:
                exhausted = True
                break
    return Exploration(failed=first_failure is not None, tried=tried, exhausted=exhausted,
                       strategy=strategy, bound=bound_text,
                       elapsed=time.monotonic() - started, trace=first_failure)


def _is_preemption(decision: dict, choice: int) -> int:
    previous = decision["previous"]
    return int(previous is not None and not decision["voluntary"]
               and previous in decision["runnable"] and choice != previous)


def stress(setup: Callable[[], Any] | None, workers, invariant: Callable[[Any], bool], *,
           count: int | None = None, runs: int = 20, switch_interval: float | None = 1e-6,
           timeout: float = 10.0) -> StressResult:
    """Run the workers as plain threads ``runs`` times and count invariant failures.

    No scheduler: this is what happens "for real", so it shows a race only
    when the interpreter happens to switch at the wrong moment. With
    ``switch_interval`` the interpreter is asked to switch threads more often
    for the duration (``sys.setswitchinterval``). Bounded by ``timeout`` in
    total; a run whose threads do not finish counts as a failure, and they
    are left as daemons (named ``stress:...``).
    """
    workers, names, _ = _normalise(setup, workers, count, None)
    started = time.monotonic()
    deadline = started + timeout
    failures, messages = 0, []
    old_interval = sys.getswitchinterval()
    done_runs = 0
    try:
        if switch_interval is not None:
            sys.setswitchinterval(switch_interval)
        for _ in range(runs):
            if time.monotonic() >= deadline:
                break
            state = setup() if setup is not None else None
            errors: list[BaseException] = []

            def wrap(fn):
                def body():
                    try:
                        fn(state)
                    except BaseException as exc:  # counted as a failed run
                        errors.append(exc)
                return body

            threads = [threading.Thread(target=wrap(fn), name=f"stress:{name}", daemon=True)
                       for fn, name in zip(workers, names)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            done_runs += 1
            if any(t.is_alive() for t in threads):
                failures += 1
                messages.append("threads did not finish before the time limit")
                break
            if errors:
                failures += 1
                messages.append(f"{type(errors[0]).__name__}: {errors[0]}")
                continue
            try:
                ok = invariant(state)
            except AssertionError as exc:
                ok = False
                messages.append(str(exc))
            if ok is False:
                failures += 1
    finally:
        sys.setswitchinterval(old_interval)
    return StressResult(runs=done_runs, failures=failures, messages=messages,
                        elapsed=time.monotonic() - started)
