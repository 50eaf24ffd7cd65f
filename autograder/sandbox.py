"""Run every kernel that executes student code inside a bubblewrap sandbox.

What it models: a graded kernel is a guest. It gets a *writable copy* of its
own submission folder as working directory, the course runtime read-only
(the Python interpreter, the venv and ``course_lib``), a private ``/tmp``,
and nothing else of the instructor's. It runs in its own user, PID, IPC, UTS
and network namespaces: a private loopback (student servers may bind
127.0.0.1:12345 in two sandboxes at once) and no route to the host's
loopback or any other network. The kernel talks to the grader over
jupyter_client's ``ipc`` transport (Unix sockets in one folder bound into
the sandbox), since TCP cannot cross the network namespace.

How it is wired (the Jupyter way, no fork of nbgrader): nbgrader's
``Execute`` preprocessor is an nbclient ``NotebookClient``, which builds its
kernel with ``kernel_manager_class``. nbgrader 0.9.6 passes
``kernel_manager_class=AsyncKernelManager`` as a constructor argument, which
*overrides* ``c.Execute.kernel_manager_class`` from config (measured), so
:func:`configure` swaps the executing step of
``c.Autograde.autograde_preprocessors`` (nbgrader's ``Execute`` or a subclass
such as the project's ``BoundedExecute``) for its sandboxed twin, a subclass
whose only change is that default. :class:`SandboxKernelManager` is a plain jupyter_client
``AsyncKernelManager`` whose kernel command is wrapped in ``bwrap``; its
settings are ordinary traitlets config (``c.SandboxKernelManager.*``), so the
whole setup is JSON-serialisable and can be written to ``nbgrader_config.json``.

Why a copy of the *submitted* folder and not nbgrader's ``autograded``
folder: autograde writes the sanitized notebook, hidden tests restored, into
``autograded/<student>/<assignment>/`` and uses it as the kernel's working
folder, so code that lists its folder would read the hidden tests. The
submitted folder holds only what the student handed in (their own notebook
and data files). It is copied afresh for every kernel start (symlinks are
copied as links, never followed, so a planted link cannot pull a grader file
in), so what the kernel writes never changes the submission on disk.

Threat model (what it protects, what not):
  * Protected: the source notebooks and solutions, the gradebook, the
    release, the autograded notebook with hidden tests, other students'
    folders, the instructor's home and ``/tmp`` -- none is mounted. The
    network: only a private loopback exists. Leftovers: every process lives
    in a PID namespace under ``--die-with-parent``; when the kernel ends or is
    killed, the kernel (Linux) kills everything in the namespace, and
    :meth:`SandboxKernelManager.cleanup_resources` kills the ``bwrap``
    process if it is still there. Memory: ``RLIMIT_AS`` per process
    (``memory_mb``; thread stacks default to 2 MiB so ~400 threads fit in
    1 GiB), ``/tmp`` and the root file system are size-bounded tmpfs, core
    dumps off, file size bounded (``RLIMIT_FSIZE``). Capabilities: none
    (uid 1000 in a user namespace, ``--cap-drop ALL``); the runtime is
    mounted read-only, the root re-mounted read-only.
  * Not protected: anything inside the one Python process. Student code runs
    in the same interpreter as the test cells, so it can patch
    ``course_lib.grading`` or the builtins before a test cell runs; the
    grader must re-establish what the tests rely on in the test cells
    themselves (the lead's concern). Likewise the kernel *receives* each
    hidden test's code when it runs it: an IPython ``pre_run_cell`` hook can
    print that code into the cell's output, so feedback must not show the
    outputs of hidden-test cells beyond the error name and message. The
    student's own notebook is readable (it is theirs). CPU time is bounded
    only by nbgrader's per-cell timeout. Threads + processes (``max_tasks``)
    are bounded by ``RLIMIT_NPROC`` applied *inside* the user namespace (it
    counts only the sandbox's tasks there) and, where this process may
    create cgroups, by a pids cgroup per sandbox (which cleanup also kills
    whole). Linux exempts a real uid 0 from ``RLIMIT_NPROC``: a grader
    running as root with no writable pids cgroup bounds a fork bomb only by
    memory and by tearing the PID namespace down at the end. Kernel exploits
    against namespaces are out of scope: keep the host kernel patched. The
    instructor must still run the grader as an unprivileged user where
    possible, keep ``bubblewrap`` installed, and keep secrets out of the
    venv, the Python prefix and course_lib (they are readable).

What it trades off: one extra ``bwrap`` + ``prlimit`` exec and a folder copy
per kernel start (kernel start + a 5-cell notebook: about 1.1x plain, see
benchmarks/bench_sandbox.py); interrupts go as a message
(``interrupt_mode: "message"``: ipykernel then sends itself SIGINT inside the
sandbox) because the SIGINT that jupyter_client sends to the launcher's
process group kills ``bwrap`` and with it the kernel (measured: "Kernel
died"); the kernel itself is in its own session (``--new-session``, against
terminal injection), out of that group's reach.

Methods for the caller:
    available()                      (ok, reason): can a sandbox start here?
    configure(config, submission_dir=..., runtime_dir=...)  sandbox nbgrader
    SandboxKernelManager             also usable directly with nbclient
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from nbgrader.preprocessors import Execute

from traitlets import Integer, List, Unicode, default
from traitlets.config import Config

from .audit import JudgeKernelManager
from .bwrap import bwrap_command, etc_files, runtime_paths_needed
from .cgroups import kill_leftovers, make_cgroups, remove_cgroup
from .config import Limits

DEFAULTS = Limits()  # every bound's default is set in autograder.config.Limits, nowhere else

__all__ = [
    "SandboxUnavailable",
    "SandboxKernelManager",
    "SandboxedExecute",
    "available",
    "configure",
    "bwrap_command",
    "kill_leftovers",
]

#: Unix socket paths are limited to 107 bytes; ipc names add ``/k-NNNNN``.
_MAX_IPC_DIR = 90


class SandboxUnavailable(RuntimeError):
    """bubblewrap or user namespaces are missing; the message says how to fix it."""


# --------------------------------------------------------------------------- probe


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """Can a sandboxed kernel start on this machine? Returns ``(ok, why_not)``.

    Runs bwrap once with the same namespaces the kernels use (user, PID, net)
    and caches the answer for the process. When it fails, the string says
    what is missing and how to enable it.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, (
            "bubblewrap (bwrap) is not installed; install it with "
            "`apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`, "
            "or grade with --no-sandbox"
        )
    probe = [
        bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
        "--die-with-parent", "--new-session",
        "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--", "/bin/sh", "-c", "test -d /proc/self && echo sandbox-ok",
    ]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bwrap could not be run: {error}"
    if done.returncode == 0 and "sandbox-ok" in done.stdout:
        return True, "bubblewrap with user, PID and network namespaces works"
    message = (done.stderr or done.stdout).strip()
    hint = (
        "user namespaces seem disabled: enable them with "
        "`sysctl -w kernel.unprivileged_userns_clone=1` (Debian), "
        "`sysctl -w user.max_user_namespaces=15000`, or on Ubuntu 23.10+ "
        "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; in a container, "
        "run it with --security-opt seccomp=unconfined (Docker) or as privileged; "
        "or grade with --no-sandbox"
    )
    return False, f"bwrap failed ({message or 'exit status %d' % done.returncode}); {hint}"


