"""Cooperative Lock, RLock and Condition: a worker that must wait is marked blocked, not stuck in C."""

from __future__ import annotations

import _thread
import dis
import os
import sysconfig
import threading
import time
from typing import Any
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the engine imports this module
    from .engine import _Run, _Worker


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
_THIS_PACKAGE = os.path.dirname(os.path.realpath(__file__)) + os.sep  # the scheduler's own code
#: The judge's own code (its method guard runs on every call of a student's method): never a step.
_JUDGE_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "judge") + os.sep
_traced_cache: dict[str, bool] = {}
_op_cache: dict[Any, dict[int, str]] = {}


def _is_traced_file(filename: str) -> bool:
    known = _traced_cache.get(filename)
    if known is None:
        if filename.startswith("<") and not filename.startswith("<ipython-input"):
            # <course-test>: a test the judge compiled; its workers interleave as a cell's would
            known = filename.startswith(("<string", "<stdin", "<course-test"))
        else:
            real = os.path.realpath(filename)
            known = not real.startswith(_UNTRACED_DIRS + (_THIS_PACKAGE, _JUDGE_PACKAGE))
        _traced_cache[filename] = known
    return known


def _op_table(code) -> dict[int, str]:
    """Offset -> opcode name of ``code``'s instructions (made once a code object)."""
    table = _op_cache.get(code)
    if table is None:
        table = {ins.offset: ins.opname for ins in dis.get_instructions(code)}
        _op_cache[code] = table
    return table




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
    if run.deciding:  # the thread taking a decision (observe, choose) is no worker meanwhile
        return None
    ident = threading.get_ident()
    if ident in run.idents or (run.in_setup and ident == run.controller):
        return run
    return None


def _current_worker() -> "_Worker | None":
    run = _ACTIVE
    if run is None or run.deciding:
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
