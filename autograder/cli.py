"""The ``course`` command: a thin layer over release(), grade() and check().

Each subcommand parses its options and calls one keyword-only function, so
the command line and the Python API cannot drift. User mistakes (a wrong
path, an unknown lesson) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import slowimports
from .config import Limits
from .lessons import CourseError

__all__ = ["EXAMPLES", "main"]

EXAMPLES = {
    "release": "example:\n  course release --out build/student          # every lesson\n"
               "  course release 01 06 --out handout --force   # two lessons, replacing old copies\n"
               "  course release --out handout --no-hints 03   # lesson 03's hints stay with you\n\n"
               "Each lesson folder gets hints.json (its exercises, and their hints unless --no-hints),\n"
               "so `course hint` works where the source notebooks are not (a class hub).",
    "grade": "example:\n  course grade submitted/ --out grading/ --jobs 2\n"
             "  course grade submitted/ --out grading/ --lesson 03 --due 2026-03-01T23:59 --late-penalty 10%/day\n"
             "  course grade submitted/ --out grading/ --lesson 03 --student alice --force   # one regrade\n\n"
             "SUBMISSIONS holds <student_id>/<lesson>/<notebook>.ipynb (nbgrader's submitted/ layout).\n"
             "Writes OUT/grades.csv, OUT/tests.csv (every test's points), OUT/report.html,\n"
             "OUT/feedback/<student>/<lesson>/*.html and OUT/autograded/.\n"
             "Run it again after an interruption: finished submissions are not graded twice.\n"
             "Times without a zone (--due, timestamp.txt, --extensions) are UTC, as nbgrader reads them.",
    "check": "example:\n  course check 01-processes-and-threads/01-processes-and-threads.ipynb\n"
             "  course check 03-race-conditions-and-locks/03-race-conditions-and-locks.ipynb --exercise SafeCounter\n"
             "  course check --hidden 01-processes-and-threads/01-processes-and-threads.ipynb   # self-study\n\n"
             "--exercise takes a name or the number the notebook gives it (`--exercise 1`), and runs only\n"
             "that exercise's cells and the setup they need: an answer in seconds.",
    "solutions": "example:\n  course solutions 03 --out build/student   # build/student/03-.../03-...-solutions.ipynb\n"
                 "  course solutions 06 --exchange EXCHANGE --course ~/threads-sockets   # for a class\n\n"
                 "Exercises you have not run `course check` on are left out unless you confirm (or --force).\n"
                 "For a class, --exchange releases a lesson's worked solutions to every student, and only\n"
                 "once that lesson's feedback is released (`course feedback release`).",
    "hint": "example:\n  course hint 03                  # the lesson's exercises, numbered as in the notebook\n"
            "  course hint 03 SafeCounter      # the next hint you have not seen\n"
            "  course hint 03 1                # the same: Exercise 1 of the notebook",
    "progress": "example:\n  course progress                 # in your work folder (build/student after make lab)\n"
                "  course progress --work ~/course --html ~/course/progress.html",
    "lessons": "example:\n  course lessons",
    "collect": "example:\n  course collect canvas-01.zip --lesson 01 --out submitted/\n"
               "  course collect moodle-06.zip --lesson 06 --out submitted/ --pattern moodle\n\n"
               "File names are matched by a regular expression with a (?P<student_id>...) group;\n"
               "`canvas` (default) reads alice_12345_01-processes-and-threads.ipynb,\n"
               "`moodle` reads a folder per participant. Files that match nothing are listed.",
    "gradebook": "example:\n  course gradebook grading/ sqlite:///course/gradebook.db   # a new one is created\n"
                 "  course gradebook grading/ postgresql+psycopg2://grader:secret@127.0.0.1:5432/course "
                 "--course-dir course/\n\n"
                 "Copies every test's points, due dates and late penalties from grading/results/ into\n"
                 "nbgrader's gradebook at DB_URL, creating the lessons it lacks, and the graded notebooks\n"
                 "into the course folder, where the formgrader's Manual Grading finds them (`nbgrader\n"
                 "export` then agrees with grades.csv). Loading twice changes nothing; points a grader\n"
                 "gave by hand are kept.",
    "report": "example:\n  course report grading/   # grades.csv and report.html again, from grading/results/",
    "feedback": "example:\n  course feedback release grading/ --course ~/threads-sockets --exchange /srv/nbgrader/exchange\n\n"
                "Stages each feedback page of grading/feedback/<student>/<lesson>/ into the course folder's\n"
                "feedback/ (with the collected submission's timestamp.txt and submission_secret.txt) and\n"
                "releases it through nbgrader's exchange; each student then fetches their own.",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="Threads & Sockets: release the lessons, check your work, grade a class.",
        epilog="Run `course COMMAND --help` for each command's options and an example.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help_text):
        return sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("lessons", "List the lessons.")

    p = add("release", "Write the student version of lessons (solutions and hidden tests removed).")
    p.add_argument("lessons", nargs="*", metavar="LESSON", help="lesson ids or numbers (default: all)")
    p.add_argument("--out", type=Path, required=True, help="folder to write <lesson>/ into")
    p.add_argument("--force", action="store_true", help="replace lesson folders that already exist")
    p.add_argument("--no-hints", action="append", default=[], metavar="LESSON",
                   help="release this lesson without its hints (repeatable; `all`: every lesson)")
    p.add_argument("--hidden-checks", action="append", default=[], metavar="LESSON",
                   help="release this lesson's hidden tests for `course check --hidden` (repeatable; "
                        "students can then read them: for self-study, not for a graded lesson)")

    p = add("grade", "Autograde every submission in SUBMISSIONS and write grades and feedback.")
    p.add_argument("submissions", type=Path, metavar="SUBMISSIONS")
    p.add_argument("--out", type=Path, required=True, help="folder for grades.csv, feedback/, autograded/")
    p.add_argument("--lesson", action="append", dest="lessons", metavar="LESSON",
                   help="grade only this lesson (repeatable)")
    p.add_argument("--student", action="append", dest="students", metavar="STUDENT",
                   help="grade only this student (repeatable)")
    p.add_argument("--due", metavar="WHEN", help="due date of the lessons graded, e.g. 2026-03-01T23:59 (UTC "
                                                   "unless it has an offset); kept for later runs")
    p.add_argument("--late-penalty", metavar="SHARE",
                   help="points lost when late, as a share of the lesson's: 10%%/day (per started day) or 25%% (once)")
    p.add_argument("--extensions", type=Path, metavar="CSV",
                   help="per-student due dates: a CSV with student_id,due (and optionally lesson)")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: cores)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="grade on a Dask cluster: a scheduler address (tcp://host:8786) or local:N "
                        "(N worker processes here); needs pip install -e '.[cluster]'")
    p.add_argument("--cell-timeout", type=int, default=Limits.cell_timeout,
                   help="seconds a cell may run (default: %(default)s)")
    p.add_argument("--notebook-timeout", type=int, default=Limits.notebook_timeout,
                   help="seconds a notebook may run (default: %(default)s)")
    p.add_argument("--max-notebook-mb", type=int, default=Limits.max_notebook_mb,
                   help="refuse, unread, a submitted notebook larger than this (default: %(default)s)")
    p.add_argument("--feedback", choices=("hidden", "full"), default="hidden",
                   help="hidden (default): a hidden check's feedback names it and says what went wrong without "
                        "its inputs or expected values; full: students see its whole message")
    p.add_argument("--force", action="store_true", help="regrade submissions already graded")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without the sandbox (only for trusted code)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add("collect", "Unpack a learning platform's ZIP into SUBMISSIONS/<student>/<lesson>/.")
    p.add_argument("zip", type=Path, metavar="ZIP")
    p.add_argument("--lesson", required=True, help="the lesson these files belong to")
    p.add_argument("--out", type=Path, required=True, help="the submitted/ folder to fill")
    p.add_argument("--pattern", default="canvas",
                   help="canvas, moodle, or a regex with (?P<student_id>...) (default: canvas)")
    p.add_argument("--force", action="store_true", help="replace students' folders that already exist")
    p.add_argument("--max-ratio", type=float, default=None, metavar="R",
                   help="skip (and list) an entry that unpacks to more than R times its size, a ZIP bomb "
                        "(default: 200)")

    p = add("gradebook", "Load the results of `course grade` into an nbgrader gradebook (SQLite or PostgreSQL).")
    p.add_argument("graded", type=Path, metavar="OUT", help="the --out folder of `course grade`")
    p.add_argument("db_url", metavar="DB_URL", help="an SQLAlchemy URL, e.g. postgresql+psycopg2://...")
    p.add_argument("--course-dir", type=Path, metavar="DIR",
                   help="the formgrader's course folder, where graded notebooks go for Manual Grading "
                        "(default: the folder of a SQLite gradebook)")

    p = add("report", "Write grades.csv and report.html again from a grading folder's results.")
    p.add_argument("graded", type=Path, metavar="OUT", help="the --out folder of `course grade`")

    p = add("feedback", "Hand feedback to a class: `course feedback release` (through nbgrader's exchange).")
    p.add_argument("action", choices=["release"], help="release: stage and release through the exchange")
    p.add_argument("graded", type=Path, metavar="OUT", help="the --out folder of `course grade`")
    p.add_argument("--course", type=Path, required=True,
                   help="the instructor's course folder (holds submitted/ from nbgrader's collect)")
    p.add_argument("--exchange", type=Path, required=True, help="nbgrader's exchange folder (Exchange.root)")
    p.add_argument("--lesson", action="append", dest="lessons", metavar="LESSON",
                   help="only this lesson (repeatable; default: every lesson OUT holds)")

    p = add("check", "Run a notebook's visible tests now and say which pass.")
    p.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    p.add_argument("--exercise", metavar="NAME",
                   help="check only this exercise (its name, or its number in the notebook)")
    p.add_argument("--hidden", action="store_true",
                   help="self-study: run the hidden tests too, as grading does (names and messages only)")

    p = add("solutions", "Write worked solutions (reference code and why) for exercises you have tried.")
    p.add_argument("lessons", nargs="*", metavar="LESSON", help="lesson ids or numbers (default: all)")
    p.add_argument("--out", type=Path, help="folder to write <lesson>/<lesson>-solutions.ipynb into")
    p.add_argument("--force", action="store_true", help="include exercises not checked yet, without asking")
    p.add_argument("--exchange", type=Path,
                   help="for a class: release them into nbgrader's exchange (after the lesson's feedback)")
    p.add_argument("--course", type=Path, help="with --exchange: the instructor's course folder")
    p.add_argument("--work", type=Path, help="your work folder (default: here; build/student in the course folder)")

    p = add("hint", "Show the next hint of an exercise (hints are staged: a nudge first).")
    p.add_argument("lesson", metavar="LESSON")
    p.add_argument("exercise", metavar="EXERCISE", nargs="?",
                   help="its name (SafeCounter) or its number in the notebook (1); leave out to list them")
    p.add_argument("--work", type=Path, help="your work folder (default: here; build/student in the course folder)")

    p = add("progress", "Show what you have checked, passed and needed hints for, per lesson.")
    p.add_argument("--work", type=Path, help="your work folder (default: here; build/student in the course folder)")
    p.add_argument("--html", type=Path, help="where to write the HTML page (default: WORK/progress.html)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except CourseError as exc:
        print(f"course: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("course: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `course hint 03 | head`: the reader left; no traceback for that
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _dispatch(args) -> int:
    if args.command is None:
        _parser().print_help()
        return 2
    if args.command == "lessons":
        from .lessons import all_lessons
        print("\n".join(all_lessons()))
        return 0
    if args.command == "release":
        from .release import release
        written = release(args.lessons, out=args.out, force=args.force, no_hints=args.no_hints,
                          hidden_checks=args.hidden_checks)
        for path in written:
            print(f"released {path}")
        if not written:
            print(f"nothing to do: the lessons are already in {args.out} (use --force to replace them)")
        return 0
    if args.command == "grade":
        slowimports.skip_format_checkers()  # the grading workers do the same (worker.serve)
        from .grade import grade, summary
        sandbox = not args.no_sandbox
        if sandbox and not args.cluster:  # on a cluster, every worker checks its own
            sandbox = _sandbox_or_explain()
        limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                        max_notebook_mb=args.max_notebook_mb, full_feedback=args.feedback == "full")
        rows = grade(args.submissions, out=args.out, lessons=args.lessons, students=args.students, jobs=args.jobs,
                     limits=limits, sandbox=sandbox, force=args.force, progress=not args.quiet,
                     cluster=args.cluster, due=args.due, late_penalty=args.late_penalty, extensions=args.extensions)
        print(summary(rows))
        if rows.unchanged:
            print(f"{rows.unchanged} unchanged and skipped (graded before, same files; --force grades them again)")
        print(f"grades: {args.out / 'grades.csv'}  report: {args.out / 'report.html'}  "
              f"feedback: {args.out / 'feedback'}")
        return 0
    if args.command == "collect":
        from .collect import collect_zip
        from .collect import MAX_RATIO
        result = collect_zip(args.zip, args.out, lesson=args.lesson, pattern=args.pattern, force=args.force,
                             max_ratio=args.max_ratio or MAX_RATIO)
        print(result.summary())
        return 0 if result.collected else 1
    if args.command == "gradebook":
        from .gradebook import main as gradebook_main
        return gradebook_main([str(args.graded), args.db_url]
                              + (["--course-dir", str(args.course_dir)] if args.course_dir else []))
    if args.command == "report":
        from .grade import rebuild
        rows = rebuild(args.graded)
        print(f"{len(rows)} rows: {args.graded / 'grades.csv'}  {args.graded / 'tests.csv'}  "
              f"{args.graded / 'report.html'}")
        return 0
    if args.command == "check":
        slowimports.skip_slow_imports()
        from .check import check, check_hidden, report
        from .check import record_progress
        results = (check_hidden if args.hidden else check)(args.notebook, exercise=args.exercise)
        print(report(args.notebook, results, hidden=args.hidden))
        saved = record_progress(args.notebook, results, hidden=args.hidden)
        if saved:
            print(saved)
        _skip_exit_collection()
        return 0 if all(r.outcome in ("passed", "hidden") for r in results) else 1
    if args.command == "solutions":
        if args.exchange or args.course:
            return _release_solutions(args)
        if args.out is None:
            raise CourseError("--out is required (where to write the worked solutions)")
        from .solutions import solutions
        written = solutions(args.lessons, out=args.out, work=_work(args.work), force=args.force,
                            confirm=_ask_before_showing)
        for path in written:
            print(f"wrote {path}")
        return 0 if written else 1
    if args.command == "feedback":
        from .feedback_release import feedback_release
        for result in feedback_release(args.graded, course=args.course, exchange=args.exchange,
                                       lessons=args.lessons):
            print(result.summary())
        return 0
    if args.command == "hint":
        from course_lib.selfstudy.hints import list_hints, next_hint
        try:
            if args.exercise is None:
                print(list_hints(args.lesson, _work(args.work)))
            else:
                print(next_hint(args.lesson, args.exercise, _work(args.work)))
        except BrokenPipeError:
            raise
        except (LookupError, ValueError, OSError) as exc:
            raise CourseError(str(exc).strip("'\""))
        return 0
    if args.command == "progress":
        from .progress_report import progress_rows, terminal_report, write_html
        work, notes = _work(args.work), []
        try:
            rows = progress_rows(work, notes)
            for note in notes:
                print(f"note: {note}")
            print(terminal_report(rows))
            page = write_html(rows, args.html or work / "progress.html", notes)
        except BrokenPipeError:
            raise
        except (ValueError, OSError) as exc:
            raise CourseError(str(exc))
        print(f"HTML page with a plot: {page}")
        return 0
    raise AssertionError(args.command)


def _release_solutions(args) -> int:
    """``course solutions LESSON --exchange EXCHANGE --course COURSE``: for a class, after feedback."""
    if not (args.exchange and args.course and args.lessons):
        raise CourseError("for a class, give the lessons, --exchange and --course (the instructor's course folder)")
    from .solutions import release_solutions
    for path in release_solutions(args.lessons, course=args.course, exchange=args.exchange):
        print(f"released {path}")
    return 0


def _work(folder: Path | None) -> Path:
    """The learner's work folder (where the progress file lives); a clear error if it is the course's
    or has a symbolic link in its path."""
    from course_lib.selfstudy.progress import work_folder
    try:
        return work_folder(folder)
    except ValueError as exc:
        raise CourseError(str(exc))


def _ask_before_showing(lesson: str, exercise: str) -> bool:
    """Ask at a terminal; elsewhere (a script, CI) and at end of input the answer is no."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"You have not checked an attempt at {lesson} {exercise} yet. "
                       "Read its worked solution anyway? [y/N] ")
    except EOFError:  # Ctrl-D: a no, on its own line
        print()
        return False
    except KeyboardInterrupt:  # Ctrl-C: main() says so in one line, below the prompt
        print(file=sys.stderr)
        raise
    return answer.strip().lower() in ("y", "yes")


def _skip_exit_collection() -> None:
    """Leave this process's heap to the operating system when it exits, once the report is out.

    ``gc.freeze()`` keeps the interpreter's last collections at exit off the
    objects nbformat, nbgrader and nbclient made: they took 0.5–2 s after
    the report, more under load (measured around ``course check --exercise``).
    By then the kernel is shut down, its channels and folders are closed,
    and the atexit handlers still run.
    """
    import gc

    gc.freeze()


def _sandbox_or_explain() -> bool:
    """True when the sandbox can run; otherwise stop with why and how to fix it."""
    try:
        from . import sandbox
    except ImportError:
        raise CourseError("the grading sandbox is not installed; use --no-sandbox for trusted code")
    ok, why = sandbox.available()
    if not ok:
        raise CourseError(f"the grading sandbox cannot start: {why} (or pass --no-sandbox for trusted code)")
    return True


if __name__ == "__main__":
    sys.exit(main())
