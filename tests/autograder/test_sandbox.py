"""Does every kernel nbgrader starts under autograder.sandbox stay in its box?

Real nbgrader runs on a tiny assignment built in a temporary folder: a
source notebook with a solution cell and a test cell (visible and hidden
checks), ``nbgrader generate_assignment``, a student submission with extra
"probe" cells that try to reach what is not theirs, then ``nbgrader
autograde`` in a subprocess with the config that ``sandbox.configure``
wrote to ``nbgrader_config.json``. The probes print one JSON report that the
tests read back from the autograded notebook.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest
from traitlets.config import Config

from autograder import bwrap, cgroups, sandbox

VENV_BIN = str(Path(sys.executable).parent)
ok, why = sandbox.available()
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.skipif(not ok, reason=f"sandbox unavailable: {why}"),
]

LESSON = "ps1"
# Built by concatenation in the probes, so the probe's own source never
# contains the whole marker (it is in the student's copy of the notebook).
HIDDEN = "HIDDEN" + "-MARKER-7f3a"
SOLUTION = "SOLUTION" + "-MARKER-91c2"

SOLUTION_SOURCE = f'''def add(a, b):
    """Return a + b."""
    ### BEGIN SOLUTION
    # {SOLUTION}
    return a + b
    ### END SOLUTION'''

TEST_SOURCE = f'''"""add returns the sum"""
assert add(1, 2) == 3
### BEGIN HIDDEN TESTS
assert add(2, 2) == 4  # {HIDDEN}
### END HIDDEN TESTS'''


def _meta(**nbgrader):
    base = {"schema_version": 3, "locked": False, "solution": False, "grade": False, "task": False}
    base.update(nbgrader)
    return {"nbgrader": base}


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")  # nbgrader runs alembic
    return env


def _nbgrader(course: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(VENV_BIN) / "nbgrader"), *args], cwd=course, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def make_course(root: Path) -> Path:
    """A course folder with source/ps1/ps1.ipynb released (gradebook created)."""
    course = root / "course"
    (course / "source" / LESSON).mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.cells = [
        nbformat.v4.new_code_cell("from course_lib import grading"),
        nbformat.v4.new_code_cell(SOLUTION_SOURCE, metadata=_meta(solution=True, grade_id="add")),
        nbformat.v4.new_code_cell(TEST_SOURCE, metadata=_meta(grade=True, locked=True, points=2,
                                                              grade_id="add_works")),
    ]
    nbformat.write(nb, course / "source" / LESSON / f"{LESSON}.ipynb")
    (course / "nbgrader_config.json").write_text(json.dumps(
        {"CourseDirectory": {"root": str(course), "course_id": "sbx"}}))
    done = _nbgrader(course, "generate_assignment", LESSON, "--force")
    assert done.returncode == 0, done.stderr[-2000:]
    return course


def submit(course: Path, student: str, extra_cells: list[str], solution: str | None = None) -> Path:
    """Copy the release as ``student``'s submission, extra cells after the solution."""
    released = nbformat.read(course / "release" / LESSON / f"{LESSON}.ipynb", as_version=4)
    cells = []
    for cell in released.cells:
        cells.append(cell)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "add":
            cell.source = solution or "def add(a, b):\n    return a + b"
            cells += [nbformat.v4.new_code_cell(src) for src in extra_cells]
    released.cells = cells
    folder = course / "submitted" / student / LESSON
    folder.mkdir(parents=True)
    nbformat.write(released, folder / f"{LESSON}.ipynb")
    return folder


def autograde(course: Path, student: str, runtime: Path, *, timeout: int = 10,
              execute: str | None = None, memory_mb: int = 1024) -> subprocess.CompletedProcess:
    """Autograde ``student`` in a fresh nbgrader process, kernels sandboxed."""
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = "sbx"
    config.Execute.timeout = timeout
    if execute:
        config.Autograde.autograde_preprocessors = [execute] + [
            p for p in _default_preprocessors()[1:]]
    sandbox.configure(config, submission_dir=course / "submitted" / student / LESSON,
                      runtime_dir=runtime, memory_mb=memory_mb)
    (course / "nbgrader_config.json").write_text(json.dumps(config))
    return _nbgrader(course, "autograde", LESSON, "--student", student, "--force")


def _default_preprocessors() -> list[str]:
    from nbgrader.converters import Autograde

    return [f"{c.__module__}.{c.__qualname__}"
            for c in Autograde.class_traits()["autograde_preprocessors"].default()]


