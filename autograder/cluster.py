"""Grade on a Dask cluster: ``course grade SUBMISSIONS --out DIR --cluster ADDRESS``.

One machine grades a class well; a term's re-grade or a MOOC needs more. Each
submission becomes one task of Dask's ``distributed`` scheduler, and the task
runs on whichever machine takes it *the same grading worker a local run uses*
(``python -m autograder.worker`` driven by :class:`~autograder.pool.WorkerProcess`:
the normalized notebook, the judge kernel, the sandbox, the limits and the
time bound). No shared file system is assumed: the lesson template (built
once here) is sent once to every worker, and each task carries its
submission's notebook files. The parent stays the only writer of
``results/``, ``grades.csv``, feedback and the report, so the output is the
same as a local run's apart from timings.

``ADDRESS`` is a scheduler address (``tcp://host:8786``: a cluster started by
``dask-jobqueue`` on Slurm/PBS or ``dask-kubernetes``, see docs/cluster.md)
or ``local:N``, an in-process ``LocalCluster`` of N worker processes (tests,
one big machine).

What it trades off and guarantees:

* A worker process grades one submission at a time (start workers with
  ``--nthreads 1``; with more threads, tasks queue on a lock) and keeps one
  grading worker process alive between tasks, so nbgrader's imports are paid
  once per machine, not once per submission.
* A worker that dies mid-task (killed, out of memory, its machine gone) costs
  a retry on another: the scheduler reschedules the task, and the parent
  records a row only when a task's answer arrives — never twice, never lost.
  A submission that kills three workers in a row is recorded as an ``error``.
* Ctrl-C cancels what is in flight; those submissions are left ungraded and
  a re-run grades them, as locally.
* A worker whose sandbox cannot start refuses the task, naming its machine;
  the batch stops before anything is graded when a connected worker lacks it.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

from .lessons import CourseError
from .worker import Job

__all__ = ["WorkerRefused", "require_dask", "connect", "pack_submission", "unpack_submission", "pack_template",
           "prestart", "grade_task", "grade_on_cluster", "workers_state", "sandbox_problem"]

INSTALL_HINT = "--cluster needs Dask's distributed scheduler: pip install -e '.[cluster]'"


class WorkerRefused(RuntimeError):
    """A cluster worker cannot grade (its sandbox does not start); the message names the machine."""


# ------------------------------------------------------------------ the parent


def require_dask() -> None:
    """Stop with what to install when Dask's ``distributed`` is missing (it is an optional extra)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise CourseError(INSTALL_HINT) from None


def connect(address: str):
    """``(client, cluster)`` for ``address``: ``local:N`` starts N worker processes here
    (``cluster`` is then theirs to close), anything else is a running scheduler's address."""
    require_dask()
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        try:
            n = int(address.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise CourseError(f"--cluster {address}: expected local:N with N >= 1 worker processes")
        # memory_limit=0: the grading worker's own limits bound memory; Dask's nanny must not
        # restart a worker because a kernel it started is large.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=0,
                               dashboard_address=None, silence_logs=40)
        return Client(cluster), cluster
    try:
        return Client(address, timeout=30), None
    except OSError as error:
        raise CourseError(f"--cluster {address}: cannot reach the scheduler ({error})") from None


def workers_state(client) -> str:
    """``"3 workers, 2 busy"``: what the progress bar shows of the cluster."""
    processing = client.processing()
    busy = sum(1 for keys in processing.values() if keys)
    return f"{len(processing)} worker{'' if len(processing) == 1 else 's'}, {busy} busy"


def _check_workers(client, sandbox: bool) -> None:
    """Stop before grading if a connected worker could not sandbox (or there is no worker)."""
    if not client.scheduler_info().get("workers"):
        client.wait_for_workers(1, timeout=60)
    if not sandbox:
        return
    problems = [f"{address}: {why}" for address, why in client.run(sandbox_problem).items() if why]
    if problems:
        raise CourseError("the grading sandbox cannot start on every cluster worker — "
                          + "; ".join(problems) + " (install bubblewrap there and allow user namespaces)")


