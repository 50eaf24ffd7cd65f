"""Load the results of ``course grade`` into an nbgrader gradebook at any database URL.

``course grade`` grades each submission in a throw-away course directory with
its own SQLite gradebook, so workers never share a database and grading in
parallel needs no locking. A class, though, wants one gradebook that several
graders and the formgrader read at once: PostgreSQL on a hub
(``postgresql+psycopg2://user:password@host:port/db``; SQLAlchemy 2.1 reads a
bare ``postgresql://`` as psycopg 3) or a shared SQLite file on one machine.

This module copies the per-test points from ``OUT/results/<student>/<lesson>.json``
into that gradebook through nbgrader's own :class:`nbgrader.api.Gradebook`,
so the formgrader, ``nbgrader export`` and manual grading see them as if
nbgrader's autograde had written them:

- A lesson the gradebook does not know yet is created in it, with the very
  notebooks, graded cells and points of the lesson template ``course grade``
  used (nbgrader's ``generate_assignment`` made it): a new database needs no
  release step first. A lesson already there (released by the hub) is kept.
- The due date, each student's extension, the submission time and the late
  penalty go in too, so ``nbgrader export`` gives the scores of grades.csv.
- The graded notebooks are copied to ``COURSE_DIR/autograded/`` — where the
  formgrader's Manual Grading looks for them (it lists only submissions
  whose graded notebook is on disk) — so an instructor adds comments and
  points on top. Points an instructor gave by hand (``manual_score``) are
  never overwritten by a later load.
- A row that could not be graded loads as 0 with its reason as the comment of
  its first solution cell (unless a grader wrote one), and is listed.

Loading is idempotent: loading the same results twice leaves the same scores.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .config import COURSE_ID
from .lessons import CourseError

__all__ = ["Loaded", "read_results", "load_results", "scores", "course_dir_of", "main"]


@dataclass
class Loaded:
    """What one load did: submissions written, and those skipped or loaded as 0 with why."""

    written: list[tuple[str, str]]            # (student, lesson)
    skipped: list[tuple[str, str, str]]       # (student, lesson, why)
    created: list[str] = field(default_factory=list)                 # lessons added to the gradebook
    zeroed: list[tuple[str, str, str]] = field(default_factory=list)  # (student, lesson, reason): loaded as 0
    notebooks: int = 0                                               # graded notebooks copied for the formgrader


def read_results(graded: Path) -> list[dict]:
    """The result of every submission under ``graded/results/`` (the --out of ``course grade``)."""
    results_dir = Path(graded) / "results"
    if not results_dir.is_dir():
        raise CourseError(f"{graded} holds no results/ folder: not the --out of `course grade`")
    from .results import read_results as stored

    return stored(graded)


def course_dir_of(db_url: str) -> Path | None:
    """The course folder a SQLite gradebook sits in (nbgrader's default place), else None."""
    prefix = "sqlite:///"
    return Path(db_url[len(prefix):]).resolve().parent if db_url.startswith(prefix) else None


def load_results(graded: Path, db_url: str, *, course_id: str = COURSE_ID, course_dir: Path | None = None,
                 template: Path | None = None) -> Loaded:
    """Write every result under ``graded`` into the gradebook at ``db_url``.

    Lessons missing from the gradebook are created from ``template`` (default: the cached
    template of ``course grade``, built if needed). Graded notebooks are copied into
    ``course_dir`` (default: the folder of a SQLite gradebook; none for another database).
    """
    from nbgrader.api import Gradebook, MissingEntry

    from . import lessons as lessons_mod
    from .release import alembic_on_path

    alembic_on_path()  # nbgrader runs `alembic` when it opens a new gradebook
    graded = Path(graded)
    results = read_results(graded)
    known = set(lessons_mod.all_lessons())
    if template is not None:
        known |= {p.name for p in (Path(template) / "source").iterdir() if p.is_dir()}
    loaded = Loaded(written=[], skipped=[])
    course_dir = Path(course_dir) if course_dir else course_dir_of(db_url)
    if course_dir_of(db_url) is not None:
        course_dir_of(db_url).mkdir(parents=True, exist_ok=True)  # a new SQLite file's folder
    with warnings.catch_warnings(), Gradebook(db_url, course_id) as gb:
        # nbgrader's add_submission builds its rows in an order SQLAlchemy 2 warns about
        # ("not in session, add operation ... will not proceed"); the rows are written.
        warnings.filterwarnings("ignore", message=".*not in session.*")
        known |= {a.name for a in gb.assignments}
        wanted = sorted({r["lesson"] for r in results if r.get("lesson") in known})
        missing = [lesson for lesson in wanted if not _has_assignment(gb, lesson)]
        if missing:
            from .release import cached_course

            _copy_structure(template or cached_course(missing), gb, missing, course_id)
            loaded.created = missing
        for lesson in wanted:
            due = next((r.get("lesson_due") for r in results if r.get("lesson") == lesson and r.get("lesson_due")), "")
            gb.update_or_create_assignment(lesson, duedate=_time(due))
        for result in results:
            student, lesson = result["student_id"], result.get("lesson") or ""
            if result.get("status") == "missing":
                continue  # nbgrader export shows a student without a submission as 0 by itself
            try:
                gb.find_assignment(lesson)
            except MissingEntry:
                loaded.skipped.append((student, lesson, f"{lesson or 'no lesson'} is not a lesson of the course"))
                continue
            _load_one(gb, result)
            loaded.written.append((student, lesson))
            if not result.get("tests"):
                loaded.zeroed.append((student, lesson, str(result.get("reason") or result.get("status"))))
            if course_dir is not None:
                loaded.notebooks += _copy_graded(graded, course_dir, student, lesson)
    if course_dir is not None:
        _prepare_course_dir(course_dir, db_url, course_id, template, wanted)
    return loaded


def _has_assignment(gb, lesson: str) -> bool:
    from nbgrader.api import MissingEntry

    try:
        gb.find_assignment(lesson)
        return True
    except MissingEntry:
        return False


def _copy_structure(template: Path, gb, lessons: list[str], course_id: str) -> None:
    """The lessons' notebooks and cells, as the template's gradebook has them, into ``gb``."""
    from nbgrader.api import Gradebook

    from .config import COURSE_ID as TEMPLATE_COURSE

    with Gradebook(f"sqlite:///{Path(template) / 'gradebook.db'}", TEMPLATE_COURSE) as source:
        for lesson in lessons:
            assignment = source.find_assignment(lesson)
            gb.update_or_create_assignment(lesson, course_id=course_id)
            for notebook in assignment.notebooks:
                gb.update_or_create_notebook(notebook.name, lesson, kernelspec=notebook.kernelspec)
                for cell in notebook.grade_cells:
                    gb.update_or_create_grade_cell(cell.name, notebook.name, lesson, max_score=cell.max_score,
                                                   cell_type=cell.cell_type)
                for cell in notebook.solution_cells:
                    gb.update_or_create_solution_cell(cell.name, notebook.name, lesson)
                for cell in notebook.task_cells:
                    gb.update_or_create_task_cell(cell.name, notebook.name, lesson, max_score=cell.max_score,
                                                  cell_type=cell.cell_type)
                for cell in notebook.source_cells:
                    gb.update_or_create_source_cell(cell.name, notebook.name, lesson, cell_type=cell.cell_type,
                                                    locked=cell.locked, source=cell.source, checksum=cell.checksum)


def _time(text: str) -> datetime | None:
    """A time as results store it ("2026-03-01 23:59:00 UTC"): naive UTC, as nbgrader keeps them."""
    if not text:
        return None
    from nbgrader.utils import parse_utc

    return parse_utc(text)


def _load_one(gb, result: dict) -> None:
    from nbgrader.api import MissingEntry

    student, lesson = result["student_id"], result["lesson"]
    gb.update_or_create_student(student)
    try:
        submission = gb.find_submission(lesson, student)
    except MissingEntry:
        submission = gb.add_submission(lesson, student)
    submitted, due, lesson_due = (_time(result.get(k) or "") for k in ("submitted_at", "due", "lesson_due"))
    submission.timestamp = submitted
    submission.extension = (due - lesson_due) if due and lesson_due and due != lesson_due else None
    scores = {(t["notebook"], t["name"]): float(t["score"]) for t in result.get("tests", [])}
    penalty = float(result.get("penalty") or 0.0)
    for n, notebook in enumerate(sorted(submission.notebooks, key=lambda nb: nb.name)):
        notebook.late_submission_penalty = penalty if n == 0 else 0.0
        for grade in notebook.grades:
            # A cell the worker has no result for earned nothing (error, not run); a grader's own
            # points (manual_score) stay as the grader left them.
            grade.auto_score = scores.get((notebook.name, grade.name), 0.0)
        if not result.get("tests") and n == 0:
            comments = sorted(notebook.comments, key=lambda c: c.name)
            if comments and not comments[0].manual_comment:
                comments[0].manual_comment = f"Not graded automatically ({result.get('status')}): " \
                                             f"{result.get('reason') or 'no reason recorded'}"[:2000]
    gb.db.commit()


def _copy_graded(graded: Path, course_dir: Path, student: str, lesson: str) -> int:
    """Copy a submission's graded notebooks to where the formgrader reads them; how many."""
    source = graded / "autograded" / student / lesson
    notebooks = sorted(p for p in source.glob("*.ipynb") if p.is_file() and not p.is_symlink()) \
        if source.is_dir() else []
    target = course_dir / "autograded" / student / lesson
    if notebooks:
        target.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        shutil.copyfile(path, target / path.name)
    return len(notebooks)


def _prepare_course_dir(course_dir: Path, db_url: str, course_id: str, template: Path | None,
                        lessons: list[str]) -> None:
    """What the formgrader needs besides the graded notebooks: the lessons' source and a config."""
    from .release import cached_course

    course_dir.mkdir(parents=True, exist_ok=True)
    absent = [lesson for lesson in lessons if not (course_dir / "source" / lesson).exists()]
    if absent:
        root = template or cached_course(absent)
        for lesson in absent:
            shutil.copytree(Path(root) / "source" / lesson, course_dir / "source" / lesson)
    config = course_dir / "nbgrader_config.py"
    if not config.exists():
        config.write_text("# Written by `course gradebook`: the formgrader of this course folder.\n"
                          "c = get_config()  # noqa\n"
                          f"c.CourseDirectory.root = {str(course_dir.resolve())!r}\n"
                          f"c.CourseDirectory.course_id = {course_id!r}\n"
                          f"c.CourseDirectory.db_url = {db_url!r}\n", encoding="utf-8")


def scores(db_url: str, lesson: str, *, course_id: str = COURSE_ID) -> dict[str, float]:
    """Each student's total on ``lesson`` as the gradebook computes it (before any late penalty)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        return {sub.student.id: float(sub.score) for sub in gb.find_assignment(lesson).submissions}


def main(argv: list[str] | None = None) -> int:
    """``python -m autograder.gradebook OUT DB_URL``: load ``course grade`` results into a gradebook."""
    import argparse
    import sys

    from .discover import shown_name

    parser = argparse.ArgumentParser(
        prog="python -m autograder.gradebook",
        description="Load `course grade` results (OUT/results/) into an nbgrader gradebook.",
        epilog="example:\n  python -m autograder.gradebook grading/ "
               "postgresql+psycopg2://gradebook:PASSWORD@127.0.0.1:5432/threads_sockets",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("graded", type=Path, metavar="OUT", help="the --out folder of `course grade`")
    parser.add_argument("db_url", metavar="DB_URL", help="SQLAlchemy URL of the gradebook")
    parser.add_argument("--course-id", default=COURSE_ID)
    parser.add_argument("--course-dir", type=Path, help="the formgrader's course folder (default: the "
                                                        "folder of a SQLite gradebook)")
    args = parser.parse_args(argv)
    try:
        loaded = load_results(args.graded, args.db_url, course_id=args.course_id, course_dir=args.course_dir)
    except CourseError as exc:
        print(f"gradebook: {exc}", file=sys.stderr)
        return 2
    for lesson in loaded.created:
        print(f"created {lesson} in the gradebook (its notebooks, graded cells and points)")
    print(f"loaded {len(loaded.written)} submission(s)")
    course_dir = args.course_dir or course_dir_of(args.db_url)
    if course_dir is not None:
        print(f"{loaded.notebooks} graded notebook(s) in {course_dir / 'autograded'} for the formgrader's "
              "Manual Grading")
    else:
        print("graded notebooks not copied: give --course-dir (the formgrader's course folder)")
    if loaded.zeroed:
        print(f"{len(loaded.zeroed)} loaded as 0 because they could not be graded (reason in the comment):")
        for student, lesson, why in loaded.zeroed:
            print(shown_name(f"  {student}/{lesson}: {why[:150]}"))
    for student, lesson, why in loaded.skipped:
        print(shown_name(f"  skipped {student}/{lesson}: {why}"))
    return 0  # a skipped row has no lesson (a stray file beside the student folders): nothing to load


if __name__ == "__main__":
    raise SystemExit(main())
