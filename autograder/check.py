"""``course check``: run a notebook's visible tests now, in a fresh kernel.

For a student or a self-study learner before submitting. It executes a copy
of the notebook (the file on disk is not changed) with the same per-cell
limit as grading, then reports each graded test cell: passed, failed with
its message, or not attempted (the exercise still raises
NotImplementedError). It says plainly that hidden tests run only at grading,
so "all passed" here never means full marks.

Before running anything it reads every solution cell with the grading
policy (:mod:`autograder.policy`): a cell that would be rejected at grading
is reported with its line and why, so a student fixes it before handing in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Limits
from .lessons import CourseError
from .results import graded_cell_error


__all__ = ["policy_problems", "TestResult", "check", "report", "check_hidden", "record_progress"]

def policy_problems(nb, lesson: str) -> list[tuple[str, str]]:
    """(grade id, violation) for every solution cell the grader would reject."""
    from .normalize import is_solution
    from .policy import check_source, notebook_bindings

    bindings = notebook_bindings(c.source for c in nb.cells if c.cell_type == "code" and not is_solution(c))
    found = []
    for cell in nb.cells:
        if is_solution(cell):
            for violation in check_source(cell.source, lesson, bindings=bindings):
                found.append((cell.metadata["nbgrader"].get("grade_id", "?"), str(violation)))
    return found


@dataclass
class TestResult:
    grade_id: str
    points: float
    outcome: str       # passed, failed, not attempted, hidden (no visible check), rejected
    message: str = ""


def _has_visible_check(source: str) -> bool:
    """Does a test cell hold code beyond its docstring (a cell whose tests are all hidden does not)?"""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:
        return True
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def check(notebook: Path, *, limits: Limits = Limits()) -> list[TestResult]:
    """Execute ``notebook`` and return one result per graded test cell."""
    import nbformat
    from nbclient import NotebookClient

    notebook = Path(notebook)
    if not notebook.is_file() or notebook.suffix != ".ipynb":
        raise CourseError(f"not a notebook: {notebook}")
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:
        raise CourseError(f"{notebook} is not a readable notebook: {str(exc).splitlines()[0]}")
    client = NotebookClient(nb, timeout=limits.cell_timeout, allow_errors=True,
                            kernel_name="python3", shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(notebook.parent.resolve())}})
    try:
        client.execute()
    except Exception as exc:  # dead kernel: report what ran
        dead = f"the kernel stopped: {type(exc).__name__}"
    else:
        dead = ""
    results = [TestResult(grade_id, 0.0, "rejected", why) for grade_id, why in
               policy_problems(nb, notebook.parent.name or notebook.stem)]
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade"):
            continue
        error = graded_cell_error(cell)
        points = float(meta.get("points", 0))
        if not _has_visible_check(cell.source):
            results.append(TestResult(meta["grade_id"], points, "hidden", "runs at grading"))
        elif error:
            outcome = "not attempted" if error[0] == "NotImplementedError" else "failed"
            results.append(TestResult(meta["grade_id"], points, outcome, error[1]))
        elif cell.get("execution_count") is None:
            results.append(TestResult(meta["grade_id"], points, "failed", dead or "this cell did not run"))
        else:
            results.append(TestResult(meta["grade_id"], points, "passed"))
    return results


def report(notebook: Path, results: list[TestResult], *, hidden: bool = False) -> str:
    lines = [f"{'All tests (hidden ones included)' if hidden else 'Visible tests'} of {notebook}:"]
    for r in results:
        mark = {"passed": "PASS", "failed": "FAIL", "not attempted": "TODO", "rejected": "REJECTED",
                "hidden": "HIDDEN"}[r.outcome]
        lines.append(f"  {mark}  {r.grade_id} ({r.points:g} pt)" + (f" — {r.message}" if r.message else ""))
    passed = sum(r.outcome == "passed" for r in results)
    rejected = [r for r in results if r.outcome == "rejected"]
    hidden_only = [r for r in results if r.outcome == "hidden"]
    tests = [r for r in results if r.outcome not in ("rejected", "hidden")]
    lines.append(f"{passed} of {len(tests)} test cells passed" + ("." if hidden else " their visible checks."))
    if hidden_only:
        lines.append(f"{len(hidden_only)} test cell(s) ({sum(r.points for r in hidden_only):g} pt) have only "
                     "hidden checks: they run at grading, not here.")
    if rejected:
        lines.append(f"{len(rejected)} solution cell problem(s): grading would score those exercises 0 "
                     "until they are fixed.")
    if hidden:
        lines.append("Hidden tests ran as at grading (their code is never shown); grading may still differ "
                     "if your notebook changes, or runs on a busier machine.")
    else:
        lines.append("Hidden tests run only at grading: passing here does not guarantee full marks "
                     "(`course check --hidden` runs them, where your course allows it).")
    return "\n".join(lines)


def check_hidden(notebook: Path, *, limits: Limits = Limits()) -> list[TestResult]:
    """For a learner alone: grade ``notebook`` as grading would, hidden tests included.

    The notebook's solution cells go into the lesson's own notebook (as at
    grading: :mod:`autograder.normalize`, demos left out, the policy
    applied) and run in a judge kernel. Only each test's name, points and
    message come back — never its code, and a message that quotes a hidden
    line is withheld. An instructor turns this off for a class by setting
    ``COURSE_HIDDEN_CHECKS=off`` in the students' environment.
    """
    import json
    import os

    import nbformat

    from . import lessons as lessons_mod
    from .execute import BoundedExecute
    from .leaks import WITHHELD, hidden_lines, quotes_hidden
    from .normalize import is_solution, normalize

    if os.environ.get("COURSE_HIDDEN_CHECKS", "on").lower() in ("off", "0", "no"):
        raise CourseError("hidden checks are turned off for this class: they run at grading")
    notebook = Path(notebook)
    lesson_nb = _lesson_with_hidden_tests(notebook)
    lesson = notebook.parent.name
    secret = hidden_lines(c.source for c in lesson_nb.cells if c.cell_type == "code")
    for cell in lesson_nb.cells:
        if is_solution(cell):  # the reference solution never runs here: a stub in its place
            cell.source = "raise NotImplementedError('this solution cell is missing from your notebook')"
    try:
        submitted = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CourseError(f"{notebook} is not a readable notebook: {exc}")
    normalized = normalize(lesson_nb, submitted, lesson)
    results = [TestResult(d.grade_id, 0.0, "rejected", d.message) for d in normalized.rejected()]
    executor = BoundedExecute(timeout=limits.cell_timeout, notebook_timeout=limits.notebook_timeout)
    executor.preprocess(normalized.notebook, {"metadata": {"path": str(notebook.parent.resolve())}})
    lost = normalized.lost()
    for cell in normalized.notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade"):
            continue
        error = graded_cell_error(cell)
        points = float(meta.get("points", 0))
        if meta["grade_id"] in lost:
            results.append(TestResult(meta["grade_id"], points, "failed", f"not graded: {lost[meta['grade_id']]}"))
        elif error:
            message = WITHHELD if quotes_hidden(error[1], secret) else error[1][:500]
            outcome = "not attempted" if error[0] == "NotImplementedError" else "failed"
            results.append(TestResult(meta["grade_id"], points, outcome, message))
        else:
            results.append(TestResult(meta["grade_id"], points, "passed"))
    return results


def _lesson_with_hidden_tests(notebook: Path):
    """The lesson's notebook with its hidden tests: the source where this machine has it (a learner's
    checkout), else the hidden-checks file the instructor released beside the notebook (a class);
    refused clearly where neither is here (a class hub never has the source)."""
    import nbformat

    from . import lessons as lessons_mod
    from .release import HIDDEN_CHECKS_FILE

    lesson = notebook.parent.name
    released = notebook.parent / HIDDEN_CHECKS_FILE
    if not lessons_mod.NOTEBOOKS.is_dir():
        if not released.is_file():
            raise CourseError(f"`course check --hidden` needs the course's source notebooks or the hidden checks "
                              f"your instructor releases with a lesson, and neither is here: hidden checks are "
                              f"turned off for {lesson} in this class; its hidden tests run when your hand-in "
                              "is graded")
        try:
            return nbformat.reads(released.read_text(encoding="utf-8"), as_version=4)
        except (OSError, ValueError) as exc:
            raise CourseError(f"{released} is not usable ({type(exc).__name__}): fetch {lesson} again")
    sources = lessons_mod.source_notebooks(lesson) if lesson in lessons_mod.all_lessons() else []
    if not sources:
        raise CourseError(f"{notebook} is not in a lesson folder (expected .../<lesson>/{notebook.name})")
    return nbformat.read(sources[0], as_version=4)


def record_progress(notebook: Path, results: list[TestResult], *, hidden: bool) -> str:
    """Note the check in the learner's progress file; returns a line to show ("" if none).

    Per exercise: the tests that passed of those that ran (a test with only
    hidden checks does not count as run without ``--hidden``; a rejected
    solution cell makes its exercise 0). Never fails the check: a problem
    with the file is one line of explanation.
    """
    from course_lib.selfstudy import progress

    lesson = Path(notebook).resolve().parent.name
    try:
        work = progress.work_folder(notebook)
        exercises = _lesson_exercises(lesson, work)
        if exercises is None:
            return ""
        by_id = {r.grade_id: r for r in results}
        outcomes = {}
        for exercise in exercises:
            ran = [by_id[t] for t in exercise.tests if t in by_id and by_id[t].outcome != "hidden"]
            rejected = any(by_id.get(s) is not None and by_id[s].outcome == "rejected" for s in exercise.solutions)
            passed = 0 if rejected else sum(r.outcome == "passed" for r in ran)
            outcomes[exercise.name] = (passed, len(ran))
        notes: list[str] = []
        progress.record_check(work, lesson, outcomes, hidden=hidden, notes=notes)
    except (OSError, ValueError, LookupError) as exc:
        return f"(progress not recorded: {exc})"
    return "\n".join([f"(progress file: {n})" for n in notes] + [f"Progress saved in {work / progress.FILE_NAME}; "
                                                                "`course progress` shows it."])


def _lesson_exercises(lesson: str, work: Path):
    """A lesson's exercises from its source, or from its released hints file (a class hub); None if neither."""
    from course_lib.selfstudy import exercises as exercises_mod
    from course_lib.selfstudy import released

    from . import lessons as lessons_mod

    if lesson in lessons_mod.all_lessons():
        return exercises_mod.lesson_exercises(lesson)
    if lesson in released.released_lessons(work):
        return released.exercises_for(lesson, work)[1]
    return None