def score(course: Path, student: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "sbx") as gb:
        return float(gb.find_submission(LESSON, student).score)


def probe_report(course: Path, student: str) -> dict:
    nb = nbformat.read(course / "autograded" / student / LESSON / f"{LESSON}.ipynb", as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if text.startswith("PROBE "):
                return json.loads(text[len("PROBE "):])
    outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
    raise AssertionError(f"no probe report in the autograded notebook: {outputs}"[:3000])


def sandbox_processes(*markers: object) -> list[str]:
    """Live processes whose command line holds a marker (e.g. this test's
    runtime folder, which every bwrap command of its sandboxes names)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(str(m) in cmd for m in markers):
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    return found


@pytest.fixture
def short_tmp():
    """A short temporary folder (Unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sbxt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def released_course():
    """The course with ps1 generated once per module (generate_assignment is slow)."""
    path = Path(tempfile.mkdtemp(prefix="sbxc-"))
    yield make_course(path)
    shutil.rmtree(path, ignore_errors=True)


def copy_course(template: Path, root: Path) -> Path:
    """A private copy of the released course (source, release, gradebook)."""
    course = root / "course"
    shutil.copytree(template, course)
    return course


PROBE = r'''
import json, os, socket, subprocess
targets = json.loads(TARGETS)
def readable(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False
report = {"readable": {name: readable(p) for name, p in targets["files"].items()},
          "listable": {name: sorted(os.listdir(p)) if os.path.isdir(p) else None
                       for name, p in targets["dirs"].items()},
          "cwd": os.getcwd(), "cwd_files": sorted(os.listdir(".")),
          "parents": sorted(os.listdir("../..")), "tmp": sorted(os.listdir("/tmp"))}
report["relative_source"] = readable("../../../source/ps1/ps1.ipynb")
found = []
for top, dirs, files in os.walk("/"):
    if top.startswith(("/proc", "/sys", "/dev", "/usr", *targets["runtime"])):
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(top, name)
        try:
            if os.path.getsize(path) < 2_000_000:
                with open(path, "rb") as f:
                    data = f.read()
                if ("HIDDEN" + "-MARKER").encode() in data or ("SOLUTION" + "-MARKER").encode() in data:
                    found.append(path)
        except OSError:
            pass
report["marker_files"] = found
try:
    socket.create_connection(("127.0.0.1", targets["host_port"]), timeout=2).close()
    report["host_port"] = "reached"
except OSError as e:
    report["host_port"] = type(e).__name__
report["interfaces"] = [name for _, name in socket.if_nameindex()]
open("/tmp/" + targets["tmp_name"], "w").write("kernel was here")
open("written-by-kernel.txt", "w").write("x")
try:
    hog = bytearray(2 * 1024 ** 3)
    report["memory"] = "allocated 2 GiB"
except MemoryError:
    report["memory"] = "MemoryError"
subprocess.Popen(["sleep", "4242.5"])
subprocess.Popen(["sh", "-c", "sleep 4243.5 & sleep 4244.5"], start_new_session=True)
report["uid"] = os.getuid()
print("PROBE " + json.dumps(report))
'''


def test_a_probing_submission_reaches_nothing_and_scores_right(short_tmp, released_course):
    """Can code in a graded kernel read the course's files, the host's /tmp or
    loopback, keep processes running, or change the submission on disk — and
    does it still get its points?"""
    course = copy_course(released_course, short_tmp)
    other = submit(course, "bob", [])  # another student's folder
    host_tmp_file = Path(tempfile.gettempdir()) / f"sbx-planted-{uuid.uuid4().hex}.txt"
    host_tmp_file.write_text(f"planted {SOLUTION}")
    tmp_name = f"kernel-tmp-{uuid.uuid4().hex}"
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        targets = {
            "files": {
                "source": str(course / "source" / LESSON / f"{LESSON}.ipynb"),
                "gradebook": str(course / "gradebook.db"),
                "release": str(course / "release" / LESSON / f"{LESSON}.ipynb"),
                "autograded": str(course / "autograded" / "alice" / LESSON / f"{LESSON}.ipynb"),
                "other_student": str(other / f"{LESSON}.ipynb"),
                "host_tmp": str(host_tmp_file),
                "project_readme": str(Path(sandbox.__file__).parents[1] / "pyproject.toml"),
                "autograder_pkg": sandbox.__file__,
            },
            "dirs": {"course": str(course), "home": os.path.expanduser("~")},
            "host_port": listener.getsockname()[1],
            "tmp_name": tmp_name,
            # Python and the venv: read-only runtime, too big to read whole.
            "runtime": [sys.base_prefix, sys.prefix, os.path.realpath(sys.base_prefix)],
        }
        probe = f"TARGETS = {json.dumps(json.dumps(targets))}\n" + PROBE
        submission = submit(course, "alice", [probe])
        before = sorted(p.name for p in submission.iterdir())
        started = time.monotonic()
        done = autograde(course, "alice", short_tmp / "runtime", timeout=20)
        took = time.monotonic() - started
    finally:
        listener.close()
        host_tmp_file.unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    report = probe_report(course, "alice")

    assert report["readable"] == {name: False for name in targets["files"]}, report["readable"]
    # The home folder shows at most the mount points of the runtime inside it
    # (here /root/.pyenv, where Python lives), never the instructor's files.
    home = Path(os.path.expanduser("~"))
    runtime_in_home = sorted({Path(p).relative_to(home).parts[0] for p in bwrap.runtime_paths_needed()
                              if Path(p).is_relative_to(home)})
    assert report["listable"] == {"course": None, "home": runtime_in_home or None}
    assert report["relative_source"] is False
    assert report["marker_files"] == [], "hidden tests or solutions reachable"
    assert report["cwd"] == f"/home/student/{LESSON}"
    assert report["cwd_files"] == [f"{LESSON}.ipynb"], "only the student's own files"
    assert report["parents"] == ["student"], "nothing beside the submission"
    assert tmp_name not in os.listdir(tempfile.gettempdir()), "kernel's /tmp is the host's"
    assert not any(name.startswith("sbx-planted-") for name in report["tmp"]), "host /tmp visible"
    assert report["host_port"] == "ConnectionRefusedError", "host loopback reachable"
    assert report["interfaces"] == ["lo"]
    assert report["memory"] == "MemoryError"
    assert report["uid"] == 1000
    assert sorted(p.name for p in submission.iterdir()) == before, "submission changed on disk"
    assert score(course, "alice") == 2.0, "a correct solution earns its 2 points"
    assert sandbox_processes(short_tmp, "4242.5", "4243.5", "4244.5") == [], "sandbox processes survived"
    assert took < 60


def test_a_wrong_solution_scores_zero_under_the_sandbox(short_tmp, released_course):
    """Are failed tests still failed when the kernel runs sandboxed (no false pass)?"""
    course = copy_course(released_course, short_tmp)
    submit(course, "carol", [], solution="def add(a, b):\n    return a - b")
    done = autograde(course, "carol", short_tmp / "runtime")
    assert done.returncode == 0, done.stderr[-3000:]
    assert score(course, "carol") == 0.0


async def _bind_in_two_kernels(runtime: Path, submission: Path) -> list[str]:
    config = Config()
    config.SandboxKernelManager.submission_dir = str(submission)
    config.SandboxKernelManager.runtime_dir = str(runtime)
    managers = [sandbox.SandboxKernelManager(config=config) for _ in range(2)]
    clients = []
    replies = []
    try:
        await asyncio.gather(*(km.start_kernel() for km in managers))
        for km in managers:
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            clients.append(kc)
        code = ("import socket\nsrv = socket.create_server(('127.0.0.1', 12345))\n"
                "c = socket.create_connection(('127.0.0.1', 12345), timeout=5)\n"
                "peer, _ = srv.accept()\nc.sendall(b'ping')\nprint('bound', peer.recv(4).decode())")
        for kc in clients:  # the first keeps its listener open while the second binds
            outputs = []
            reply = await kc.execute_interactive(
                code, timeout=30, output_hook=lambda m: outputs.append(m["content"].get("text", "")))
            replies.append(reply["content"]["status"] + ":" + "".join(outputs).strip())
        alive = [await km.is_alive() for km in managers]
        replies.append(f"alive={alive}")
        # The leftover check below must be able to see live sandboxes.
        replies.append(f"seen={len(sandbox_processes(runtime)) >= 2}")
    finally:
        ipc_dirs = [km._ipc_dir for km in managers]
        for kc in clients:
            kc.stop_channels()
        await asyncio.gather(*(km.shutdown_kernel(now=True) for km in managers))
    replies.append(f"ipc left={[d for d in ipc_dirs if d.exists()]}")
    return replies


def run_in_own_thread(coroutine, timeout: float = 180):
    """asyncio.run on a thread of its own: this pytest worker's main thread may already run an event
    loop (Playwright's sync API keeps one running there for the browser tests' whole session)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-test-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout)


def test_two_sandboxed_kernels_both_bind_port_12345(short_tmp):
    """Can two kernels graded at the same time both listen on 127.0.0.1:12345?"""
    submission = short_tmp / "sub" / LESSON
    submission.mkdir(parents=True)
    replies = run_in_own_thread(_bind_in_two_kernels(short_tmp / "runtime", submission))
    assert replies == ["ok:bound ping", "ok:bound ping", "alive=[True, True]", "seen=True",
                       "ipc left=[]"]
    assert sandbox_processes(short_tmp) == []


LOOP = '''import time
while True:
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass  # swallows the grader's interrupt'''


def test_a_loop_that_swallows_interrupts_is_bounded_by_killing_the_kernel(short_tmp, released_course):
    """Does a cell that ignores KeyboardInterrupt end with its kernel killed,
    in bounded time and with no process left — and what does plain nbgrader
    then do with the submission?"""
    course = copy_course(released_course, short_tmp)
    submit(course, "dave", [LOOP])
    started = time.monotonic()
    done = autograde(course, "dave", short_tmp / "runtime", timeout=3)
    took = time.monotonic() - started
    assert took < 60, f"autograde took {took:.0f} s"
    assert sandbox_processes(short_tmp) == []
    # Plain nbgrader 0.9.6 (measured): the interrupted kernel never goes
    # idle, nbclient raises "Timeout waiting for IOPub output", nbgrader
    # gives up on the whole submission, deletes its autograded folder and
    # exits 1. The sandbox only guarantees the kernel is killed; the
    # project's BoundedExecute (next test) replaces it and goes on.
    assert done.returncode == 1
    assert not (course / "autograded" / "dave" / LESSON).exists()


def test_bounded_execute_replaces_a_stuck_sandboxed_kernel_and_keeps_the_points(short_tmp,
                                                                             released_course):
    """With the project's BoundedExecute sandboxed too, does a submission
    whose extra cell swallows interrupts still earn its test's points?"""
    pytest.importorskip("autograder.execute")
    course = copy_course(released_course, short_tmp)
    submit(course, "erin", [LOOP])
    done = autograde(course, "erin", short_tmp / "runtime", timeout=3,
                     execute="autograder.execute.BoundedExecute")
    assert done.returncode == 0, done.stderr[-3000:]
    assert score(course, "erin") == 2.0
    assert sandbox_processes(short_tmp) == []


def test_configure_swaps_only_the_execute_step_and_stays_json():
    """Does configure replace just the executing preprocessor, keep the rest,
    and produce a config that survives json.dump (for nbgrader_config.json)?"""
    config = Config()
    config.Autograde.autograde_preprocessors = ["autograder.execute.BoundedExecute",
                                                "nbgrader.preprocessors.LimitOutput"]
    sandbox.configure(config, submission_dir=Path("/nonexistent/sub"), runtime_dir=Path("/tmp/r"))
    steps = config.Autograde.autograde_preprocessors
    assert steps == ["autograder.sandbox.Sandboxed__autograder__execute__BoundedExecute",
                     "nbgrader.preprocessors.LimitOutput"]
    from traitlets.utils.importstring import import_item

    twin = import_item(steps[0])
    assert twin.__mro__[1].__name__ == "BoundedExecute"
    assert twin().kernel_manager_class is sandbox.SandboxKernelManager
    assert json.loads(json.dumps(config))["SandboxKernelManager"]["submission_dir"] == "/nonexistent/sub"


GRADER = r'''
import asyncio, sys, time
from traitlets.config import Config
from autograder import sandbox

async def main():
    config = Config()
    config.SandboxKernelManager.submission_dir = sys.argv[1]
    config.SandboxKernelManager.runtime_dir = sys.argv[2]
    km = sandbox.SandboxKernelManager(config=config)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    await kc.execute_interactive(
        "import subprocess\np = subprocess.Popen(['sh', '-c', 'sleep 4245.5 & sleep 4246.5'], "
        "start_new_session=True)", timeout=30)
    print("ready", flush=True)
    time.sleep(600)  # until the test kills this "grader"

asyncio.run(main())
'''


def test_nothing_of_the_sandbox_survives_a_killed_grader(short_tmp):
    """If the grading process itself is SIGKILLed mid-run (no cleanup code
    runs), do the kernel and the background processes it started die too?"""
    submission = short_tmp / "sub" / LESSON
    submission.mkdir(parents=True)
    grader = subprocess.Popen([sys.executable, "-c", GRADER, str(submission), str(short_tmp / "rt")],
                              stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert grader.stdout.readline().strip() == "ready"
        assert len(sandbox_processes(short_tmp, "4245.5", "4246.5")) >= 3, "sandbox not seen alive"
    finally:
        grader.kill()
        grader.wait(timeout=10)
    deadline = time.monotonic() + 10
    while sandbox_processes(short_tmp, "4245.5", "4246.5") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(short_tmp, "4245.5", "4246.5") == []
    # No cleanup code ran: what stays is inside the runtime folder (deleted by
    # its owner) and, where pids cgroups are used, an empty cgroup that the
    # next sandbox start sweeps away — this sweep, or one by a sandbox that another
    # grading run on the machine started meanwhile (so it may be gone already).
    assert list((short_tmp / "rt" / "ipc").glob("sbx-*")), "ipc folder expected under runtime_dir"
    parent = cgroups.cgroup_parent("pids")
    if parent is not None:
        cgroups.sweep_stale(parent)
        assert not list(parent.glob(f"course-sandbox-{grader.pid}-*"))


def test_a_sandbox_cannot_hold_more_tasks_than_max_tasks(short_tmp):
    """Is a cell that starts processes in a loop stopped at max_tasks
    (threads + processes), instead of filling the machine's process table?"""
    if os.geteuid() == 0 and cgroups.cgroup_parent("pids") is None:
        pytest.skip("processes unbounded here: Linux exempts root from RLIMIT_NPROC "
                    "and no writable pids cgroup exists")
    submission = short_tmp / "sub" / LESSON
    submission.mkdir(parents=True)
    config = Config()
    config.SandboxKernelManager.submission_dir = str(submission)
    config.SandboxKernelManager.runtime_dir = str(short_tmp / "rt")
    config.SandboxKernelManager.max_tasks = 48
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import subprocess\nchildren = []\ntry:\n    for _ in range(200):\n"
        "        children.append(subprocess.Popen(['sleep', '4247.5']))\nexcept OSError as e:\n"
        "    print('stopped', type(e).__name__)\nprint('started', len(children))")]
    from nbclient import NotebookClient

    NotebookClient(nb, kernel_manager_class=sandbox.SandboxKernelManager, config=config,
                   timeout=60, shutdown_kernel="immediate").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    started = int(text.split("started ")[1])
    assert "stopped BlockingIOError" in text and 0 < started < 48, text
    assert sandbox_processes(short_tmp, "4247.5") == []


def test_an_interrupt_at_the_time_limit_reaches_the_sandboxed_kernel(short_tmp):
    """When a cell runs past its time limit, does the grader's interrupt reach
    the kernel inside the sandbox (KeyboardInterrupt), so later cells run?"""
    from nbclient import NotebookClient

    submission = short_tmp / "sub" / LESSON
    submission.mkdir(parents=True)
    config = Config()
    config.SandboxKernelManager.submission_dir = str(submission)
    config.SandboxKernelManager.runtime_dir = str(short_tmp / "rt")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in [
        "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('interrupted')\n    raise",
        "print('next cell ran')"]]
    started = time.monotonic()
    NotebookClient(nb, kernel_manager_class=sandbox.SandboxKernelManager, config=config,
                   timeout=2, interrupt_on_timeout=True, allow_errors=True,
                   shutdown_kernel="immediate").execute()
    took = time.monotonic() - started
    first = nb.cells[0].outputs
    # A print may arrive as one stream message or as two ("interrupted", "\n"), by timing.
    assert "".join(o.get("text") for o in first if o["output_type"] == "stream") == "interrupted\n"
    assert [o["ename"] for o in first if o["output_type"] == "error"] == ["KeyboardInterrupt"]
    assert "".join(o.get("text", "") for o in nb.cells[1].outputs) == "next cell ran\n"
    assert took < 30