# ------------------------------------------------------------ kernel manager


class SandboxKernelManager(JudgeKernelManager):
    """A judge kernel manager whose kernels run in bubblewrap (see module doc).

    The judge's audit socket lives in the kernel's ipc folder, the one
    folder of the grader's that is bound into the sandbox.

    Each start makes a fresh copy of ``submission_dir`` under ``runtime_dir``
    and a fresh short folder for the ipc sockets and connection file
    (``runtime_dir/ipc/sbx-*`` when that path is short enough for Unix
    sockets, else in the system temporary folder); both are bound into the
    sandbox. Settings are traitlets config, e.g.
    ``c.SandboxKernelManager.submission_dir = "/path/submitted/bob/ps1"``.
    """

    submission_dir = Unicode(help="Folder copied (fresh each start) as the kernel's cwd.").tag(
        config=True
    )
    runtime_dir = Unicode(help="Grader-owned scratch folder for copies and /etc files.").tag(
        config=True
    )
    ipc_root = Unicode(
        help="Where per-kernel ipc folders go (short path: Unix sockets max 107 bytes)."
    ).tag(config=True)
    memory_mb = Integer(DEFAULTS.memory_mb, help="RLIMIT_AS of every sandbox process, in MiB.").tag(config=True)
    tmp_mb = Integer(DEFAULTS.tmp_mb, help="Size of the private /tmp tmpfs, in MiB.").tag(config=True)
    shm_mb = Integer(DEFAULTS.shm_mb, help="Size of the private /dev/shm tmpfs, in MiB.").tag(config=True)
    work_mb = Integer(DEFAULTS.work_mb, help="Size of the writable working folder (a tmpfs), in MiB.").tag(config=True)
    max_tasks = Integer(
        DEFAULTS.max_tasks,
        help="Threads + processes the sandbox may hold: RLIMIT_NPROC inside the user "
        "namespace, and pids.max of its own pids cgroup when one can be made (Linux "
        "does not apply RLIMIT_NPROC to a grader running as root).",
    ).tag(config=True)
    pids_cgroup = Unicode(
        "auto",
        help="'auto': put each sandbox in a new pids cgroup (limit max_tasks, killed "
        "whole at the end) when the cgroup file system lets this process; '' = never.",
    ).tag(config=True)
    file_mb = Integer(DEFAULTS.file_mb, help="RLIMIT_FSIZE: largest file the kernel may write, MiB.").tag(
        config=True
    )
    runtime_paths = List(
        Unicode(), help="Read-only folders bound at their own paths (default: Python, venv, course_lib)."
    ).tag(config=True)
    passthrough_env = List(
        Unicode(), ["NBGRADER_EXECUTION"], help="Host environment variables copied into the sandbox."
    ).tag(config=True)
    bwrap_path = Unicode(help="The bwrap executable.").tag(config=True)

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("bwrap_path")
    def _bwrap_default(self) -> str:
        return shutil.which("bwrap") or "bwrap"

    @default("runtime_paths")
    def _runtime_paths_default(self) -> list[str]:
        return runtime_paths_needed()

    @default("ipc_root")
    def _ipc_root_default(self) -> str:
        # Inside runtime_dir when the socket paths stay short enough, so a
        # grader killed before its cleanup leaves nothing outside the folder
        # its caller deletes; otherwise the system temporary folder.
        inside = os.path.join(os.path.realpath(self.runtime_dir or "/nonexistent"), "ipc")
        if self.runtime_dir and len(inside) + len("/sbx-xxxxxxxx") <= _MAX_IPC_DIR:
            return inside
        return tempfile.gettempdir()

    # ---- the kernel spec: interrupts travel as a message, not a signal
    @property
    def kernel_spec(self):  # type: ignore[override]
        spec = super().kernel_spec
        if spec is not None:
            # A SIGINT to the process group kills bwrap and the kernel with
            # it (measured); a control-channel message makes ipykernel send
            # SIGINT to itself inside the sandbox.
            spec.interrupt_mode = "message"
        return spec

    # ---- start: fresh ipc folder + fresh copy, then wrap the command
    async def _async_pre_start_kernel(self, **kw):  # type: ignore[override]
        if not self.submission_dir or not self.runtime_dir:
            raise SandboxUnavailable(
                "SandboxKernelManager needs submission_dir and runtime_dir (use sandbox.configure)"
            )
        ok, why = available()
        if not ok:
            raise SandboxUnavailable(why)
        runtime = Path(self.runtime_dir)
        runtime.mkdir(parents=True, exist_ok=True)
        if getattr(self, "_ipc_dir", None) is None or not self._ipc_dir.is_dir():
            # Kept across restarts (same connection file and ports, as
            # jupyter_client expects); removed by the final cleanup.
            os.makedirs(self.ipc_root, exist_ok=True)
            self._ipc_dir = Path(
                tempfile.mkdtemp(prefix="sbx-", dir=os.path.realpath(self.ipc_root))
            )
        if len(str(self._ipc_dir)) > _MAX_IPC_DIR:
            raise SandboxUnavailable(f"ipc folder path too long for Unix sockets: {self._ipc_dir}")
        self.transport = "ipc"
        self.connection_file = str(self._ipc_dir / "connection.json")
        self.ip = str(self._ipc_dir / "k")
        # A fresh copy at every start, restarts included: a replaced kernel
        # sees the submission as handed in, never what the old one wrote.
        submission = Path(self.submission_dir)
        copies = runtime / "work"
        copies.mkdir(exist_ok=True)
        holder = Path(tempfile.mkdtemp(prefix="run-", dir=copies))
        self._workdir = holder / submission.name
        shutil.copytree(submission, self._workdir, symlinks=True)
        self._etc = etc_files(runtime)["passwd"].parent
        self._cgroups = (make_cgroups(self.max_tasks, self.total_memory_bytes())
                         if self.pids_cgroup == "auto" else [])
        return await super()._async_pre_start_kernel(**kw)

    pre_start_kernel = _async_pre_start_kernel

    def total_memory_bytes(self) -> int:
        """One bound for the whole sandbox (its memory cgroup): every process's memory
        and everything stored in its tmpfs folders together."""
        return (self.memory_mb + self.tmp_mb + self.shm_mb + self.work_mb) << 20

    def _audit_folder(self) -> Path:
        return self._ipc_dir

    def judge_env(self) -> dict[str, str]:
        return {"PYTHONSAFEPATH": "1", "IPYTHONDIR": "/tmp/ipython", "PYTHONNOUSERSITE": "1"}

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments=extra_arguments)
        env = {k: os.environ[k] for k in self.passthrough_env if k in os.environ}
        env.update(self.judge_env())
        enter_cgroup = []
        if getattr(self, "_cgroups", None):
            # The launcher joins the cgroup itself, then becomes prlimit+bwrap:
            # every sandbox task is counted from the first fork on.
            enter_cgroup = ["/bin/sh", "-c",
                            'while [ "$1" != -- ]; do echo $$ > "$1" || exit 1; shift; done; shift; exec "$@"',
                            "enter-cgroups", *(str(g / "cgroup.procs") for g in self._cgroups), "--"]
        return enter_cgroup + bwrap_command(
            cmd,
            workdir=self._workdir,
            ipc_dir=self._ipc_dir,
            etc_dir=self._etc,
            memory_mb=self.memory_mb,
            tmp_mb=self.tmp_mb,
            shm_mb=self.shm_mb,
            work_mb=self.work_mb,
            max_tasks=self.max_tasks,
            file_mb=self.file_mb,
            runtime_paths=list(self.runtime_paths),
            env=env,
            bwrap=self.bwrap_path,
        )

    # ---- end: nothing of the sandbox survives
    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        if process is not None and process.poll() is None:
            # bwrap is the provisioner's process; killing it makes the inner
            # init die (--die-with-parent) and Linux kills the PID namespace.
            process.kill()
            deadline = time.monotonic() + 5
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        await super()._async_cleanup_resources(restart=restart)
        for group in getattr(self, "_cgroups", None) or []:
            remove_cgroup(group)
        self._cgroups = []
        ipc_dir = getattr(self, "_ipc_dir", None)
        if ipc_dir is not None and not restart:
            shutil.rmtree(ipc_dir, ignore_errors=True)
            self._ipc_dir = None

    cleanup_resources = _async_cleanup_resources


