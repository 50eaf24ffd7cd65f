"""Grade a class: every ``SUBMISSIONS/<student>/<lesson>/`` in bounded workers.

The steps, each in its own module: :mod:`autograder.discover` finds the
submissions (never through a link) and fingerprints them; the lesson
template is built once and reused while the lessons do not change
(:func:`autograder.release.cached_course`);
:mod:`autograder.pool` keeps ``jobs`` long-lived worker processes busy, each
job bounded; and this module, the batch's only writer, writes each answer's
files, ``results/<student>/<lesson>.json``, ``grades.csv`` and the report.

A batch that was interrupted resumes where it stopped: a submission is
graded again only when its fingerprint changed or ``force`` is given.
Nothing under SUBMISSIONS is ever written.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict
from pathlib import Path

from . import lessons as lessons_mod
from .config import Limits
from .discover import Unusable, discover, fingerprint, row
from .lessons import CourseError
from .pool import WorkerProcess, grade_all
from .release import cached_course
from .results import read_result, read_results, result_path, write_atomic, write_result
from .worker import Job

__all__ = ["grade", "rebuild", "summary", "write_csv", "CSV_COLUMNS"]

CSV_COLUMNS = ["student_id", "lesson", "score", "max_score", "status", "reason", "mode"]
PUBLISHED = ("autograded", "feedback")


def grade(submissions: Path, *, out: Path, lessons: list[str] | None = None, jobs: int | None = None,
          limits: Limits = Limits(), sandbox: bool = True, force: bool = False,
          progress: bool = True, cluster: str | None = None) -> list[dict]:
    """Grade every submission under ``submissions`` into ``out``; return the CSV rows.

    ``sandbox`` defaults to True, as on the command line; pass False only for trusted code.
    ``cluster`` (a Dask scheduler address or ``local:N``) grades on a cluster's workers instead
    of ``jobs`` local ones (:mod:`autograder.cluster`); the outputs are the same.
    """
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if out == submissions or submissions in out.parents:
        raise CourseError("--out must not be inside SUBMISSIONS (submissions are never written)")
    if cluster:
        from .cluster import require_dask

        require_dask()  # says what to install, before any work
    if sandbox and not cluster:  # on a cluster, every worker checks its own sandbox
        from . import sandbox as sandbox_mod

        ok, why = sandbox_mod.available()
        if not ok:
            raise CourseError(f"the grading sandbox cannot start: {why}")
    lesson_ids = lessons_mod.resolve(lessons) if lessons else None
    found, lesson_ids = discover(submissions, lesson_ids)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1

    todo, done = [], []
    for student, lesson, folder in found.jobs:
        try:
            stamp = fingerprint(folder)
        except Unusable as problem:
            done.append({**row(student, lesson, "error", str(problem)), "tests": []})
            continue
        except OSError as error:
            done.append({**row(student, lesson, "error", f"cannot read the submission: {error.strerror}"),
                         "tests": []})
            continue
        previous = result_path(out, student, lesson)
        if not force and previous.exists():
            old = read_result(previous) or {}
            if old.get("fingerprint") == stamp:
                done.append(old)
                continue
        todo.append((student, lesson, folder, stamp))

    if todo:
        stamps = {(s, l): stamp for s, l, _, stamp in todo}

        def publish(job: Job, answer: dict) -> None:
            result = answer["result"]
            result["fingerprint"] = stamps[(job.student, job.lesson)]
            _publish_files(out, job, answer.get("files") or {})
            write_result(out, result)
            done.append(result)

        # Local workers start (and import nbgrader) while the lesson template is built.
        worker_mb = limits.worker_memory_mb if sandbox else limits.memory_mb
        workers = [] if cluster else [WorkerProcess(out / "logs" / f"worker-{n}.log", worker_mb, out)
                                      for n in range(min(jobs, len(todo)))]
        try:
            for w in workers:
                w.start()
            template = cached_course(sorted({l for _, l, _, _ in todo}))
            batch = [Job(student=s, lesson=l, submission=str(folder), template=str(template),
                         limits=asdict(limits), sandbox=sandbox) for s, l, folder, _ in todo]
            for job in batch:
                result_path(out, job.student, job.lesson).unlink(missing_ok=True)
            if cluster:
                from .cluster import grade_on_cluster

                grade_on_cluster(cluster, batch, template, publish, progress=progress, name=str(out))
            else:
                grade_all(batch, workers, publish, progress=progress)
        finally:
            for w in workers:
                w.close()

    _write_outputs(out, done + found.rows)
    return sorted((_csv_row(r) for r in done + found.rows), key=lambda r: (r["student_id"], r["lesson"]))


def _publish_files(out: Path, job: Job, files: dict[str, str]) -> None:
    """Replace the submission's graded notebook and feedback folders with the answer's files."""
    import shutil

    for kind in PUBLISHED:
        folder = out / kind / job.student / job.lesson
        if folder.exists():
            shutil.rmtree(folder)
    prefixes = {kind: f"{kind}/{job.student}/{job.lesson}/" for kind in PUBLISHED}
    for relative, text in files.items():
        if not any(relative.startswith(p) for p in prefixes.values()) or ".." in Path(relative).parts:
            continue  # a worker answers only for its own submission's folders
        write_atomic(out / relative, text)


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
    results = read_results(out)
    _write_outputs(out, results)
    return [_csv_row(r) for r in results]


def _csv_row(result: dict) -> dict:
    return {k: result.get(k, "") for k in CSV_COLUMNS}


def _cell(value) -> str:
    """A CSV field a spreadsheet shows as text: a leading = + - @ (a formula) gets a quote mark."""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(r.get(k, "")) for k in CSV_COLUMNS})
    write_atomic(path, buffer.getvalue())


def summary(rows: list[dict]) -> str:
    """A one-screen summary: counts by status and the mean score per lesson."""
    from .discover import shown_name

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
            lines.append(f"{shown_name(lesson)}: mean {mean:.1f} / {float(graded[0]['max_score']):g} "
                         f"over {len(graded)} submission(s)")
    problems = [r for r in rows if r["status"] not in ("graded", "missing")]
    for r in problems[:10]:
        lines.append(shown_name(f"  {r['status']:<11} {r['student_id']}/{r['lesson']}: {str(r['reason'])[:100]}"))
    if len(problems) > 10:
        lines.append(f"  ... and {len(problems) - 10} more (see grades.csv)")
    return "\n".join(lines)
