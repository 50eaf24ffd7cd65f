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

The package, one concern a module: ``primitives`` (the cooperative Lock,
RLock, Condition and the factories that make them), ``engine`` (one
controlled run: workers, the scheduling decisions (taken by the thread that
pauses, which hands over directly), deadlock detection, locks made
before a run adopted, patching), ``search`` (replay, explore, stress) and
``results`` (steps, traces and explorations, and how they render).
"""


from __future__ import annotations

from .engine import _Adopted, _Patched, after_each_run  # noqa: F401  (_Adopted, _Patched: for the tests)
from .primitives import (_REAL_CONDITION, _REAL_LOCK, _REAL_RLOCK, _REAL_SLEEP, _CoCondition,  # noqa: F401
                         _CoLock, ScheduleError, SchedulerError, checkpoint)
from .results import Deadlock, Exploration, Step, StressResult, Trace, compact, parse_schedule
from .search import explore, replay, stress

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
    "after_each_run",
]
