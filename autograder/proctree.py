"""Kill a process and everything it started: the one copy grading, workers and the hub use.

Kernels and student servers run in their own sessions, so a signal to a
process group misses them; walking the tree with psutil finds them all.
"""

from __future__ import annotations

import psutil

__all__ = ["kill_tree", "kill_children"]


def _end(procs: list[psutil.Process], grace: float, timeout: float) -> None:
    if grace > 0:
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, procs = psutil.wait_procs(procs, timeout=grace)
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=timeout)


def kill_tree(pid: int, *, grace: float = 0.0, timeout: float = 5.0) -> None:
    """End ``pid`` and all its descendants: SIGTERM and ``grace`` seconds first if
    ``grace`` > 0, then SIGKILL; wait at most ``timeout`` for them to go."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    _end(procs, grace, timeout)


def kill_children(timeout: float = 5.0, *, spare: set[int] = frozenset()) -> None:
    """Kill every descendant of this process (not the process itself), but the pids in ``spare`` and
    their descendants now (a kernel started ahead may fork its Python after ``spare`` was listed)."""
    doomed = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.pid in spare or any(parent.pid in spare for parent in process.parents()):
                continue
        except psutil.NoSuchProcess:
            continue
        doomed.append(process)
    _end(doomed, 0.0, timeout)