class SandboxedExecute(Execute):
    """nbgrader's Execute, building its kernels with SandboxKernelManager.

    nbgrader's ``Execute.__init__`` forces ``kernel_manager_class`` through a
    constructor argument, so config alone cannot change it; this subclass sets
    that argument instead. All ``c.Execute.*`` settings still apply.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)


_SANDBOXED = "Sandboxed__"


def _sandboxed_subclass(execute_cls: type) -> type:
    """``execute_cls`` with SandboxKernelManager as its default kernel manager."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        execute_cls.__init__(self, *args, **kwargs)

    return type(f"Sandboxed{execute_cls.__name__}", (execute_cls,), {
        "__init__": __init__,
        "__module__": __name__,
        "__doc__": f"{execute_cls.__name__}, its kernels started by SandboxKernelManager.",
    })


def __getattr__(name: str):
    """Resolve ``autograder.sandbox.Sandboxed__pkg__mod__Cls`` (see configure).

    nbgrader imports preprocessors by dotted name, and a config file may be
    loaded in a fresh process, so the sandboxed twin of any Execute subclass
    (e.g. the project's ``autograder.execute.BoundedExecute``) is made here on
    first use rather than kept in a registry.
    """
    if not name.startswith(_SANDBOXED):
        raise AttributeError(name)
    from traitlets.utils.importstring import import_item

    cls = _sandboxed_subclass(import_item(name[len(_SANDBOXED):].replace("__", ".")))
    cls.__qualname__ = name
    globals()[name] = cls
    return cls


