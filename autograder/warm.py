"""A judge kernel started ahead: the next submission of a lesson finds its kernel already up.

Starting a judge kernel (bubblewrap, Python, ipykernel, the judge's sealing)
is most of what a short submission costs, and it waits on nothing but CPU
and disk. While a grading worker grades one submission, it starts the
kernel the *next* submission of the same lesson will need, in a thread of
its own, with the same kernel manager class and settings but its own
scratch folders (an empty working folder, as every submission's is). When
that submission's notebook runs, :class:`autograder.execute.BoundedExecute`
takes the waiting kernel if its tests are exactly the notebook's; otherwise
(another lesson, a test set that differs) the waiting kernel is shut down
and a fresh one started, so a warm kernel can only ever save time.

A warm kernel has run no cell: it has only said hello and received its
lesson's tests, the same first message a cold one gets. Methods for the
worker: :func:`prepare` before a job's autograde, :func:`take` (called by
``BoundedExecute``), :func:`close` when the worker ends.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import tempfile
import threading
from pathlib import Path

__all__ = ["prepare", "take", "close", "spared", "STARTUP_S"]

STARTUP_S = 60.0  # a warm kernel still not started after this is given up
NICENESS = 10     # a kernel started ahead boots at low priority: the submission being graded goes first
_lock = threading.Lock()  # guards _slot; taken by the worker's thread and the starting thread
_slot: dict | None = None  # {"tests", "km", "started" (Event), "ok", "scratch", "cls"}


def _shutdown(slot: dict) -> threading.Thread:
    """Stop a warm kernel (if it started) and remove its scratch folder, in the background."""
    def stop():
        slot["started"].wait(STARTUP_S)
        km = slot.get("km")
        if km is not None:  # also one whose start failed after its process was launched (under load)
            try:
                asyncio.run(km.shutdown_kernel(now=True))
            except Exception:
                _kill(km)
        shutil.rmtree(slot["scratch"], ignore_errors=True)

    stopper = threading.Thread(target=stop, name="warm-kernel-stop", daemon=True)
    stopper.start()
    return stopper


def _kill(km) -> None:
    """Kill a kernel's process tree when its manager cannot shut it down."""
    from .proctree import kill_tree

    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        kill_tree(process.pid, timeout=10)


def prepare(km_class, config, tests: dict, *, lesson: str, sandboxed: bool, cwd: str | None = None,
            extra_arguments: list[str] | None = None, niceness: int = NICENESS) -> None:
    """Start, in the background, a kernel like the one ``config`` gives ``km_class``, for ``tests``.

    The copy of ``config`` points the kernel's scratch folders (sandbox
    runtime and working folder, or the ipc socket folder) at a fresh
    folder of its own, so the job that made ``config`` can delete its own.
    ``cwd`` and ``extra_arguments`` are what the notebook's own start would
    give the kernel (``course check``'s head start, :mod:`autograder.headstart`,
    starts the very kernel its check runs in, at the usual ``niceness`` 0).
    """
    global _slot
    scratch = Path(tempfile.mkdtemp(prefix="warm-kernel-"))
    warm_config = copy.deepcopy(config)
    if sandboxed:
        (scratch / "cwd" / lesson).mkdir(parents=True)
        section = warm_config.SandboxKernelManager
        section.submission_dir = str(scratch / "cwd" / lesson)
        section.runtime_dir = str(scratch / "runtime")
        section.ipc_root = str(scratch / "ipc") if len(str(scratch)) < 60 else tempfile.gettempdir()
    elif warm_config.JudgeKernelManager.get("transport") == "ipc":  # its own socket folder
        (scratch / "ipc").mkdir()
        warm_config.JudgeKernelManager.ip = str(scratch / "ipc" / "k")
    slot = {"tests": dict(tests), "started": threading.Event(), "scratch": scratch, "cls": km_class, "ok": False}

    def start():
        try:
            km = km_class(config=warm_config, kernel_name="python3")
            km.judge_tests = slot["tests"]
            km.niceness = niceness
            slot["km"] = km
            asyncio.run(km.start_kernel(cwd=cwd or str(scratch), extra_arguments=list(extra_arguments or [])))
            slot["ok"] = True
        except Exception as error:  # a cold start will say what is wrong
            slot["error"] = repr(error)
        finally:
            slot["started"].set()

    with _lock:
        previous, _slot = _slot, slot
    if previous is not None:
        _shutdown(previous)
    threading.Thread(target=start, name="warm-kernel-start", daemon=True).start()


def take(km_class, tests: dict):
    """The warm kernel, if there is one of ``km_class`` for exactly ``tests`` that started; else None
    (a waiting kernel that does not fit is shut down)."""
    global _slot
    with _lock:
        slot, _slot = _slot, None
    if slot is None:
        return None
    if slot["cls"] is not km_class or slot["tests"] != tests:
        _shutdown(slot)
        return None
    slot["started"].wait(STARTUP_S)
    if not slot.get("ok"):
        _shutdown(slot)
        return None
    km = slot["km"]
    km.warm_scratch = slot["scratch"]  # removed by BoundedExecute once the kernel is stopped
    km.niceness = 0  # a restart of it starts at the usual priority
    _renice(km)
    return km


def _renice(km) -> None:
    """Bring a taken kernel's processes back to the usual priority (where this process may: as root,
    or never; an unprivileged grader's warm kernels all stay at the same level, so none is favoured)."""
    import psutil

    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is None:
        return
    try:
        root = psutil.Process(process.pid)
        for each in [root, *root.children(recursive=True)]:
            each.nice(0)
    except (psutil.Error, OSError):
        pass


def spared() -> tuple[set[int], set[str]]:
    """The processes and cgroups of the waiting kernel (the worker's clean-up after a job leaves them)."""
    with _lock:
        slot = _slot
    if slot is None:
        return set(), set()
    slot["started"].wait(STARTUP_S)
    km = slot.get("km")
    process = getattr(getattr(km, "provisioner", None), "process", None)
    pids: set[int] = set()
    if process is not None and process.poll() is None:
        import psutil

        try:
            root = psutil.Process(process.pid)
            pids = {root.pid, *(p.pid for p in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            pass
    return pids, {str(g) for g in getattr(km, "_cgroups", None) or []}


def close() -> None:
    """Stop the waiting kernel, if any (the worker is ending)."""
    global _slot
    with _lock:
        slot, _slot = _slot, None
    if slot is not None:
        # The worker is ending: wait for the kernel to be gone, so nothing outlives it.
        _shutdown(slot).join(STARTUP_S + 30)
