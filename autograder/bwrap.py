"""The ``bwrap`` command line that puts one kernel in its sandbox, and what it mounts.

Split from :mod:`autograder.sandbox` (which decides *when* a kernel is
sandboxed and cleans up after it) because this part is a pure function of its
arguments: which folders the kernel sees read-only (the runtime), which are
private tmpfs, the namespaces and the per-process limits — testable without
starting anything.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from .config import Limits

DEFAULTS = Limits()  # every bound's default is set in autograder.config.Limits, nowhere else

__all__ = ["SANDBOX_HOME", "runtime_paths_needed", "etc_files", "bwrap_command"]

#: Where the submission copy appears inside the sandbox (its parent is empty).
SANDBOX_HOME = "/home/student"


def runtime_paths_needed() -> list[str]:
    """Folders the kernel needs read-only: Python's prefix, the venv, course_lib.

    Bound at their own paths, so the venv's ``python`` symlink and the
    editable-install finder of course_lib (which maps ``course_lib`` to
    ``/work/main/course_lib``) work unchanged, while the rest of the project
    folder (autograder/, notebooks/, tests/) stays invisible.
    """
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    spec = importlib.util.find_spec("course_lib")
    if spec is not None and spec.submodule_search_locations:
        paths.update(os.path.realpath(p) for p in spec.submodule_search_locations)
    # The venv may itself be a symlink: bind the link target and the link path.
    return sorted(paths)


def etc_files(root: Path) -> dict[str, Path]:
    """Write the few /etc files a kernel reads (users, localhost) into root/etc."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    files = {
        "passwd": "root:x:0:0:root:/root:/bin/sh\n"
                  f"student:x:1000:1000:student:{SANDBOX_HOME}:/bin/sh\n"
                  "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
        "group": "root:x:0:\nstudent:x:1000:\nnogroup:x:65534:\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
        "hostname": "grader\n",
    }
    out = {}
    for name, text in files.items():
        path = etc / name
        path.write_text(text)
        out[name] = path
    return out


def bwrap_command(
    kernel_cmd: list[str],
    *,
    workdir: Path,
    ipc_dir: Path,
    etc_dir: Path,
    memory_mb: int,
    tmp_mb: int = DEFAULTS.tmp_mb,
    shm_mb: int = DEFAULTS.shm_mb,
    work_mb: int = DEFAULTS.work_mb,
    max_tasks: int = DEFAULTS.max_tasks,
    file_mb: int = DEFAULTS.file_mb,
    thread_stack_kb: int = DEFAULTS.thread_stack_kb,
    runtime_paths: list[str] | None = None,
    env: dict[str, str] | None = None,
    bwrap: str = "bwrap",
) -> list[str]:
    """The argv that runs ``kernel_cmd`` in the sandbox.

    Order matters: bwrap applies mounts in order, so the private /tmp comes
    before the ipc folder (which may live under the host's /tmp) is bound
    over it, and the root is remounted read-only last.
    """
    workdir = Path(workdir)
    inside_work = f"{SANDBOX_HOME}/{workdir.name}"
    args = [
        bwrap,
        "--unshare-user", "--uid", "1000", "--gid", "1000",
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname", "grader",
        "--die-with-parent", "--new-session",
        "--cap-drop", "ALL",
        "--clearenv",
        "--size", str(16 << 20), "--tmpfs", "/",  # replaced root: 16 MB at most
        "--ro-bind", "/usr", "/usr",
    ]
    for link in ("bin", "lib", "lib64", "sbin", "lib32", "libx32"):
        host = Path("/") / link
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{link}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{link}"]
    for name in ("ld.so.cache", "localtime", "fonts"):  # fonts: matplotlib runs fc-list
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group", "hosts", "nsswitch.conf", "hostname"):
        args += ["--ro-bind", str(Path(etc_dir) / name), f"/etc/{name}"]
    args += [
        "--proc", "/proc",
        "--dev", "/dev",
        # --dev shares the host's /dev/shm (a 12 GB tmpfs here): a sized private one instead.
        "--size", str(shm_mb << 20), "--perms", "1777", "--tmpfs", "/dev/shm",
        "--size", str(tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp",
    ]
    # After the private /tmp: bwrap applies mounts in order, and a course
    # installed under /tmp (a CI clone) must not be hidden by the tmpfs.
    for path in runtime_paths if runtime_paths is not None else runtime_paths_needed():
        args += ["--ro-bind", path, path]
    # The working folder is a sized tmpfs (what the kernel writes never reaches the
    # host's disk), with the submission's own entries bound into it read-only.
    args += [
        "--bind", str(ipc_dir), str(ipc_dir),
        "--size", str(work_mb << 20), "--perms", "0755", "--tmpfs", inside_work,
    ]
    for entry in sorted(os.listdir(workdir)) if workdir.is_dir() else []:
        args += ["--ro-bind", str(workdir / entry), f"{inside_work}/{entry}"]
    args += ["--chdir", inside_work]
    inside_env = {
        "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MB of address space per arena
        # pid 1 = "my parent is init": ipykernel then starts no parent poller
        # (which would exit at once in a PID namespace) and prints no
        # "Ctrl-C will not work" banner; --die-with-parent does the poller's job.
        "JPY_PARENT_PID": "1",
    }
    inside_env.update(env or {})
    for key, value in inside_env.items():
        args += ["--setenv", key, value]
    args += ["--remount-ro", "/"]
    # prlimit runs *inside* the user namespace so RLIMIT_NPROC counts only
    # sandbox processes (set outside, it would count the user's host processes).
    args += [
        "--", "/usr/bin/prlimit",
        f"--as={memory_mb << 20}",
        f"--nproc={max_tasks}",
        f"--fsize={file_mb << 20}",
        # Thread stacks default to RLIMIT_STACK (8 MiB of address space each):
        # at 1 GiB that allowed only ~100 threads. 2 MiB (CPython itself uses
        # 1 MiB on musl) allows ~400; the hard limit is kept, so code may raise it.
        f"--stack={thread_stack_kb << 10}:",
        "--core=0",
        "--",
    ]
    return args + list(kernel_cmd)
