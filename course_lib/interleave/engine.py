"""One controlled run: worker threads, the scheduling decisions, steps, deadlock detection, patching.

One piece (about 550 lines) on purpose: the scheduling decisions, the step classification and the
patching of ``threading`` during a run share one invariant — exactly one worker runs between
two scheduling decisions — and splitting them would spread that invariant over modules.

Each decision is taken by the thread that just paused (the baton): it records its step, picks
the next worker and hands over to it directly, or simply goes on when it is picked again. So a
step costs one thread switch at most, none when the same thread continues, instead of two
through a controller thread (benchmarks/bench_interleave.py). The controller only starts the
run, takes its first decision, and waits for the end (a thread stuck outside the scheduler
included).
"""

from __future__ import annotations

import _thread
import linecache
import sys
import threading
import time
from typing import Any, Callable, Sequence
from . import primitives as _p

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
        self.filename = ""  # the file of frame's code (read once: frame.f_code is an audit event)
        self.op = ""
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
from .primitives import ScheduleError, SchedulerError, _Abort, _CoCondition, _CoLock, _CoRLock, _REAL_CONDITION, _REAL_LOCK, _REAL_RLOCK, _REAL_SLEEP, _RUN_GUARD, _Resource, _SHARED_OPS, _condition_factory, _is_traced_file, _lock_factory, _op_table, _rlock_factory, _sleep
from .results import Deadlock, Step, Trace


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
        self.back = _thread.allocate_lock()  # released by a worker: "I started", then "the run is over"
        self.back.acquire()
        self.baton = _thread.allocate_lock()  # held while a decision is taken (a worker's, or the controller's)
        self.deciding = False  # a decision is being taken: its thread is no worker (observe, choose)
        self.over = False      # the run ended: no further decision
        self.workers: list[_Worker] = []
        self.state = None

    # ---- worker side ---------------------------------------------------
    def _trace_call(self, frame, event, arg):
        # A frame's code is read here, once a call: reading frame.f_code is an audit event (the
        # judge's hook looks at each), so the per-opcode function below gets it in its closure.
        if event != "call" or self.deciding:
            return None
        code = frame.f_code
        filename = code.co_filename
        if not _is_traced_file(filename):
            return None
        run, idents, get_ident = self, self.idents, threading.get_ident
        if self.line_mode:
            def trace_line(frame, event, arg):
                if run.aborting:
                    raise _Abort()
                if event == "line":
                    worker = idents.get(get_ident())
                    if worker is not None:
                        worker.frame, worker.filename, worker.op = frame, filename, ""
                        run.pause(worker)
                return trace_line
            return trace_line
        frame.f_trace_opcodes = True
        table = _op_table(code)

        def trace_opcode(frame, event, arg):
            if run.aborting:
                raise _Abort()
            if event == "opcode":
                op = table.get(frame.f_lasti, "?")
                if op in _SHARED_OPS:
                    worker = idents.get(get_ident())
                    if worker is not None:
                        worker.frame, worker.filename, worker.op = frame, filename, op
                        run.pause(worker)
            return trace_opcode
        return trace_opcode

    def pause(self, worker: _Worker, voluntary: bool = False, op: str | None = None) -> None:
        """Hand control to the scheduler; return when it is this worker's turn again."""
        if self.aborting:
            raise _Abort()
        worker.status = "ready"
        worker.voluntary = voluntary
        if voluntary or op:
            worker.frame, worker.filename = _traced_caller()
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
        worker.frame, worker.filename = _traced_caller()
        self._hand_back_and_wait(worker)
        worker.resource = None
        if worker.timed_out:
            worker.timed_out = False
            return False
        return True

    def _hand_back_and_wait(self, worker: _Worker) -> None:
        """Take the next decision here; go on if this worker is picked, else hand over and wait."""
        with self.baton:
            if self.over or self.aborting:
                raise _Abort()
            chosen = self._decide()
            if chosen is None:
                self.back.release()  # the run is over: the controller collects it
        if chosen is worker:
            return
        if chosen is not None:
            chosen.go.release()
        self._wait_turn(worker)

    def _wait_turn(self, worker: _Worker) -> None:
        # Bounded: this worker is always released (a step, or an abort).
        if not worker.go.acquire(True, max(1.0, self.deadline - time.monotonic() + 5)):
            self.aborting = True
        if self.aborting:
            raise _Abort()

    def _worker_main(self, worker: _Worker) -> None:
        self.idents[threading.get_ident()] = worker
        try:
            worker.status = "ready"
            worker.op = "start"
            self.back.release()  # started: the controller starts the next one
            self._wait_turn(worker)
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
                with self.baton:
                    chosen = None
                    if not self.over:  # (over: the controller found this worker stuck, and left)
                        chosen = self._decide()
                        if chosen is None:
                            self.back.release()
                if chosen is not None:
                    chosen.go.release()

    # ---- the decisions (taken by whichever thread holds the baton) -------
    def _decide(self) -> "_Worker | None":
        """Record the step just taken, then pick the next worker; None when the run is over."""
        self.deciding = True
        try:
            chosen = self._next()
        except BaseException as exc:  # a schedule asking for a thread that cannot run: the caller's
            self.failure = exc
            chosen = None
        finally:
            self.deciding = False
        if chosen is None:
            self.over = True
        return chosen

    def _next(self) -> "_Worker | None":
        if self.pending is not None:
            worker, where, by_timeout = self.pending
            self.pending = None
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
            self.steps.append(self._step(worker, where, event, detail))
            self.previous = worker
        if self.step_count >= self.max_steps:
            self.outcome = "step_limit"
            self.message = (f"stopped after {self.max_steps} steps: a loop that never ends "
                            "(or threads that keep giving way to each other: livelock)?")
            return None
        if time.monotonic() > self.deadline:
            self.outcome, self.message = "time_limit", "the run went over its time limit"
            return None
        runnable = [w for w in self.workers if w.status == "ready" or
                    (w.status == "blocked" and w.resource.available(w))]
        by_timeout = False
        if not runnable:
            waiting = [w for w in self.workers if w.status == "blocked"]
            if not waiting:
                return None  # everyone finished (or raised)
            timed = [w for w in waiting if w.timed]
            if not timed:
                self.outcome = "deadlock"
                self.deadlock = _find_deadlock(waiting)
                self.message = str(self.deadlock)
                return None
            runnable = [min(timed, key=lambda w: (w.blocked_at, w.index))]
            by_timeout = True
        previous = self.previous
        chosen = self.choose(len(self.schedule), [w.index for w in runnable],
                             previous.index if previous else None,
                             bool(previous and previous.voluntary))
        worker = self.workers[chosen]
        if worker not in runnable:
            raise ScheduleError(
                f"step {len(self.schedule) + 1}: the schedule asks for thread {chosen} "
                f"({worker.name}), which is {worker.status}"
                + (f" on {worker.resource.name}" if worker.resource else ""))
        where = _position(worker)
        if by_timeout:
            worker.timed_out = True
        self.schedule.append(chosen)
        self.step_count += 1
        self.pending = (worker, where, by_timeout)
        self.last_progress = time.monotonic()
        return worker

    # ---- controller side -----------------------------------------------
    def execute(self, choose: Callable) -> Trace:
        started = time.monotonic()
        self.choose = choose
        self.steps: list[Step] = []
        self.schedule: list[int] = []
        self.outcome, self.message, self.deadlock = "finished", "every thread finished", None
        self.pending = None  # (worker, where, by_timeout): the step being taken
        self.previous: _Worker | None = None
        self.failure: BaseException | None = None
        self.last_progress = started
        errors: dict = {}
        self.step_count = 0
        adopted = None
        _p._ACTIVE = self  # read by the cooperative primitives: which run a thread belongs to
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
            with self.baton:
                first = self._decide()
            if first is not None:
                first.go.release()
                self._wait_for_end()
            if self.failure is not None:
                raise self.failure
            errors = {w.name: w.error for w in self.workers if w.error is not None}
            if self.outcome == "finished" and errors:
                self.outcome = "error"
                name, exc = next(iter(errors.items()))
                self.message = f"{name} raised {type(exc).__name__}: {exc}"
        finally:
            left = self._end_threads()
            if adopted is not None:
                adopted.restore()
            _p._ACTIVE = None
        return Trace(threads=list(self.names), steps=self.steps, schedule=tuple(self.schedule),
                     outcome=self.outcome, message=self.message, deadlock=self.deadlock,
                     errors=errors, state=self.state,
                     elapsed=time.monotonic() - started, left_behind=left)

    def _wait_for_end(self) -> None:
        """Until a worker says the run is over, or one takes longer than ``step_timeout`` for a step."""
        while True:
            if self.back.acquire(True, max(0.0, self.last_progress + self.step_timeout - time.monotonic())):
                return
            with self.baton:
                if self.over or time.monotonic() - self.last_progress < self.step_timeout:
                    continue  # over: its worker releases `back` right after; else progress was made
                worker, where, _ = self.pending
                self.outcome = "stuck"
                self.message = (f"{worker.name} did not reach its next step within "
                                f"{self.step_timeout:g} s: it is blocked outside the scheduler "
                                "(a lock made before the run, a socket, input(), join) or "
                                "runs long untraced code")
                self.steps.append(self._step(worker, where, "stuck", ""))
                self.pending = None
                self.over = True
                return

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
    """(frame, its file) of the nearest traced caller. The scheduler's own frames are passed by
    their globals, which costs no audit event; reading a frame's code does (one, usually)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals is not _OWN_GLOBALS and frame.f_globals is not _p.__dict__:
            filename = frame.f_code.co_filename
            if _is_traced_file(filename):
                return frame, filename
        frame = frame.f_back
    return None, ""


def _position(worker: _Worker):
    frame = worker.frame
    if worker.op == "start" or frame is None:
        name = getattr(worker.fn, "__name__", "worker")
        return (None, f"{name}(state)", "start", "start")
    line = frame.f_lineno or frame.f_code.co_firstlineno
    source = linecache.getline(worker.filename, line).strip()
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
_OWN_GLOBALS = globals()


class _Adopted:
    """Locks and conditions made *before* a run, swapped for cooperative ones while it lasts.

    A lock in a class body, a module global or a closure was created with
    the real factory, so a worker waiting for it would block in C where the
    scheduler cannot see it. Those reachable from the run's state and from
    the workers (:mod:`course_lib.reachable`) are replaced for the run, the
    same real object always by the same cooperative one (a Condition built
    on a shared lock stays on it), and put back afterwards. A lock already
    held by a thread outside the run starts held, so waiting for it is named
    as such instead of hanging; a Condition (an Event's, a Queue's) that such a thread
    already waits on stays real, so that thread is still woken.
    """

    def __init__(self, run: "_Run"):
        self.run = run
        self.swapped: dict[int, Any] = {}        # id(real) -> its cooperative stand-in
        self.keep: list[Any] = []                # the real objects, kept alive while their ids are keys
        self.undo: list[Callable[[], None]] = []

    @staticmethod
    def _is_real(value) -> bool:
        if type(value) is _REAL_CONDITION:
            # A thread outside the run already waits on it: it must keep hearing this very
            # object's notifications, so it stays real (workers then wait on it for real).
            return not getattr(value, "_waiters", None)
        return isinstance(value, _LOCK_TYPES)

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
        from ..reachable import references

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
def _run_end_hooks():
    """(register, fire): one callback run after every controlled search and stress run, bound in
    closures. The judge registers its integrity check once, before any cell runs."""
    hooks = []

    def after_each_run(callback) -> None:
        """Call ``callback()`` after every replay, explore and stress run (once per process)."""
        if hooks:
            raise RuntimeError("a callback after each run is already registered")
        hooks.append(callback)

    def fire() -> None:
        for callback in hooks:
            callback()

    return after_each_run, fire


after_each_run, fire_after_run = _run_end_hooks()


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
        fire_after_run()


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
