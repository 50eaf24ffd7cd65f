"""Grade a class: every ``SUBMISSIONS/<student>/<lesson>/`` in bounded workers.

The steps, each in its own module: :mod:`autograder.discover` finds the
submissions (never through a link) and fingerprints them; the lesson
template is built once and reused while the lessons do not change
(:func:`autograder.release.cached_course`);
:mod:`autograder.pool` keeps ``jobs`` long-lived worker processes busy, each
job bounded; and this module, the batch's only writer, writes each answer's
files, ``results/<student>/<lesson>.json``, ``grades.csv``, ``tests.csv``
and the report.

Every row has a result file — graded, error, missing, a folder that is no
lesson — with the lesson's ``max_score`` and the batch's ``mode``, and every
submission of a lesson has a feedback page (:mod:`autograder.notices` writes
one where nbgrader could not), so ``grades.csv`` and the report are always
rebuilt from ``results/`` alone (:func:`rebuild`) and lose nothing. Late
work is priced here, from each submission's time (:mod:`autograder.late`).

A batch that was interrupted resumes where it stopped: a submission is
graded again only when its fingerprint changed or ``force`` is given.
Nothing under SUBMISSIONS is ever written.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict
from pathlib import Path

from . import lessons as lessons_mod
from .config import Limits
from .discover import Unusable, discover, fingerprint, row
from .lessons import CourseError
from .pool import WorkerProcess, grade_all
from .release import cached_course
from .notices import notice_page
from .results import read_result, read_results, result_path, settle_timeout, write_atomic, write_result
from .worker import Job

__all__ = ["Graded", "grade", "rebuild", "summary", "write_csv", "write_tests_csv", "CSV_COLUMNS",
           "TEST_COLUMNS", "BATCH_FILE", "per_test_rows"]

CSV_COLUMNS = ["student_id", "lesson", "score", "max_score", "status", "reason", "mode",
               "submitted_at", "due", "late_by", "penalty"]
TEST_COLUMNS = ["student_id", "lesson", "notebook", "test", "score", "max_score", "result", "message"]
PUBLISHED = ("autograded", "feedback")
BATCH_FILE = "batch.json"  # what the report's regrade instructions need: where SUBMISSIONS is


class Graded(list):
    """The grades.csv rows of a batch, and what the batch did: ``graded`` now, ``unchanged`` (reused)."""

    graded: int = 0
    unchanged: int = 0


def grade(submissions: Path, *, out: Path, lessons: list[str] | None = None, students: list[str] | None = None,
          jobs: int | None = None, limits: Limits = Limits(), sandbox: bool = True, force: bool = False,
          progress: bool = True, cluster: str | None = None, due: str | None = None,
          late_penalty: str | None = None, extensions: Path | None = None) -> Graded:
    """Grade every submission under ``submissions`` into ``out``; return the CSV rows of ``out``.

    ``sandbox`` defaults to True, as on the command line; pass False only for trusted code.
    ``cluster`` (a Dask scheduler address or ``local:N``) grades on a cluster's workers instead
    of ``jobs`` local ones (:mod:`autograder.cluster`); the outputs are the same. ``students``
    limits the batch to those students; ``due``, ``late_penalty`` and ``extensions`` set the
    lessons' late policy (:mod:`autograder.late`), kept for later runs.
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
    if students:
        wanted = set(students)
        found.jobs = [j for j in found.jobs if j[0] in wanted]
        found.rows = [r for r in found.rows if r["student_id"] in wanted]
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / BATCH_FILE, json.dumps({"submissions": str(submissions)}, indent=1))
    from . import late

    policies = late.policies(out, lesson_ids, due=due, penalty=late_penalty, extensions=extensions)
    jobs = jobs or os.cpu_count() or 1
    mode = "sandbox" if sandbox else "no-sandbox"
    folders = {(s, l): folder for s, l, folder in found.jobs}
    batch_lessons = sorted({l for _, l, _ in found.jobs})
    template = cached_course(batch_lessons) if batch_lessons else None
    facts = _lesson_facts(template, batch_lessons)

    def finish(result: dict) -> dict:
        """The row as it is stored: lesson max and mode filled in, time-outs settled, late priced."""
        lesson = result.get("lesson") or ""
        top, _ = facts.get(lesson, (0.0, ""))
        result = {**result, "tests": result.get("tests") or []}
        if not result.get("max_score") and top:
            result["max_score"] = top
        if result.get("status") != "missing":
            result["mode"] = result.get("mode") or mode
        result = late.price(settle_timeout(result), policies.get(lesson), folders.get((result["student_id"], lesson)))
        write_result(out, result)
        return result

    done, reused, todo = [], [], []
    for student, lesson, folder in found.jobs:
        try:
            stamp = fingerprint(folder)
        except Unusable as problem:
            done.append(finish({**row(student, lesson, "error", str(problem)), "fingerprint": ""}))
            continue
        except OSError as error:
            done.append(finish(row(student, lesson, "error", f"cannot read the submission: {error.strerror}")))
            continue
        previous = result_path(out, student, lesson)
        if not force and previous.exists():
            old = read_result(previous) or {}
            if old.get("fingerprint") == stamp:
                reused.append(finish(old))
                continue
        todo.append((student, lesson, folder, stamp))
    done += [finish(r) for r in found.rows]
    _forget_stale(out, done + reused + [row(s, l, "", "") for s, l, _, _ in todo], lesson_ids, students)

    if todo:
        stamps = {(s, l): stamp for s, l, _, stamp in todo}

        def publish(job: Job, answer: dict) -> None:
            result = answer["result"]
            result["fingerprint"] = stamps[(job.student, job.lesson)]
            result.pop("raw_score", None)  # a fresh score: priced again from it
            _publish_files(out, job, answer.get("files") or {})
            done.append(finish(result))

        # Local workers start (and import nbgrader) while the lesson template is built.
        worker_mb = limits.worker_memory_mb if sandbox else limits.memory_mb
        workers = [] if cluster else [WorkerProcess(out / "logs" / f"worker-{n}.log", worker_mb, out)
                                      for n in range(min(jobs, len(todo)))]
        try:
            for w in workers:
                w.start()
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

    for result in done + reused:
        lesson = result.get("lesson") or ""
        if lesson in facts and result.get("status") != "missing" and not _has_feedback(out, result):
            write_atomic(out / "feedback" / result["student_id"] / lesson / (Path(facts[lesson][1]).stem + ".html"),
                         notice_page(result, facts[lesson][1]))
    rows = _write_outputs(out, read_results(out))
    graded = Graded(rows)
    graded.graded, graded.unchanged = len(todo), len(reused)
    return graded


