"""`course grade --cluster`: the same grades as a local run, on Dask workers, losing nothing.

A class of the tiny fixture lesson (right, wrong, looping, kernel-killing, tampering, a
symlinked notebook) is graded with `--jobs 2` and with `--cluster local:2` (two Dask worker
processes that see the submissions only through what each task carries); then a Dask worker
is killed while it grades, and the batch still ends with one row per submission.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.submissions import MINI_COURSE, course_env, grade, grading_processes, make_submission
from tests.waiting import wait_until

pytest.importorskip("distributed")

from autograder import cluster  # noqa: E402
from autograder.lessons import CourseError  # noqa: E402

LESSON = "01-mini"
TAMPERS = ("from course_lib import grading\ngrading.expect_equal = lambda *a, **k: None\n"
           "def double(x):\n    return 0")
# Kills its kernel with allowed code only: deep recursion through C in a thread with a tiny stack.
CRASHES = ("import threading\ndef double(x):\n    def dive(n):\n        return n if n == 0 else list(map(dive, [n - 1]))\n"
           "    threading.stack_size(32768)\n    t = threading.Thread(target=dive, args=(900,))\n"
           "    t.start()\n    t.join()")
KINDS = {
    "correct": {},
    "wrong": {"double": "def double(x):\n    return x + 2"},
    "looping": {"double": "def double(x):\n    while True:\n        pass"},
    "exits": {"double": CRASHES},
    "tampers": {"double": TAMPERS},
}
COMPARED = ("student_id", "lesson", "score", "max_score", "status", "reason", "mode")


def _rows(out: Path) -> list[tuple]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return [tuple(r[k] for k in COMPARED) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def graded_both_ways(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    for kind, replace in KINDS.items():
        make_submission(root, kind, LESSON, replace, notebooks=MINI_COURSE)
    linked = make_submission(root, "linked", LESSON, notebooks=MINI_COURSE)
    linked.unlink()
    linked.symlink_to(MINI_COURSE / LESSON / f"{LESSON}.ipynb")
    local, dask = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("dask")
    flags = ("--cell-timeout", "3")
    sandboxed = () if _sandbox_ok() else ("--no-sandbox",)
    grade(root, local, "--jobs", "2", *flags, *sandboxed, notebooks=MINI_COURSE)
    grade(root, dask, "--cluster", "local:2", *flags, *sandboxed, notebooks=MINI_COURSE)
    return local, dask


def _sandbox_ok() -> bool:
    from autograder import sandbox

    return sandbox.available()[0]


@pytest.mark.slow
def test_a_cluster_gives_the_same_grades_statuses_and_reasons_as_local_workers(graded_both_ways):
    """Do scores, statuses and reasons agree row for row, the odd submissions included?"""
    local, dask = graded_both_ways
    rows = _rows(local)
    assert _rows(dask) == rows
    statuses = {r[0]: r[4] for r in rows}
    assert statuses == {"correct": "graded", "wrong": "graded", "looping": "timeout-partial", "exits": "kernel_died",
                        "tampers": "rejected", "linked": "error"}, rows


@pytest.mark.slow
def test_a_cluster_publishes_the_same_feedback_and_results(graded_both_ways):
    """Are the feedback pages and graded notebooks the same files, and the results the same
    apart from timings?"""
    local, dask = graded_both_ways

    def published(out):
        return {str(p.relative_to(out)) for kind in ("feedback", "autograded") for p in (out / kind).rglob("*")
                if p.is_file()}

    assert published(dask) == published(local) != set()
    for student in KINDS:
        mine, theirs = (json.loads((out / "results" / student / f"{LESSON}.json").read_text())
                        for out in (local, dask))
        for data in (mine, theirs):
            for key in ("seconds", "timing"):
                data.pop(key, None)
        assert theirs == mine, student
        page = Path("feedback") / student / LESSON / f"{LESSON}.html"
        if (local / page).exists():
            assert _verdict_text(dask / page) == _verdict_text(local / page), student


def _verdict_text(page: Path) -> str:
    """A feedback page without what differs between two runs of one submission: timestamps, and
    execution counts (a kernel that crashes may or may not number its last cell)."""
    import re

    text = re.sub(r"In&nbsp;\[(&nbsp;|\d+)\]:", "In []:", page.read_text(encoding="utf-8"))
    return "\n".join(line for line in text.splitlines() if "timestamp" not in line.lower())


SLOW = "import time\ntime.sleep(2)\ndef total(items):\n    return sum(items)"


def _start_slow_batch(tmp_path: Path, count: int = 4):
    """``course grade --cluster local:2`` started on ``count`` submissions that take 2 s each."""
    root, out = tmp_path / "submitted", tmp_path / "out"
    students = [f"s{n}" for n in range(count)]
    for student in students:
        make_submission(root, student, LESSON, {"total": SLOW}, notebooks=MINI_COURSE)
    cmd = [sys.executable, "-m", "autograder.cli", "grade", str(root), "--out", str(out), "--no-sandbox",
           "--cluster", "local:2", "--quiet"]
    proc = subprocess.Popen(cmd, env=course_env(MINI_COURSE), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    return root, out, students, proc


@pytest.mark.slow
def test_a_worker_killed_mid_task_costs_a_retry_never_a_lost_or_doubled_row(tmp_path):
    """Kill -9 the Dask worker whose kernel is grading a submission: is that submission graded on
    another worker in the same run, and does every submission get exactly one row?"""
    root, out, students, proc = _start_slow_batch(tmp_path)
    try:
        def grading_now():
            """(the Dask worker process, the student) of a kernel that is grading right now: an
            unsandboxed kernel works in nbgrader's autograded/<student>/<lesson>/ folder."""
            for child in psutil.Process(proc.pid).children(recursive=True):
                try:
                    if "autograder.worker" not in " ".join(child.cmdline()):
                        continue
                    for kernel in child.children():
                        cwd = Path(kernel.cwd())
                        if cwd.name == LESSON and cwd.parents[1].name == "autograded":
                            return child.parent(), cwd.parent.name
                except (psutil.Error, OSError, IndexError):
                    continue
            return None

        found = wait_until(grading_now, timeout=120, interval=0.05)
        assert found, "no worker started grading within 120 s"
        victim, student = found
        victim.send_signal(signal.SIGKILL)
        assert wait_until(lambda: (out / "results" / student / f"{LESSON}.json").exists(), timeout=120,
                          interval=0.05), f"{student}, whose worker was killed, was not graded on another"
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, stderr
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["student_id"], r["score"], r["status"]) for r in rows) == [
        (s, "5.0", "graded") for s in students], "one row per submission, none lost or doubled"
    assert wait_until(lambda: not grading_processes(out), timeout=10)


