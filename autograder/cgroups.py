"""The cgroups that bound one sandbox as a whole: its tasks (pids) and its memory.

``RLIMIT_NPROC`` and ``RLIMIT_AS`` bound each process of a sandbox; a cgroup
bounds all of them together and lets cleanup kill the lot in one sweep.
They are made only where this process may create child cgroups (v1: the
controller's hierarchy; v2: a delegated subtree) — elsewhere the per-process
limits and the tmpfs sizes are the bounds, and :mod:`autograder.sandbox`
says so. Each group is named ``course-sandbox-<grader pid>-<ns>``, so the
groups of a grader killed before its cleanup are swept by the next one.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["cgroup_parent", "make_cgroups", "remove_cgroup", "sweep_stale", "kill_leftovers"]


def cgroup_parent(controller: str) -> Path | None:
    """A cgroup folder of ``controller`` this process may create children in, or None.

    cgroup v1: the controller's hierarchy at our own cgroup. cgroup v2: our
    own cgroup, only when the controller is already enabled for its children
    (enabling it would need moving this process: not ours to do).
    """
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            base = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
            if base.is_dir() and os.access(base, os.W_OK):
                return base
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                base = root / path.lstrip("/")
                control = base / "cgroup.subtree_control"
                try:
                    if controller in control.read_text().split() and os.access(base, os.W_OK):
                        return base
                except OSError:
                    continue
    return None


def sweep_stale(parent: Path) -> None:
    """Remove the cgroups of graders that were killed before their cleanup ran."""
    for group in parent.glob("course-sandbox-*-*"):
        owner = group.name.split("-")[2]
        if not owner.isdigit():
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            remove_cgroup(group, timeout=1.0)
        except PermissionError:
            pass  # alive, someone else's


#: What each controller's limit file is called, and how the limit is written.
_LIMITS = {
    "pids": [("pids.max", str)],
    "memory": [("memory.limit_in_bytes", str), ("memory.max", str), ("memory.swap.max", lambda _: "0")],
}


def make_cgroups(max_tasks: int, memory_bytes: int) -> list[Path]:
    """Fresh cgroups limiting tasks (pids) and memory, as far as this process may make them.

    On cgroup v2 both limits live in one folder; on v1 one folder per
    controller. Returns the folders a sandbox joins (none where no cgroup
    can be made: then RLIMIT_AS per process and the tmpfs sizes are the bounds).
    """
    name = f"course-sandbox-{os.getpid()}-{time.monotonic_ns()}"
    groups: list[Path] = []
    for controller, value in (("pids", max_tasks), ("memory", memory_bytes)):
        parent = cgroup_parent(controller)
        if parent is None:
            continue
        sweep_stale(parent)
        group = parent / name
        try:
            group.mkdir(exist_ok=True)
            written = False
            for file_name, render in _LIMITS[controller]:
                if (group / file_name).exists():
                    (group / file_name).write_text(render(value))
                    written = written or file_name != "memory.swap.max"
            if not written:
                raise OSError(f"no {controller} limit file")
        except OSError:
            if group not in groups:
                with contextlib.suppress(OSError):
                    group.rmdir()
            continue
        if group not in groups:
            groups.append(group)
    return groups


def remove_cgroup(group: Path, timeout: float = 5.0) -> None:
    """Kill whatever is still in ``group`` and remove it (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return  # already gone
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.01)  # tasks still exiting


def kill_leftovers(spare: set[str] = frozenset()) -> None:
    """Kill whatever is left in the sandboxes this process started (their pids cgroups).

    A backstop the grading worker calls after each submission: a sandbox
    whose kernel manager was never cleaned up still ends here.
    """
    for controller in ("pids", "memory"):
        parent = cgroup_parent(controller)
        if parent is not None:
            for group in parent.glob(f"course-sandbox-{os.getpid()}-*"):
                if str(group) not in spare:
                    remove_cgroup(group)