def grade_on_cluster(address: str, batch: list[Job], template: Path, on_result, *, progress: bool,
                     name: str) -> None:
    """Grade ``batch`` on the cluster; call ``on_result(job, answer)`` once per finished job,
    in this thread (the caller is the only writer)."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from tqdm import tqdm

    from .pool import error_answer

    client, cluster = connect(address)
    futures = {}
    try:
        _check_workers(client, batch[0].sandbox if batch else False)
        if batch:
            client.run(prestart, _worker_memory(batch[0]), name)
        blob = client.scatter(pack_template(template, {job.lesson for job in batch}), broadcast=True)
        max_bytes = batch[0].limits["max_notebook_mb"] << 20 if batch else 0
        for job in batch:
            packed = pack_submission(Path(job.submission), max_bytes)
            future = client.submit(grade_task, asdict(job), blob, packed, name, pure=False,
                                   key=f"grade-{job.student}-{job.lesson}-{os.urandom(4).hex()}")
            futures[future] = job
        failed = 0
        bar = tqdm(total=len(batch), unit="nb", desc="grading", disable=not progress, file=sys.stderr)
        bar.set_postfix(cluster=workers_state(client))
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    answer = future.result()
                except WorkerRefused as refused:
                    print(f"not graded: {job.student}/{job.lesson}: {refused}", file=sys.stderr)
                    continue  # left ungraded: a re-run (on a working machine) grades it
                except FutureCancelledError:
                    continue
                except Exception as error:  # e.g. KilledWorker: it took down every worker it ran on
                    answer = error_answer(job, "error", f"the cluster could not grade it: "
                                                        f"{type(error).__name__}: {str(error)[:200]}")
                on_result(job, answer)
                failed += answer["result"].get("status") != "graded"
                bar.set_postfix(failed=failed, cluster=workers_state(client))
                bar.update()
        finally:
            bar.close()
    finally:
        for future in futures:
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------ what a task carries


def pack_submission(folder: Path, max_bytes: int) -> dict:
    """The submission folder's entries as data, for a machine that cannot see the folder.

    Kept as they are, so the worker's :func:`~autograder.worker.read_submitted` decides exactly
    as it would locally: a link stays a link (never followed here), a file over the limit stays
    over it (sent as its size, not its bytes), anything else stays "not a regular file"; a stray
    file is sent as its name only (it is listed, never read) and every entry keeps its time
    (the newest notebook is graded when none has the expected name).
    """
    from .worker import BOOKKEEPING

    packed = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}  # the worker then says it cannot list the folder
    for entry in entries:
        if entry.name in BOOKKEEPING:
            continue
        info = entry.stat(follow_symlinks=False)
        when = info.st_mtime_ns
        if not entry.name.endswith(".ipynb"):
            packed[entry.name] = ("dir" if stat.S_ISDIR(info.st_mode) else "stray", "", when)
        elif stat.S_ISLNK(info.st_mode):
            packed[entry.name] = ("link", os.readlink(entry.path), when)
        elif not stat.S_ISREG(info.st_mode):
            packed[entry.name] = ("other", "", when)
        elif info.st_size > max_bytes:
            packed[entry.name] = ("big", info.st_size, when)
        else:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                packed[entry.name] = ("file", f.read(max_bytes + 1), when)
    return packed


def unpack_submission(packed: dict, into: Path) -> Path:
    """Recreate a packed submission folder in ``into`` (a fresh folder of the worker's)."""
    into.mkdir(parents=True, exist_ok=True)
    for name, (kind, value, *when) in packed.items():
        if "/" in name or name in (".", ".."):
            continue  # os.scandir never names such an entry; refuse one that was forged
        path = into / name
        if kind == "file":
            path.write_bytes(value)
        elif kind == "link":
            os.symlink(value, path)
        elif kind == "big":
            with open(path, "wb") as f:
                f.truncate(int(value))  # sparse: its size is all that is read
        elif kind == "stray":
            path.touch()
        else:  # "dir", and "other" (not a regular file: a folder stands for it)
            path.mkdir()
        if when:
            os.utime(path, ns=(int(when[0]), int(when[0])), follow_symlinks=False)
    return into


def pack_template(template: Path, lessons: set[str]) -> bytes:
    """The course template (source, release, gradebook) of ``lessons`` as one tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(template / "gradebook.db", arcname="gradebook.db")
        for kind in ("source", "release"):
            for lesson in sorted(lessons):
                tar.add(template / kind / lesson, arcname=f"{kind}/{lesson}")
    return buffer.getvalue()


# ------------------------------------------------------------------ on a worker

_templates: dict[str, Path] = {}   # sha256 of a template blob -> where it is unpacked
_grading: dict[tuple, object] = {}  # (memory limit, batch) -> this process's WorkerProcess
_one_at_a_time = threading.Lock()  # a worker with several threads still grades one at a time
_scratch_dirs: list[Path] = []


def _scratch() -> Path:
    """This worker process's own folder for templates and submissions (removed at its exit)."""
    if not _scratch_dirs:
        _scratch_dirs.append(Path(tempfile.mkdtemp(prefix="course-cluster-")))
        atexit.register(shutil.rmtree, _scratch_dirs[0], True)
    return _scratch_dirs[0]


def sandbox_problem() -> str:
    """Why this machine cannot sandbox ("" when it can), naming the machine."""
    from . import sandbox
    from .precheck import sandbox_precheck

    ok, why = sandbox.available()
    if ok:  # the probe's reduced command can pass where the kernels' real one fails (a masked /proc)
        ok, why = sandbox_precheck()
    return "" if ok else f"{socket.gethostname()}: {why}"


def _template_dir(blob: bytes) -> Path:
    digest = hashlib.sha256(blob).hexdigest()
    if digest not in _templates:
        target = _scratch() / f"template-{digest[:16]}"
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            tar.extractall(target, filter="data")
        _templates[digest] = target
    return _templates[digest]


def _worker_memory(job: Job) -> int:
    from .config import Limits

    limits = Limits(**job.limits)
    return limits.worker_memory_mb if job.sandbox else limits.memory_mb


def _grading_worker(memory_mb: int, batch: str):
    """This process's grading worker for ``batch`` (started once; another batch's is replaced)."""
    from .pool import WorkerProcess

    worker = _grading.get((memory_mb, batch))
    if worker is None:
        for old in _grading.values():
            old.close()
        _grading.clear()
        worker = _grading[(memory_mb, batch)] = WorkerProcess(_scratch() / "worker.log", memory_mb, Path(batch))
    worker.start()
    return worker


def prestart(memory_mb: int, batch: str) -> None:
    """Start the grading worker now, so its imports overlap the batch being sent (client.run)."""
    _grading_worker(memory_mb, batch)


def grade_task(job: dict, template_blob: bytes, packed: dict, batch: str) -> dict:
    """Run on a cluster worker: grade one submission exactly as a local worker does
    (``batch`` names the batch in ``ps`` on that machine, as locally)."""
    with _one_at_a_time:
        job = Job(**job)
        if job.sandbox:
            why = sandbox_problem()
            if why:
                raise WorkerRefused(f"the grading sandbox cannot start on {why}")
        folder = _scratch() / f"submission-{os.urandom(6).hex()}"
        try:
            job.submission = str(unpack_submission(packed, folder))
            job.template = str(_template_dir(template_blob))
            return _grading_worker(_worker_memory(job), batch).grade(job)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