# ----------------------------------------------------------------- configure


def _dotted(cls) -> str:
    return cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"


def _sandboxed_name(entry) -> str | None:
    """The dotted name of the sandboxed twin of ``entry``, if it executes notebooks."""
    from nbclient import NotebookClient
    from traitlets.utils.importstring import import_item

    cls = import_item(entry) if isinstance(entry, str) else entry
    if not (isinstance(cls, type) and issubclass(cls, NotebookClient)):
        return None
    if cls.__module__ == __name__ and (cls is SandboxedExecute or cls.__name__.startswith("Sandboxed")):
        return _dotted(cls)  # already sandboxed
    if cls is Execute:
        return _dotted(SandboxedExecute)
    return f"{__name__}.{_SANDBOXED}{_dotted(cls).replace('.', '__')}"


def configure(
    config: Config,
    *,
    submission_dir: Path,
    runtime_dir: Path,
    memory_mb: int = DEFAULTS.memory_mb,
    tmp_mb: int = DEFAULTS.tmp_mb,
    max_tasks: int = DEFAULTS.max_tasks,
    ipc_root: Path | None = None,
    require: bool = True,
    limits: Limits | None = None,
) -> Config:
    """Make ``nbgrader autograde`` run with ``config`` start sandboxed kernels.

    ``submission_dir`` is the student's submitted folder for one assignment
    (``submitted/<student>/<assignment>``): each kernel start gets a fresh,
    writable copy of it as its working folder, seen inside as
    ``/home/student/<assignment>``. Every notebook-executing entry of
    ``c.Autograde.autograde_preprocessors`` (nbgrader's ``Execute`` or a
    subclass such as ``autograder.execute.BoundedExecute``) is replaced by
    its sandboxed twin, ``autograder.sandbox.Sandboxed__<dotted name>``,
    which differs only in its kernel manager. ``runtime_dir`` is a grader-owned scratch
    folder (the copies and a few generated /etc files go there; delete it
    after the run). Exposed read-only: /usr, Python's prefix, the venv,
    course_lib's folder. Exposed nowhere: the rest of the project folder,
    the course directory (source, release, autograded, gradebook), other
    submissions, the home folders, the host's /tmp, any network but a
    private loopback. See the module docstring for the threat model.

    Also sets ``c.Execute.shutdown_kernel = "immediate"`` (nothing in the
    sandbox needs a graceful exit; measured 4 s stalls otherwise). Values
    set are plain str/int/list, so ``json.dump(config, f)`` works.
    Raises :class:`SandboxUnavailable` when ``require`` and the sandbox
    cannot start here. ``limits`` (an :class:`autograder.config.Limits`), when
    given, sets every bound at once and wins over the separate arguments.
    """
    if require:
        ok, why = available()
        if not ok:
            raise SandboxUnavailable(why)
    from nbgrader.converters import Autograde

    current = config.Autograde.get("autograde_preprocessors")
    if not current:
        current = Autograde.class_traits()["autograde_preprocessors"].default()
    replaced, found = [], False
    for pp in current:
        twin = _sandboxed_name(pp)
        found = found or twin is not None
        replaced.append(twin or _dotted(pp))
    if not found:
        raise ValueError("autograde_preprocessors has no Execute step to sandbox")
    config.Autograde.autograde_preprocessors = replaced
    config.Execute.shutdown_kernel = "immediate"
    km = config.SandboxKernelManager
    km.submission_dir = str(Path(submission_dir).resolve())
    km.runtime_dir = str(Path(runtime_dir).resolve())
    km.memory_mb = int(memory_mb)
    km.tmp_mb = int(tmp_mb)
    km.max_tasks = int(max_tasks)
    if limits is not None:  # every sandbox bound from one Limits (what course grade passes)
        for name in ("memory_mb", "tmp_mb", "shm_mb", "work_mb", "max_tasks", "file_mb"):
            setattr(km, name, int(getattr(limits, name)))
    if ipc_root is not None:
        km.ipc_root = str(ipc_root)
    return config