def _lesson_facts(template: Path | None, lessons: list[str]) -> dict[str, tuple[float, str]]:
    """``{lesson: (max score, notebook file name)}`` from the built template's gradebook."""
    if template is None or not lessons:
        return {}
    from nbgrader.api import Gradebook

    from .config import COURSE_ID

    facts = {}
    with Gradebook(f"sqlite:///{template / 'gradebook.db'}", COURSE_ID) as gb:
        for lesson in lessons:
            notebook = next((template / "release" / lesson).glob("*.ipynb"))
            facts[lesson] = (float(gb.find_assignment(lesson).max_score), notebook.name)
    return facts


def _has_feedback(out: Path, result: dict) -> bool:
    folder = out / "feedback" / result["student_id"] / result["lesson"]
    return folder.is_dir() and any(folder.glob("*.html"))


def _forget_stale(out: Path, current: list[dict], lessons: list[str], students: list[str] | None) -> None:
    """Remove the results of submission folders that are gone, for what this batch covers: its
    lessons (and folders that are no lesson) and its students, so that ``out`` mirrors SUBMISSIONS."""
    keep = {result_path(out, r["student_id"], r.get("lesson") or "") for r in current}
    known = set(lessons_mod.all_lessons())
    for result in read_results(out):
        lesson = result.get("lesson") or ""
        in_scope = (lesson in lessons or lesson not in known) and (not students or result["student_id"] in students)
        path = result_path(out, result["student_id"], lesson)
        if in_scope and path not in keep:
            path.unlink(missing_ok=True)


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


def _write_outputs(out: Path, results: list[dict]) -> list[dict]:
    from .report import write_report

    rows = sorted((_csv_row(r) for r in results), key=lambda r: (r["student_id"], r["lesson"]))
    write_csv(out / "grades.csv", rows)
    write_tests_csv(out / "tests.csv", results)
    write_report(results, out)
    return rows


def rebuild(out: Path) -> list[dict]:
    """grades.csv, tests.csv and report.html again from ``out/results`` (no grading)."""
    out = Path(out)
    if not (out / "results").is_dir():
        raise CourseError(f"{out} holds no results/ folder: not the --out of `course grade`")
    return _write_outputs(out, read_results(out))


def _csv_row(result: dict) -> dict:
    return {k: result.get(k, "") for k in CSV_COLUMNS}


def per_test_rows(results: list[dict]) -> list[dict]:
    """One row per student, lesson and test: the long form of who failed what."""
    rows = []
    for r in sorted(results, key=lambda r: (str(r.get("student_id")), str(r.get("lesson")))):
        for t in r.get("tests") or []:
            score, top = float(t.get("score") or 0), float(t.get("max_score") or 0)
            outcome = "passed" if score >= top else "failed" if score <= 0 else "partial"
            rows.append({"student_id": r["student_id"], "lesson": r.get("lesson", ""),
                         "notebook": t.get("notebook", ""), "test": t.get("name", ""), "score": score,
                         "max_score": top, "result": outcome, "message": t.get("message") or ""})
    return rows


def write_tests_csv(path: Path, results: list[dict]) -> None:
    _write_table(path, TEST_COLUMNS, per_test_rows(results))


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
    _write_table(path, CSV_COLUMNS, rows)


def _write_table(path: Path, columns: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(r.get(k, "")) for k in columns})
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
    late = [r for r in rows if r.get("late_by")]
    if late:
        lines.append(f"late: {len(late)} submission(s), {sum(float(r['penalty'] or 0) for r in late):g} point(s) "
                     "of penalties (grades.csv: submitted_at, due, late_by, penalty)")
    problems = [r for r in rows if r["status"] not in ("graded", "missing")]
    for r in problems[:10]:
        lines.append(shown_name(f"  {r['status']:<11} {r['student_id']}/{r['lesson']}: {str(r['reason'])[:100]}"))
    if len(problems) > 10:
        lines.append(f"  ... and {len(problems) - 10} more (see grades.csv)")
    return "\n".join(lines)