@pytest.mark.slow
def test_ctrl_c_leaves_the_tasks_in_flight_ungraded_and_the_same_command_finishes(tmp_path):
    """After Ctrl-C mid-batch on a cluster, does the same command grade only what is missing, to
    the same grades, one row each, with no process left behind?"""
    root, out, students, proc = _start_slow_batch(tmp_path)
    try:
        assert wait_until(lambda: list(out.glob("results/*/*.json")), timeout=120, interval=0.05), \
            "no submission was graded within 120 s"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130 and "run the same command again" in stderr, stderr
    def grading_of(path):  # what only a grading writes: a reused result is rewritten (priced again), not regraded
        data = json.loads(path.read_text(encoding="utf-8"))
        return json.dumps([data.get("timing"), data.get("seconds")])

    first = {p.parent.name: grading_of(p) for p in out.glob("results/*/*.json")}
    assert 0 < len(first) < len(students), "Ctrl-C came before the end of the batch"
    rows = grade(root, out, "--no-sandbox", "--cluster", "local:2", notebooks=MINI_COURSE)
    assert {k[0]: (r["score"], r["status"]) for k, r in rows.items()} == {s: ("5.0", "graded") for s in students}
    assert {s: grading_of(out / "results" / s / f"{LESSON}.json") for s in first} == first, \
        "what was graded before Ctrl-C was graded again"
    assert wait_until(lambda: not grading_processes(out), timeout=10)


