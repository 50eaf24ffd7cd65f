"""A pool of long-lived grading processes (``python -m autograder.worker``), each bounded per job.

:class:`WorkerProcess` is one such process: it takes one job at a time over
its stdin and answers on its stdout with the result and the files to
publish. A job that overruns its limit, or a process that dies, still gives
a result row (``timeout`` or ``error``) and the process is killed with
everything it started, then restarted for the next job. :func:`grade_all`
keeps a list of them busy from one queue, with a progress bar; on Ctrl-C the
jobs in flight are left ungraded (a re-run grades them).

Nothing here writes the batch's outputs: answers go to ``on_result``, called
in the caller's thread of control under a lock (the parent is the only writer).
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from .discover import row
from .proctree import kill_tree
from .worker import Job

__all__ = ["WorkerProcess", "grade_all", "error_answer", "WORKER_OVERHEAD_S"]

WORKER_OVERHEAD_S = 90  # kernel starts, feedback, bookkeeping beyond the notebook limit


def error_answer(job: Job, status: str, reason: str) -> dict:
    """The answer for a job no worker could answer: a row with its status and why, no files."""
    return {"result": {**row(job.student, job.lesson, status, reason), "tests": [],
                       "mode": "sandbox" if job.sandbox else "no-sandbox"}, "files": {}}


#: Kernels talk over Unix sockets in a job folder under the worker's TMPDIR, and a socket path has
#: at most 107 bytes: TMPDIR/cw-XXXXXXXX/course-grade-XXXXXXXX/ipc/k-NNNNN (the sandbox's
#: TMPDIR/cw-XXXXXXXX/sbx-XXXXXXXX is within autograder.sandbox's 90) fits when TMPDIR has 60.
MAX_TMPDIR_CHARS = 60


def scratch_root() -> str:
    """Where the workers' temporary folders go: the system's, unless its path is too long for the
    kernels' Unix sockets (measured: every kernel failed to start, the row an ``error``); then /tmp."""
    base = tempfile.gettempdir()
    return base if len(base) <= MAX_TMPDIR_CHARS else "/tmp"


class WorkerProcess:
    """One long-lived worker process, restarted after an overrun.

    Methods for the caller: ``start()`` (also called by ``grade``),
    ``grade(job)`` (blocks at most the job's time limit) and ``close()``. The
    process runs in its own session, so a Ctrl-C in the terminal reaches only
    the parent, which then closes every worker and kills what they started.
    """

    def __init__(self, log_path: Path, memory_mb: int | None, batch: Path):
        self.log_path = log_path
        self.memory_mb = memory_mb
        self.batch = batch
        self.proc: subprocess.Popen | None = None
        self.scratch: str | None = None  # the process's TMPDIR: removed with it, whatever it left there
        self.closed = False  # set by close(): a job in flight is abandoned, not recorded

    def start(self) -> None:
        if self.closed:
            raise RuntimeError("worker closed")
        if self.proc is not None and self.proc.poll() is not None:
            self._stop_process()  # it died by itself: its scratch folder goes with it
        if self.proc is None:
            self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # --batch only names the batch in `ps`, so an instructor can tell workers apart.
        cmd = [sys.executable, "-m", "autograder.worker", "--batch", str(self.batch)]
        if self.memory_mb:
            cmd += ["--memory-mb", str(self.memory_mb)]
        # Its own temporary folder: a worker killed mid-job (an overrun, Ctrl-C) cannot remove
        # its scratch folders itself, so _stop_process removes this one.
        self.scratch = tempfile.mkdtemp(prefix="cw-", dir=scratch_root())
        env = {**os.environ, "TMPDIR": self.scratch}
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                    text=True, start_new_session=True, env=env)

    def grade(self, job: Job) -> dict | None:
        """``{"result": ..., "files": ...}`` for one job, even when the worker overruns or dies;
        None when the worker was closed meanwhile (Ctrl-C)."""
        limit = job.limits["notebook_timeout"] + WORKER_OVERHEAD_S
        started = time.monotonic()
        try:
            self.start()
        except RuntimeError:  # closed meanwhile (Ctrl-C)
            return None
        proc = self.proc  # close() may clear self.proc from another thread at any moment
        answer = None
        try:
            proc.stdin.write(json.dumps(asdict(job)) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], limit)
            line = proc.stdout.readline() if ready else ""
            answer = json.loads(line) if line.strip() else None
        except (OSError, ValueError, AttributeError):  # the worker died, or close() closed its pipes
            answer = None
        if self.closed:
            return None
        if not (isinstance(answer, dict) and isinstance(answer.get("result"), dict)):
            timed_out = time.monotonic() - started >= limit
            self._stop_process()
            reason = (f"grading did not finish within {limit} s and was stopped" if timed_out
                      else f"the grading worker died (see {self.log_path})")
            answer = error_answer(job, "timeout" if timed_out else "error", reason)
        answer["result"]["seconds"] = round(time.monotonic() - started, 2)
        return answer

    def close(self) -> None:
        """Stop the worker and everything it started; no further job is taken."""
        self.closed = True
        self._stop_process()

    def _stop_process(self) -> None:
        proc, self.proc = self.proc, None
        scratch, self.scratch = self.scratch, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        kill_tree(proc.pid)
        proc.wait()
        try:
            proc.stdout.close()
        except (OSError, ValueError):  # a feeder thread may be reading it as it is closed
            pass
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def grade_all(jobs: list[Job], workers: list[WorkerProcess], on_result, *, progress: bool) -> None:
    """Grade ``jobs`` with ``workers``; call ``on_result(job, answer)`` once per finished job."""
    from tqdm import tqdm

    pending: queue.Queue = queue.Queue()
    for job in jobs:
        pending.put(job)
    lock = threading.Lock()  # guards on_result and the progress bar; taken by every feeder thread
    stop = threading.Event()  # set by the main thread on Ctrl-C: feeders take no new job
    failed = [0]
    bar = tqdm(total=len(jobs), unit="nb", desc="grading", disable=not progress, file=sys.stderr)

    def feed(worker: WorkerProcess) -> None:
        while not stop.is_set():
            try:
                job = pending.get_nowait()
            except queue.Empty:
                return
            answer = worker.grade(job)
            if answer is None:  # interrupted: left ungraded, so a re-run grades it
                return
            with lock:
                on_result(job, answer)
                failed[0] += answer["result"].get("status") != "graded"
                bar.set_postfix(failed=failed[0])
                bar.update()

    threads = [threading.Thread(target=feed, args=(w,), name=f"feeder-{n}", daemon=True)
               for n, w in enumerate(workers)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    finally:
        stop.set()
        for w in workers:
            w.close()  # unblocks a feeder waiting on its worker
        for t in threads:
            t.join(10)
        bar.close()