def test_bwrap_command_mounts_tmp_before_the_ipc_folder_and_seals_the_root():
    """Does the command bind the ipc folder after the private /tmp (bwrap
    applies mounts in order: a later tmpfs would hide it), bind the runtime
    read-only, and re-mount the root read-only after every mount?"""
    argv = sandbox.bwrap_command(
        ["python", "-m", "ipykernel_launcher"], workdir=Path("/x/run-1/ps1"),
        ipc_dir=Path("/tmp/sbx-abc"), etc_dir=Path("/x/etc"), memory_mb=512,
        runtime_paths=["/opt/py", "/opt/venv"])
    sep = argv.index("--")
    mounts = argv[:sep]
    tmpfs = {mounts[i + 1]: i for i, arg in enumerate(mounts) if arg == "--tmpfs"}
    assert mounts.index("/tmp/sbx-abc") > tmpfs["/tmp"]
    assert ["--ro-bind", "/opt/py", "/opt/py"] == mounts[mounts.index("/opt/py") - 1:][:3]
    assert mounts[-2:] == ["--remount-ro", "/"]
    assert {"--unshare-net", "--unshare-pid", "--unshare-user", "--die-with-parent",
            "--clearenv"} <= set(mounts)
    # Sized private tmpfs for /dev/shm and for the working folder (never the host's disk).
    assert mounts[tmpfs["/dev/shm"] - 4:tmpfs["/dev/shm"]] == ["--size", str(64 << 20), "--perms", "1777"]
    assert mounts[tmpfs["/home/student/ps1"] - 4:tmpfs["/home/student/ps1"]][:2] == ["--size", str(64 << 20)]
    assert "/x/run-1/ps1" not in mounts
    assert "--as=536870912" in argv[sep:]
    assert argv[-3:] == ["python", "-m", "ipykernel_launcher"]


