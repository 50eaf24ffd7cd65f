"""Importable workers for lesson 01: what a process and a thread are, measured.

A function defined in a notebook lives in the kernel's ``__main__``, which a
``spawn`` or ``forkserver`` child cannot import, so it cannot be sent there
(``forkserver`` becomes Linux's default in Python 3.14, ``spawn`` already is
on macOS and Windows). Everything a lesson sends to a child process lives
here instead, in a module every start method can import.

What it models:
    identify()              who am I: PID, parent PID, thread ident, native id
    SETTING, set_setting()  a module global a thread or a child process changes
    reset_setting()         put the global back to ORIGINAL
    read_witnesses(folder)  which processes/threads really ran set_setting
    start_cost(kind, n)     seconds to start and join n threads or processes
    burn_cpu(n), wait_io(s) a CPU-bound and an I/O-bound unit of work
    run_workload(...)       run units serially, in threads or in a process pool
    process_pool(...)       a warmed-up pool, so start cost is not timed

What it trades off: the workloads are tiny (tens of milliseconds) so a
lesson runs in seconds; the numbers are therefore noisy on a shared machine,
and lessons compare ratios measured in one run, never absolute times.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path
from typing import Callable, Iterator, Sequence

__all__ = [
    "ORIGINAL",
    "SETTING",
    "WITNESS_ENV",
    "DELAY_ENV",
    "START_KINDS",
    "WorkerTimeout",
    "identify",
    "set_setting",
    "reset_setting",
    "read_witnesses",
    "do_nothing",
    "start_cost",
    "burn_cpu",
    "wait_io",
    "run_workload",
    "process_pool",
]

ORIGINAL = "original"
#: The global that lesson 01 changes from a thread and from a child process.
#: Each process has its own copy: a child's assignment never reaches its parent.
SETTING = ORIGINAL

#: When this environment variable holds a number, set_setting() waits that many seconds
#: before it changes anything: a test sees whether its caller waited for it (joined).
DELAY_ENV = "COURSE_SETTING_DELAY"

#: When this environment variable names a folder, set_setting() leaves a file
#: there saying which process and thread ran it. Graders use it to check that
#: work really ran in another thread or process; children inherit it because
#: fork copies the environment and spawn passes the parent's current one.
WITNESS_ENV = "COURSE_LIB_WITNESS_DIR"

#: What start_cost() can start: a thread, or a process by start method.
START_KINDS = ("thread", "fork", "forkserver", "spawn")


class WorkerTimeout(RuntimeError):
    """A thread or process did not finish within its time limit."""


def identify() -> dict:
    """Report who is running this call: process, parent process and thread.

    ``thread_ident`` (``threading.get_ident``) is Python's handle, unique only
    among threads alive at the same time in one process; ``native_id`` is the
    operating system's thread id (on Linux the main thread's equals the PID).
    """
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "thread_ident": threading.get_ident(),
        "native_id": threading.get_native_id(),
        "thread_name": threading.current_thread().name,
    }


def set_setting(value: str) -> dict:
    """Set this process's ``SETTING`` to ``value`` and report where that happened.

    Returns identify() plus the new ``setting``. The change is made in the
    memory of whichever process runs the call: in a thread of the kernel the
    kernel sees it; in a child process only the child does.
    """
    global SETTING
    delay = os.environ.get(DELAY_ENV)
    if delay:
        time.sleep(min(float(delay), 5.0))
    SETTING = value
    report = identify()
    report["setting"] = SETTING
    _leave_witness(report)
    return report


def reset_setting() -> str:
    """Put ``SETTING`` back to ``ORIGINAL`` in this process and return it."""
    global SETTING
    SETTING = ORIGINAL
    return SETTING


def _leave_witness(report: dict) -> None:
    folder = os.environ.get(WITNESS_ENV)
    if not folder:
        return
    name = f"{report['pid']}-{report['native_id']}-{uuid.uuid4().hex}.witness"
    path = Path(folder) / name
    # Write then rename, so a reader never sees half a file.
    temporary = path.with_suffix(".tmp")
    temporary.write_text(str(report["setting"]), encoding="utf-8")
    temporary.replace(path)


def read_witnesses(folder: str | os.PathLike) -> list[dict]:
    """The calls of set_setting() recorded in ``folder``: pid, native_id, setting."""
    found = []
    for path in sorted(Path(folder).glob("*.witness")):
        pid, native_id, _ = path.stem.split("-", 2)
        found.append(
            {
                "pid": int(pid),
                "native_id": int(native_id),
                "setting": path.read_text(encoding="utf-8"),
            }
        )
    return found


def do_nothing() -> None:
    """The cheapest possible target: what remains is the cost of starting."""


def start_cost(kind: str, count: int, timeout: float = 10.0) -> float:
    """Seconds to start ``count`` threads or processes running do_nothing and join them.

    ``kind`` is ``"thread"`` or a multiprocessing start method (``"fork"``,
    ``"forkserver"``, ``"spawn"``). All are started first, then all joined,
    so the figure is start + exit + join, measured with ``time.perf_counter``.
    The first ``forkserver`` call also starts the fork server itself.
    Raises WorkerTimeout if they have not all finished within ``timeout`` s.
    """
    if kind not in START_KINDS:
        raise ValueError(f"kind must be one of {START_KINDS}, not {kind!r}")
    if count < 0:
        raise ValueError("count must be non-negative")
    deadline = time.monotonic() + timeout
    began = time.perf_counter()
    if kind == "thread":
        workers = [threading.Thread(target=do_nothing, name=f"start-cost-{i}") for i in range(count)]
    else:
        context = multiprocessing.get_context(kind)
        workers = [context.Process(target=do_nothing, name=f"start-cost-{i}") for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - began
    alive = [w.name for w in workers if w.is_alive()]
    if alive:
        raise WorkerTimeout(f"{kind} workers still running after {timeout:g} s: {alive}")
    return elapsed


def burn_cpu(n: int) -> int:
    """Pure-Python arithmetic: busy the whole time, holding the GIL while it runs."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def wait_io(seconds: float) -> float:
    """Stand-in for waiting on a disk or a network: sleeps, releasing the GIL."""
    time.sleep(seconds)
    return seconds