def test_without_dask_the_option_says_what_to_install(tmp_path):
    """Does --cluster without distributed end with the pip command, not a traceback?"""
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from autograder.cli import main\n"
            f"sys.exit(main(['grade', {str(tmp_path / 'in')!r}, '--out', {str(tmp_path / 'o')!r}, "
            "'--cluster', 'local:2']))")
    proc = subprocess.run([sys.executable, "-c", code], env=course_env(MINI_COURSE), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "pip install -e '.[cluster]'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_local_size_is_a_clear_error():
    """Is local:0 or local:x refused with what is expected?"""
    for address in ("local:0", "local:x"):
        with pytest.raises(CourseError, match="expected local:N with N >= 1"):
            cluster.connect(address)


@pytest.mark.slow
def test_a_worker_without_a_sandbox_is_named_and_nothing_is_graded(tmp_path):
    """With bubblewrap missing on a worker's machine (its PATH has no bwrap), does the batch stop
    before grading and name that worker, and does a task that reaches it anyway refuse?"""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit=0,
                      dashboard_address=None, silence_logs=40, env={"PATH": str(tmp_path)}) as here, \
            Client(here) as client:
        assert cluster.workers_state(client) == "1 worker, 0 busy"  # what the progress bar shows
        with pytest.raises(CourseError, match="cannot start on every cluster worker.*bubblewrap"):
            cluster._check_workers(client, sandbox=True)
        job = {"student": "s", "lesson": LESSON, "submission": "", "template": "", "sandbox": True}
        with pytest.raises(cluster.WorkerRefused, match="cannot start on .*bubblewrap"):
            client.submit(cluster.grade_task, job, b"", {}, "b", pure=False).result(timeout=60)


def test_a_packed_submission_keeps_links_sizes_and_odd_entries_as_they_are(tmp_path):
    """Would a worker on another machine see exactly what read_submitted sees here?"""
    from autograder.worker import SubmissionError, read_submitted

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.ipynb").write_bytes(b'{"cells": []}')
    (folder / "notes.txt").write_text("not sent")
    os.symlink("/etc/passwd", folder / "b.ipynb")
    (folder / "c.ipynb").write_bytes(b"x" * 5000)
    (folder / "d.ipynb").mkdir()
    os.utime(folder / "a.ipynb", (1000, 1000))
    packed = cluster.pack_submission(folder, max_bytes=1000)
    assert set(packed) == {"a.ipynb", "b.ipynb", "c.ipynb", "d.ipynb", "notes.txt"}
    assert packed["c.ipynb"][:2] == ("big", 5000) and packed["notes.txt"][:2] == ("stray", "")
    there = cluster.unpack_submission(packed, tmp_path / "there")
    assert (there / "notes.txt").read_bytes() == b""  # its name travels, not its bytes
    assert (there / "a.ipynb").stat().st_mtime == 1000
    assert read_submitted(there, "a.ipynb", max_bytes=1000) == {"cells": []}
    assert read_submitted(there, "a.ipynb", max_bytes=1000).notes == \
        read_submitted(folder, "a.ipynb", max_bytes=1000).notes
    for name, message in (("b.ipynb", "symbolic link"), ("c.ipynb", "over the"), ("d.ipynb", "not a regular")):
        with pytest.raises(SubmissionError, match=message):
            read_submitted(there, name, max_bytes=1000)
    forged = cluster.unpack_submission({"../escape.ipynb": ("file", b"x")}, tmp_path / "forged")
    assert list(forged.iterdir()) == [] and not (tmp_path / "escape.ipynb").exists()


# ------------------------------------------------------------- docs/cluster.md as written

DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"


def _doc_blocks(language: str) -> list[str]:
    import re

    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("kind", ["SLURMCluster", "PBSCluster"])
def test_the_docs_jobqueue_settings_render_the_job_script_they_promise(kind):
    """Built from docs/cluster.md's settings (its scheduler kept on loopback here), does the
    Slurm or PBS cluster's job script ask for the queue, account, memory and walltime, run the
    prologue, and start 4 Dask worker processes of one thread each, each allowed more memory
    than the grading worker's bound?"""
    import re

    import dask_jobqueue

    from autograder.config import Limits

    block = next(b for b in _doc_blocks("python") if "SLURMCluster(" in b)
    asked = {}

    def build(**settings):
        asked.update(settings)
        # The doc's host 0.0.0.0 is for compute nodes; a test binds loopback only, port 0.
        here = {**settings, "scheduler_options": {"host": "127.0.0.1", "port": 0,
                                                  "dashboard_address": "127.0.0.1:0"}}
        return getattr(dask_jobqueue, kind)(**here)

    namespace = {}
    exec(block.replace("from dask_jobqueue import SLURMCluster\n", ""), {"SLURMCluster": build}, namespace)
    cluster = namespace["cluster"]
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert asked["scheduler_options"] == {"host": "0.0.0.0"}
    header = {"SLURMCluster": ["#SBATCH -p short", "#SBATCH -A cs-teaching", "#SBATCH --mem=23G",
                               "#SBATCH -t 01:00:00", "#SBATCH --cpus-per-task=4"],
              "PBSCluster": ["#PBS -q short", "#PBS -A cs-teaching", "#PBS -l select=1:ncpus=4:mem=23GB",
                             "#PBS -l walltime=01:00:00"]}[kind]
    lines = script.splitlines()
    for line in header + ["module load python/3.11", "source ~/course/.venv/bin/activate"]:
        assert line in lines, f"{line!r} not in\n{script}"
    command = lines[-1]
    assert command.startswith("python -m distributed.cli.dask_worker tcp://127.0.0.1:"), command
    assert lines.index("source ~/course/.venv/bin/activate") < len(lines) - 1, "the prologue runs first"
    for option in ("--nthreads 1", "--nworkers 4", "--nanny"):
        assert option in command, command
    limit = re.search(r"--memory-limit (\S+)", command).group(1)
    from dask.utils import parse_bytes

    assert parse_bytes(limit) > Limits().worker_memory_mb << 20, command
    if kind == "PBSCluster":  # the doc quotes the PBS header it gives
        assert all(f"`{line}`" in DOC.read_text(encoding="utf-8") for line in header)