FLOOD = r'''
import json, os, multiprocessing, time
report = {}
def fill(path, mb):
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(mb):
                f.write(b"\0" * (1 << 20)); f.flush(); written += 1
    except OSError as e:
        report[path + " error"] = e.errno
    return written
report["shm_mb"] = fill("/dev/shm/flood", 300)
report["cwd_mb"] = fill("flood.bin", 300)
def hog():
    block = bytearray(700 << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(3)
children = [multiprocessing.get_context("fork").Process(target=hog) for _ in range(3)]
for c in children: c.start()
for c in children: c.join(20)
report["children_exit"] = sorted(c.exitcode for c in children)
print("PROBE " + json.dumps(report))
'''
# A cell of its own: its flood of display updates is capped, the report above is not.
FLOOD_OUTPUT = r'''
import os
from IPython.display import display
os.write(1, b"x" * (20 << 20))
os.write(2, b"\x1b[31m" * (1 << 20))
h = display("start", display_id=True)
for i in range(200):
    h.update("<script>alert(1)</script>" + "u" * 100_000)
'''


def _sandbox_rss(marker: str) -> int:
    """Resident memory of every live process of the sandbox whose command line names ``marker``,
    and of their descendants."""
    total, seen = 0, set()
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    if p.pid not in seen:
                        seen.add(p.pid)
                        total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
    return total


