"""Grade a class: every ``SUBMISSIONS/<student>/<lesson>/`` in bounded workers.

Each submission is graded by a worker process (``autograder.worker``) in a
throw-away course directory; this module finds the submissions, builds the
lesson template once, keeps ``jobs`` long-lived workers busy, kills a
worker's whole process tree when a job overruns, and writes ``grades.csv``.

Results are kept per submission (``results/<student>/<lesson>.json``) with a
fingerprint of the submitted files: a batch that was interrupted resumes
where it stopped, and a submission is graded again only when its files
changed or ``force`` is given. Nothing under SUBMISSIONS is ever written.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from . import lessons as lessons_mod
from .config import Limits
from .lessons import CourseError
from .release import build_course
from .worker import Job, _write_json

CSV_COLUMNS = ["student_id", "lesson", "score", "max_score", "status", "reason", "mode"]
WORKER_OVERHEAD_S = 90  # kernel starts, feedback, bookkeeping beyond the notebook limit


@dataclass
class Found:
    """What was found under SUBMISSIONS: gradable jobs and rows to report as they are."""

    jobs: list[tuple[str, str, Path]]   # (student, lesson, folder)
    rows: list[dict]                    # missing / error rows decided without grading


def discover(submissions: Path, lesson_ids: list[str] | None = None) -> tuple[Found, list[str]]:
    """Find ``<student>/<lesson>/`` folders; unusable entries become error rows."""
    if not submissions.is_dir():
        raise CourseError(f"no such folder: {submissions}")
    known = lessons_mod.all_lessons()
    found = Found(jobs=[], rows=[])
    seen_lessons: set[str] = set()
    students = []
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            found.rows.append(_row(entry.name, "", "error", f"{entry.name} is a file, not a student folder"))
            continue
        students.append(entry.name)
        for lesson_dir in sorted(entry.iterdir()):
            if lesson_dir.name.startswith("."):
                continue
            if not lesson_dir.is_dir() or lesson_dir.name not in known:
                found.rows.append(_row(entry.name, lesson_dir.name, "error",
                                       f"{entry.name}/{lesson_dir.name} is not a lesson folder "
                                       f"(lessons: {', '.join(known)})"))
                continue
            if lesson_ids and lesson_dir.name not in lesson_ids:
                continue
            seen_lessons.add(lesson_dir.name)
            found.jobs.append((entry.name, lesson_dir.name, lesson_dir))
    lessons = lesson_ids or sorted(seen_lessons)
    submitted = {(s, l) for s, l, _ in found.jobs}
    for student in students:
        for lesson in lessons:
            if (student, lesson) not in submitted:
                found.rows.append(_row(student, lesson, "missing", "nothing submitted"))
    return found, lessons


def _row(student, lesson, status, reason, score=0.0, max_score=0.0, mode=""):
    return {"student_id": student, "lesson": lesson, "score": score, "max_score": max_score,
            "status": status, "reason": reason, "mode": mode}


def fingerprint(folder: Path) -> str:
    """A hash of a submission's files (names and bytes), to know when to regrade."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def grade(submissions: Path, *, out: Path, lessons: list[str] | None = None, jobs: int | None = None,
          limits: Limits = Limits(), sandbox: bool = False, force: bool = False,
          progress: bool = True) -> list[dict]:
    """Grade every submission under ``submissions`` into ``out``; return the CSV rows."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if out == submissions or submissions in out.parents:
        raise CourseError("--out must not be inside SUBMISSIONS (submissions are never written)")
    lesson_ids = lessons_mod.resolve(lessons) if lessons else None
    found, lesson_ids = discover(submissions, lesson_ids)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1

    todo, done = [], []
    for student, lesson, folder in found.jobs:
        job_result = out / "results" / student / f"{lesson}.json"
        stamp = fingerprint(folder)
        if not force and job_result.exists():
            previous = json.loads(job_result.read_text(encoding="utf-8"))
            if previous.get("fingerprint") == stamp:
                done.append(previous)
                continue
        todo.append((student, lesson, folder, stamp))

    if todo:
        # Workers start (and import nbgrader) while the lesson template is built.
        workers = [Worker(out / "logs" / f"worker-{n}.log", None if sandbox else limits.memory_mb)
                   for n in range(min(jobs, len(todo)))]
        try:
            for w in workers:
                w.start()
            with tempfile.TemporaryDirectory(prefix="course-template-") as tmp:
                template = build_course(Path(tmp), sorted({l for _, l, _, _ in todo}))
                done.extend(_run_all(todo, template, out, limits, sandbox, workers, progress))
        finally:
            for w in workers:
                w.close()

    _write_outputs(out, done + found.rows)
    return sorted((_csv_row(r) for r in done + found.rows), key=lambda r: (r["student_id"], r["lesson"]))


def _write_outputs(out: Path, results: list[dict]) -> None:
    from .report import write_report

    rows = sorted((_csv_row(r) for r in results), key=lambda r: (r["student_id"], r["lesson"]))
    write_csv(out / "grades.csv", rows)
    write_report(results, out)


def rebuild(out: Path) -> list[dict]:
    """grades.csv and report.html again from ``out/results`` (no grading)."""
    out = Path(out)
    if not (out / "results").is_dir():
        raise CourseError(f"{out} holds no results/ folder: not the --out of `course grade`")
    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "results").glob("*/*.json"))]
    _write_outputs(out, results)
    return [_csv_row(r) for r in results]


def _run_all(todo, template: Path, out: Path, limits: Limits, sandbox: bool, workers: list, progress: bool):
    """Grade ``todo`` with long-lived ``workers``; one result per submission."""
    from tqdm import tqdm

    pending: queue.Queue = queue.Queue()
    for student, lesson, folder, stamp in todo:
        pending.put((Job(student=student, lesson=lesson, submission=str(folder), template=str(template),
                         out=str(out), limits=asdict(limits), sandbox=sandbox), stamp))
    results: list[dict] = []
    lock = threading.Lock()  # guards results and the progress bar; taken by every feeder thread
    stop = threading.Event()  # set by the main thread on Ctrl-C: feeders take no new job
    bar = tqdm(total=len(todo), unit="nb", desc="grading", disable=not progress, file=sys.stderr)

    def feed(worker: Worker) -> None:
        while not stop.is_set():
            try:
                job, stamp = pending.get_nowait()
            except queue.Empty:
                return
            result = worker.grade(job, stamp)
            if result is None:  # interrupted: left ungraded, so a re-run grades it
                return
            with lock:
                results.append(result)
                bar.set_postfix(failed=sum(r["status"] != "graded" for r in results))
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
    return results


class Worker:
    """One long-lived ``python -m autograder.worker`` process, restarted after an overrun.

    Methods for the caller: ``grade(job, stamp)`` (blocks at most the job's
    time limit) and ``close()``. The process runs in its own session, so a
    Ctrl-C in the terminal reaches only the parent, which then closes every
    worker and kills what they started.
    """

    def __init__(self, log_path: Path, memory_mb: int | None):
        self.log_path = log_path
        self.memory_mb = memory_mb
        self.proc: subprocess.Popen | None = None
        self.closed = False  # set by close(): a job in flight is abandoned, not recorded

    def start(self) -> None:
        if self.closed:
            raise RuntimeError("worker closed")
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # --batch only names the batch in `ps`, so an instructor can tell workers apart.
        cmd = [sys.executable, "-m", "autograder.worker", "--batch", str(self.log_path.parent.parent)]
        if self.memory_mb:
            cmd += ["--memory-mb", str(self.memory_mb)]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                    text=True, start_new_session=True)

    def grade(self, job: Job, stamp: str) -> dict | None:
        """Grade one job: a result row even when the worker overruns or dies,
        None when the worker was closed meanwhile (Ctrl-C)."""
        limit = job.limits["notebook_timeout"] + WORKER_OVERHEAD_S
        started = time.monotonic()
        job.result_path.unlink(missing_ok=True)
        self.start()
        answered = False
        try:
            self.proc.stdin.write(json.dumps(asdict(job)) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], limit)
            answered = bool(ready) and bool(self.proc.stdout.readline())
        except (OSError, ValueError):  # the worker died, or close() closed its pipes
            answered = False
        if self.closed:
            job.result_path.unlink(missing_ok=True)
            return None
        if answered and job.result_path.exists():
            result = json.loads(job.result_path.read_text(encoding="utf-8"))
        else:
            timed_out = time.monotonic() - started >= limit
            self._stop_process()
            reason = (f"grading did not finish within {limit} s and was stopped" if timed_out
                      else f"the grading worker died (see {self.log_path})")
            result = {**_row(job.student, job.lesson, "timeout" if timed_out else "error", reason),
                      "tests": []}
        result["fingerprint"] = stamp
        result["seconds"] = round(time.monotonic() - started, 2)
        result.setdefault("mode", "sandbox" if job.sandbox else "no-sandbox")
        _write_json(job.result_path, result)
        return result

    def close(self) -> None:
        """Stop the worker and everything it started; no further job is taken."""
        self.closed = True
        self._stop_process()

    def _stop_process(self) -> None:
        proc, self.proc = self.proc, None
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
        proc.stdout.close()


def kill_tree(pid: int) -> None:
    """Kill a process and everything it started (kernels run in their own sessions)."""
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def _csv_row(result: dict) -> dict:
    return {k: result.get(k, "") for k in CSV_COLUMNS}


def write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    os.replace(tmp, path)


def summary(rows: list[dict]) -> str:
    """A one-screen summary: counts by status and the mean score per lesson."""
    lines = []
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    lines.append("rows: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    lessons = sorted({r["lesson"] for r in rows if r["lesson"]})
    for lesson in lessons:
        graded = [r for r in rows if r["lesson"] == lesson and r["status"] != "missing" and r["max_score"]]
        if graded:
            mean = sum(float(r["score"]) for r in graded) / len(graded)
            lines.append(f"{lesson}: mean {mean:.1f} / {float(graded[0]['max_score']):g} "
                         f"over {len(graded)} submission(s)")
    problems = [r for r in rows if r["status"] not in ("graded", "missing")]
    for r in problems[:10]:
        lines.append(f"  {r['status']:<11} {r['student_id']}/{r['lesson']}: {r['reason'][:100]}")
    if len(problems) > 10:
        lines.append(f"  ... and {len(problems) - 10} more (see grades.csv)")
    return "\n".join(lines)