def test_the_docs_kubernetes_yaml_runs_commands_the_locked_distributed_has():
    """Does the DaskCluster YAML parse, and does each container run `dask worker`/`dask scheduler`
    (not the dask-worker programs the locked distributed no longer ships) with options those
    commands accept, with /proc unmasked for bubblewrap?"""
    from importlib.metadata import entry_points, version

    import yaml

    from tests.test_environment import locked_versions

    assert version("distributed") == locked_versions()["distributed"], "the venv is not the lock's"
    assert version("dask-jobqueue") == locked_versions()["dask-jobqueue"]
    commands = {e.name: e for e in entry_points(group="dask_cli")}
    (text,) = _doc_blocks("yaml")
    spec = yaml.safe_load(text)
    assert spec["kind"] == "DaskCluster" and spec["apiVersion"] == "kubernetes.dask.org/v1"
    pods = {"worker": spec["spec"]["worker"]["spec"], "scheduler": spec["spec"]["scheduler"]["spec"]}
    for role, pod in pods.items():
        (container,) = pod["containers"]
        program, sub, *args = container["args"]
        assert (program, sub) == ("dask", role), container["args"]
        command = commands[sub].load()  # a click command of the locked distributed
        accepted = {opt for param in command.params for opt in param.opts}
        used = [a for a in args if a.startswith("--")]
        assert set(used) <= accepted, f"dask {sub} has no {set(used) - accepted}"
    worker_pod = pods["worker"]
    assert worker_pod["hostUsers"] is False
    assert worker_pod["containers"][0]["securityContext"]["procMount"] == "Unmasked"
    assert "dask-kubernetes-operator" in DOC.read_text(encoding="utf-8"), "the operator's install step"
    import shutil

    assert shutil.which("dask", path=str(Path(sys.executable).parent)), "the cluster extra installs `dask`"


def test_the_docs_precheck_runs_the_sandboxs_real_command_line(monkeypatch):
    """Does `python -m autograder.precheck`, as the doc says to run on every machine, pass here
    where the sandbox works, and did it run the kernels' bwrap command (--unshare-pid --proc)?"""
    from autograder import precheck

    assert "python -m autograder.precheck" in DOC.read_text(encoding="utf-8")
    if not _sandbox_ok():
        pytest.skip("no sandbox on this machine")
    done = subprocess.run([sys.executable, "-m", "autograder.precheck"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "works here" in done.stdout, done.stderr
    ran = []
    real_run = subprocess.run
    monkeypatch.setattr(precheck.subprocess, "run", lambda cmd, **kw: ran.append(cmd) or real_run(cmd, **kw))
    assert precheck.sandbox_precheck()[0]
    (cmd,) = ran
    assert {"--unshare-user", "--unshare-pid", "--proc", "/usr/bin/prlimit"} <= set(cmd)


def test_the_precheck_fails_with_bwraps_own_words(tmp_path):
    """Where bwrap cannot mount /proc (a pod with a masked /proc), does the pre-check exit 1 and
    quote bwrap's error and the doc? (bwrap here is a script that fails as bwrap does there.)"""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: Can'\\''t mount proc on /newroot/proc: Operation not permitted' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    done = subprocess.run([sys.executable, "-m", "autograder.precheck"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert done.returncode == 1
    assert "Can't mount proc on /newroot/proc" in done.stderr and "docs/cluster.md" in done.stderr