def test_a_flooding_submission_stays_inside_the_bounds_of_the_whole_sandbox(short_tmp, released_course):
    """Do /dev/shm, the working folder, three memory-hungry children, raw writes to fd 1 and 2 and
    display updates all stay within the sandbox's stated bounds while the flood runs?"""
    import threading

    course = copy_course(released_course, short_tmp)
    submit(course, "flood", [FLOOD, FLOOD_OUTPUT])
    runtime = short_tmp / "runtime"
    peak = [0]
    done = threading.Event()  # set when autograde has returned: the sampler stops

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _sandbox_rss(str(runtime)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        finished = autograde(course, "flood", runtime, timeout=60, memory_mb=1024,
                             execute="autograder.execute.BoundedExecute")
    finally:
        done.set()
        sampler.join(5)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = probe_report(course, "flood")
    assert report["shm_mb"] <= 64 and report["cwd_mb"] <= 64, report
    # The memory cgroup holds everything at once: memory_mb plus the sizes of the tmpfs folders.
    bound = (1024 + 256 + 64 + 64) << 20
    if cgroups.cgroup_parent("memory") is not None:
        assert peak[0] <= bound * 1.1, f"{peak[0] >> 20} MB resident at the peak, bound {bound >> 20} MB"
        assert any(code != 0 for code in report["children_exit"]), report  # some hog was stopped
    assert len(finished.stderr) < 1 << 20, "the kernel's raw fd writes reached the log unbounded"
    assert "\x1b[31m" not in finished.stderr
    graded = course / "autograded" / "flood" / LESSON / f"{LESSON}.ipynb"
    assert graded.stat().st_size < 2 << 20, "display updates were kept past the output cap"
