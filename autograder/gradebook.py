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
nbgrader's autograde had written them. The trade-off: the lesson's structure
(its notebooks and graded cells) must already be in the gradebook — written
there by ``nbgrader generate_assignment`` with the same ``db_url``, as the hub
does when it releases a lesson — so a gradebook never disagrees with the
release about what a cell is worth. Loading is idempotent: loading the same
results twice leaves the same scores.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from .config import COURSE_ID
from .lessons import CourseError


__all__ = ["Loaded", "read_results", "load_results", "scores", "main"]

@dataclass
class Loaded:
    """What one load did: submissions written, and those skipped with why."""

    written: list[tuple[str, str]]            # (student, lesson)
    skipped: list[tuple[str, str, str]]       # (student, lesson, why)


def read_results(graded: Path) -> list[dict]:
    """The result of every submission under ``graded/results/`` (the --out of ``course grade``)."""
    results_dir = Path(graded) / "results"
    if not results_dir.is_dir():
        raise CourseError(f"{graded} holds no results/ folder: not the --out of `course grade`")
    from .results import read_results as stored

    return stored(graded)


def load_results(graded: Path, db_url: str, *, course_id: str = COURSE_ID) -> Loaded:
    """Write every result under ``graded`` into the gradebook at ``db_url``.

    A submission that could not be graded at all (status ``error`` without
    per-test results) is recorded with zero on every graded cell, so the
    gradebook and grades.csv agree that it earned nothing.
    """
    from nbgrader.api import Gradebook, MissingEntry

    from .release import alembic_on_path

    alembic_on_path()  # nbgrader runs `alembic` when it opens a new gradebook
    loaded = Loaded(written=[], skipped=[])
    with warnings.catch_warnings(), Gradebook(db_url, course_id) as gb:
        # nbgrader's add_submission builds its rows in an order SQLAlchemy 2 warns about
        # ("not in session, add operation ... will not proceed"); the rows are written.
        warnings.filterwarnings("ignore", message=".*not in session.*")
        for result in read_results(graded):
            student, lesson = result["student_id"], result["lesson"]
            try:
                gb.find_assignment(lesson)
            except MissingEntry:
                loaded.skipped.append((student, lesson, f"{lesson} is not in the gradebook: release it "
                                                        f"with this db_url first"))
                continue
            gb.update_or_create_student(student)
            try:
                submission = gb.find_submission(lesson, student)
            except MissingEntry:
                submission = gb.add_submission(lesson, student)
            scores = {(t["notebook"], t["name"]): float(t["score"]) for t in result.get("tests", [])}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    # A cell the worker has no result for earned nothing (error, not run).
                    grade.auto_score = scores.get((notebook.name, grade.name), 0.0)
                    grade.manual_score = None
            gb.db.commit()
            loaded.written.append((student, lesson))
    return loaded


def scores(db_url: str, lesson: str, *, course_id: str = COURSE_ID) -> dict[str, float]:
    """Each student's total on ``lesson`` as the gradebook computes it."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        return {sub.student.id: float(sub.score) for sub in gb.find_assignment(lesson).submissions}


def main(argv: list[str] | None = None) -> int:
    """``python -m autograder.gradebook OUT DB_URL``: load ``course grade`` results into a gradebook."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m autograder.gradebook",
        description="Load `course grade` results (OUT/results/) into an nbgrader gradebook.",
        epilog="example:\n  python -m autograder.gradebook grading/ "
               "postgresql+psycopg2://gradebook:PASSWORD@127.0.0.1:5432/threads_sockets",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("graded", type=Path, metavar="OUT", help="the --out folder of `course grade`")
    parser.add_argument("db_url", metavar="DB_URL", help="SQLAlchemy URL of the gradebook")
    parser.add_argument("--course-id", default=COURSE_ID)
    args = parser.parse_args(argv)
    try:
        loaded = load_results(args.graded, args.db_url, course_id=args.course_id)
    except CourseError as exc:
        print(f"gradebook: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {len(loaded.written)} submission(s)")
    for student, lesson, why in loaded.skipped:
        print(f"  skipped {student}/{lesson}: {why}")
    return 0 if not loaded.skipped else 1


if __name__ == "__main__":
    raise SystemExit(main())
