"""Can this machine run the grading sandbox? ``python -m autograder.precheck``.

Run on a cluster node or in a worker pod before grading there (docs/cluster.md).
:func:`autograder.sandbox.available` tries a reduced bwrap command; this runs the
sandbox's *real* command line (:func:`autograder.bwrap.bwrap_command`: the
replaced root, ``--unshare-pid --proc /proc``, the private ``/dev/shm`` and
``/tmp``, ``prlimit``) around this machine's Python importing ``course_lib``, so
it fails exactly where a kernel would: a pod whose ``/proc`` is masked (bubblewrap
cannot mount a new ``/proc`` there; ``procMount: Unmasked`` fixes it), user
namespaces disabled, prlimit missing, the project not installed, libseccomp missing (the
judge's no-process filter loads it in the kernel).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .bwrap import bwrap_command, etc_files
from .config import Limits

__all__ = ["sandbox_precheck", "main"]

OK = "sandbox-precheck-ok"
PROGRAM = ("import os, course_lib; assert os.getpid() < 10, 'not in a new PID namespace'; "
           "assert os.listdir('/proc/self/fd'), '/proc is not mounted'; "
           "from course_lib.judge import seccomp; why = seccomp.available(); assert not why, why; "
           "print(%r)" % OK)


def sandbox_precheck(timeout: float = 60) -> tuple[bool, str]:
    """``(ok, what happened)`` after running a kernel's bwrap command line with a tiny program."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    limits = Limits()
    with tempfile.TemporaryDirectory(prefix="course-precheck-") as tmp:
        root = Path(tmp)
        for name in ("work", "ipc"):
            (root / name).mkdir()
        cmd = bwrap_command([sys.executable, "-c", PROGRAM], workdir=root / "work", ipc_dir=root / "ipc",
                            etc_dir=etc_files(root)["passwd"].parent, memory_mb=limits.memory_mb,
                            bwrap=bwrap)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"the sandbox's bwrap command could not run: {error}"
    if done.returncode == 0 and OK in done.stdout:
        return True, "the sandbox's bwrap command line works here"
    lines = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return False, (f"the sandbox's bwrap command failed (exit {done.returncode}): {' | '.join(lines)}"
                   " — see docs/cluster.md (user namespaces; /proc unmasked in pods)")


def main() -> int:
    ok, message = sandbox_precheck()
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
