"""No new process, by the kernel's word: a seccomp filter for lessons whose exercises start none.

After the judge has started what it needs (the relay) and before ipykernel
starts, :func:`forbid_processes` loads a seccomp filter (libseccomp, through
the ``pyseccomp`` binding) into every thread of the kernel: ``execve``,
``execveat``, ``fork``, ``vfork`` and a ``clone`` without ``CLONE_THREAD``
fail with ``EPERM``; ``clone3`` fails with ``ENOSYS``, so the C library
falls back to ``clone``, where the flags can be read. Threads are still
created (``clone`` with ``CLONE_THREAD``). A filter cannot be removed by
the process it is loaded into, nor by anything the process starts.

What it trades off: the filter is on the kernel's whole life, so a lesson
whose exercises start processes (lesson 01: ``multiprocessing``) cannot
have it; there a process is bounded by the sandbox (its PID namespace, its
task and memory limits) instead, as the README's threat model says.
"""

from __future__ import annotations

import errno

__all__ = ["available", "forbid_processes", "CLONE_THREAD"]

CLONE_THREAD = 0x00010000


def available() -> str:
    """"" when a filter can be loaded here, else why not."""
    try:
        import pyseccomp  # noqa: F401
    except Exception as error:  # the binding, or libseccomp.so.2 under it, is missing
        return f"pyseccomp cannot be loaded: {error}"
    return ""


def forbid_processes() -> None:
    """Load the filter into every thread of this process (raises if it cannot be loaded)."""
    import pyseccomp as seccomp

    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    refused = seccomp.ERRNO(errno.EPERM)
    for name in ("execve", "execveat", "fork", "vfork"):
        rules.add_rule(refused, name)
    rules.add_rule(refused, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.set_attr(seccomp.Attr.CTL_TSYNC, 1)  # every thread, not only the caller
    rules.load()