def run_workload(
    worker: Callable,
    args: Sequence,
    how: str,
    *,
    pool: Executor | None = None,
    timeout: float = 20.0,
) -> float:
    """Seconds to run ``worker(a)`` for every ``a`` in ``args``.

    ``how`` is ``"serial"`` (one after another in this thread), ``"threads"``
    (one thread per unit, in a fresh ThreadPoolExecutor, joined before
    returning) or ``"processes"`` (in ``pool``, a warmed-up process pool from
    process_pool(), so the time to start processes is not counted).
    Raises WorkerTimeout if the work takes longer than ``timeout`` s.
    """
    began = time.perf_counter()
    if how == "serial":
        for a in args:
            worker(a)
    elif how == "threads":
        with ThreadPoolExecutor(max_workers=max(1, len(args)), thread_name_prefix="workload") as threads:
            _wait_all(threads, worker, args, timeout)
    elif how == "processes":
        if pool is None:
            raise ValueError('how="processes" needs pool= (see process_pool())')
        _wait_all(pool, worker, args, timeout)
    else:
        raise ValueError(f'how must be "serial", "threads" or "processes", not {how!r}')
    return time.perf_counter() - began


def _wait_all(executor: Executor, worker: Callable, args: Sequence, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    futures = [executor.submit(worker, a) for a in args]
    try:
        for future in futures:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FuturesTimeout:
        for future in futures:
            future.cancel()
        raise WorkerTimeout(f"the workload did not finish within {timeout:g} s") from None


@contextlib.contextmanager
def process_pool(workers: int = 2, start_method: str = "spawn") -> Iterator[ProcessPoolExecutor]:
    """A ProcessPoolExecutor whose ``workers`` processes are already started.

    Uses ``spawn`` by default: it works the same on Linux, macOS and Windows
    and in Python 3.14, and our workers are importable from this module.
    The pool is shut down (its processes joined) when the block ends.
    """
    context = multiprocessing.get_context(start_method)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        # One short task per worker, submitted together, starts every process
        # now rather than inside the first timed run.
        _wait_all(pool, wait_io, [0.05] * workers, timeout=30.0)
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
