"""``course check``: run a notebook's tests now, as grading runs them, and say which pass.

For a student or a self-study learner before submitting. The notebook is
not run as it is: like grading (:mod:`autograder.normalize`), the check
takes the lesson's own cells — setup and test cells, demos left out — and
puts the learner's *solution cells* in, read first by the grading policy (a
cell grading would reject is reported with its line and why). The result
runs in a judge kernel through :class:`autograder.execute.BoundedExecute`,
the runner grading uses, with the same per-cell and per-notebook limits;
the file on disk is never changed.

Which lesson cells: from the course's source lesson when it is installed
(solutions replaced by their stubs, hidden tests removed unless
``hidden``), otherwise the learner's own notebook. ``exercise`` narrows the
run to one exercise — the setup cells, its solution and test cells, and any
other solution cell that defines a name those use — which is what makes a
check answer in seconds.

Each test comes back as passed, failed (with its message, shortened to
fit), not attempted (its exercise is still the stub, or code it calls still
raises ``NotImplementedError``), hidden (no visible check: it runs at
grading) or rejected. A test with hidden parts is marked as such, and a
passed stress run is labelled as what it is: evidence, not proof.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import Limits
from .lessons import CourseError
from .results import graded_cell_error

__all__ = ["QUIET_KERNEL", "policy_problems", "TestResult", "check", "exercise_named", "report", "check_hidden",
           "record_progress"]

#: Kernel arguments for a check: ipykernel's warnings about its own transport are not the learner's business.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]
MESSAGE_LINES = 24   # of a failure's message in the report; the test cell in the notebook shows it all
HIDDEN_MARKER = "### BEGIN HIDDEN TESTS"
STUB_MESSAGE = "not attempted yet: its solution cell is still the stub"


def policy_problems(nb, lesson: str) -> list[tuple[str, str]]:
    """(grade id, violation) for every solution cell the grader would reject."""
    from .normalize import is_solution, notebook_bindings
    from .policy import check_source

    bindings = notebook_bindings(nb.cells)
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
    exercise: str = ""         # the exercise's label ("Exercise 1 — SafeCounter")
    hidden_part: bool = False  # the test has checks the student version does not show
    stress: bool = False       # real threads racing: a pass is evidence, not proof


def _has_visible_check(source: str) -> bool:
    """Does a test cell hold code beyond its docstring (a cell whose tests are all hidden does not)?"""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return True
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def _is_stress(source: str, grade_id: str) -> bool:
    return "stress(" in source or grade_id.endswith(("_stress", "_real_threads"))


# ----------------------------------------------------------------------------------- the cells to run
@dataclass
class _Lesson:
    """The lesson cells a check runs, and what is known about them."""

    template: object            # nbformat notebook: setup, stubs, tests
    stubs: dict                 # solution grade id -> its released stub ({} when the source is not here)
    hidden_parts: set           # test grade ids with hidden checks
    secret: set                 # hidden lines (for withholding a message that quotes one)


def _read_submission(notebook: Path) -> dict:
    if not notebook.is_file() or notebook.suffix != ".ipynb":
        raise CourseError(f"not a notebook: {notebook}")
    try:
        submitted = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CourseError(f"{notebook} is not a readable notebook: {str(exc).splitlines()[0]}") from None
    if not isinstance(submitted, dict) or not isinstance(submitted.get("cells"), list):
        raise CourseError(f"{notebook} is not a readable notebook: it has no list of cells")
    return submitted


def _lesson_cells(lesson: str, submitted: dict, *, hidden: bool, folder: Path | None = None) -> _Lesson:
    import nbformat
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    from course_lib.selfstudy.exercises import is_self_study_cell

    from . import lessons as lessons_mod
    from .leaks import hidden_lines
    from .normalize import is_solution, is_test

    sources = lessons_mod.source_notebooks(lesson) if lesson in lessons_mod.all_lessons() else []
    if not sources and hidden and folder is not None and not lessons_mod.NOTEBOOKS.is_dir():
        nb = _released_hidden_checks(folder, lesson)  # a class hub: its solutions are already stubs
        hidden_parts = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_test(c) and HIDDEN_MARKER in c.source}
        stubs = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if is_solution(c)}
        return _Lesson(nb, stubs, hidden_parts, hidden_lines(c for c in nb.cells if c.cell_type == "code"))
    if not sources:
        if hidden:
            raise CourseError(f"{lesson} is not a lesson of this course (expected .../<lesson>/<lesson>.ipynb): "
                              "hidden tests run only on a lesson's own notebook")
        try:  # no source lesson here (a class hub): the learner's own notebook is the template
            return _Lesson(nbformat.reads(json.dumps(submitted), as_version=4), {}, set(), set())
        except Exception as exc:  # noqa: BLE001 - any malformed notebook is one line
            raise CourseError(f"the notebook is not readable: {exc}") from None
    nb = nbformat.read(sources[0], as_version=4)
    nb.cells = [c for c in nb.cells if not is_self_study_cell(c)]
    hidden_parts = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_test(c) and HIDDEN_MARKER in c.source}
    secret = hidden_lines(c for c in nb.cells if c.cell_type == "code")
    # The reference solution never runs here: every solution cell becomes its released stub.
    nb, _ = ClearSolutions().preprocess(nb, {})
    if not hidden:
        nb, _ = ClearHiddenTests().preprocess(nb, {})
    stubs = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if is_solution(c)}
    return _Lesson(nb, stubs, hidden_parts, secret)


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell defines at its top level, names it reads anywhere)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(), set()
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return defined, used


def _select(template, chosen, submitted_sources: dict[str, list[str]]):
    """The template with only what ``chosen`` needs: setup cells, its cells, the solutions it uses."""
    from nbformat.v4 import new_notebook

    from .normalize import is_demo, is_solution, is_test

    def grade_id(cell):
        return cell.metadata.get("nbgrader", {}).get("grade_id")

    solutions = {grade_id(c): c for c in template.cells if is_solution(c)}
    defines = {}
    for gid, cell in solutions.items():
        texts = [cell.source, *submitted_sources.get(gid, [])]
        defines[gid] = set().union(*(_names(t)[0] for t in texts))
    wanted = set(chosen.solutions)
    tests = set(chosen.tests)
    needed = set().union(*(_names(c.source)[1] for c in template.cells
                           if c.cell_type == "code" and grade_id(c) in tests))
    for gid in chosen.solutions:
        needed |= set().union(*(_names(t)[1] for t in submitted_sources.get(gid, [])))
    while True:  # solution cells of other exercises that define a name the chosen cells use
        more = {gid for gid, names in defines.items() if gid not in wanted and names & needed}
        if not more:
            break
        wanted |= more
        for gid in more:
            needed |= set().union(*(_names(t)[1] for t in submitted_sources.get(gid, [])))
    kept = []
    for cell in template.cells:
        if cell.cell_type != "code" or is_demo(cell):
            continue
        if is_solution(cell) and grade_id(cell) not in wanted:
            continue
        if is_test(cell) and grade_id(cell) not in tests:
            continue
        kept.append(cell)
    return new_notebook(cells=kept, metadata=template.metadata)


def exercise_named(exercises: list, wanted: str):
    """The exercise `wanted` names (its name, a solution grade id, or its number); a clear error otherwise."""
    label = str(wanted).strip().lower()
    for exercise in exercises:
        if label in {exercise.name.lower(), *(g.lower() for g in exercise.solutions)}:
            return exercise
    numbered = [e for e in exercises if e.number and e.number == label.lstrip("0")]
    if len(numbered) == 1:
        return numbered[0]
    listed = ", ".join(e.label for e in exercises) or "none"
    if numbered:
        raise CourseError(f"Exercise {wanted} has {len(numbered)} parts ({', '.join(e.name for e in numbered)}): "
                          "name the one to check")
    raise CourseError(f"no exercise {wanted!r} in this notebook; its exercises are: {listed}")


# ----------------------------------------------------------------------------------- running it
def _execute(nb, folder: Path, limits: Limits) -> None:
    from .execute import BoundedExecute

    import copy

    from . import warm

    pristine = copy.deepcopy(nb.cells)  # a retry starts from the cells as they were
    for attempt in (1, 2):
        executor = BoundedExecute(timeout=limits.cell_timeout, notebook_timeout=limits.notebook_timeout,
                                  shutdown_kernel="immediate", extra_arguments=QUIET_KERNEL)
        try:
            executor.preprocess(nb, {"metadata": {"path": str(folder)}})
            return
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot start is one line, not a traceback
            if attempt == 1 and "before replying to kernel_info" in str(exc):
                # A kernel that dies before its first reply (seen on a loaded machine; the one started
                # ahead may be it) ran no cell: start once more, cold, as grading's workers do.
                warm.close()
                nb.cells = pristine
                continue
            raise CourseError(f"the check could not run: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:300]}") from None


def _untouched(exercise, submitted_sources: dict[str, list[str]], stubs: dict[str, str]) -> bool:
    """Is every solution cell of ``exercise`` still as released?"""
    from course_lib.selfstudy.exercises import is_stub

    def same(a: str, b: str) -> bool:
        return [l.rstrip() for l in a.strip().splitlines()] == [l.rstrip() for l in b.strip().splitlines()]

    for gid in exercise.solutions:
        given = submitted_sources.get(gid, [])
        if len(given) != 1:
            return False
        if not ((gid in stubs and same(given[0], stubs[gid])) or is_stub(given[0])):
            return False
    return True


def check(notebook: Path, *, limits: Limits = Limits(), exercise: str | None = None,
          hidden: bool = False) -> list[TestResult]:
    """Run ``notebook``'s tests as grading does; one result per test cell run (of ``exercise`` only, if given).

    The judge kernel starts first (:mod:`autograder.headstart`): it boots while the lesson is read.
    """
    from . import headstart

    notebook = Path(notebook)
    submitted = _read_submission(notebook)
    started = headstart.start(notebook, exercise, hidden=hidden, kernel_arguments=QUIET_KERNEL)
    try:
        return _check(notebook, submitted, limits=limits, exercise=exercise, hidden=hidden)
    finally:
        if started:
            headstart.stop()  # the check failed before it ran: its kernel is not left behind


def _check(notebook: Path, submitted: dict, *, limits: Limits, exercise: str | None, hidden: bool) -> list[TestResult]:
    from course_lib.selfstudy.exercises import exercises_in

    from .leaks import WITHHELD, quotes_hidden
    from .normalize import normalize, solution_sources

    lesson = notebook.resolve().parent.name
    cells = _lesson_cells(lesson, submitted, hidden=hidden, folder=notebook.resolve().parent)
    given = solution_sources(submitted)
    known = exercises_in(json.loads(json.dumps(cells.template)), lesson)
    chosen = [exercise_named(known, exercise)] if exercise else known
    template = _select(cells.template, chosen[0], given) if exercise else cells.template
    normalized = normalize(template, submitted, lesson)
    of_test = {t: e for e in known for t in e.tests}
    run_tests = {t for e in chosen for t in e.tests}
    untouched = {e.name for e in known if _untouched(e, given, cells.stubs)}
    results = [TestResult(d.grade_id, 0.0, "rejected", d.message,
                          exercise=next((e.label for e in known if d.grade_id in e.solutions), ""))
               for d in normalized.rejected() if d.status == "rejected"]
    _execute(normalized.notebook, notebook.resolve().parent, limits)
    lost = normalized.lost()
    for cell in normalized.notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code" or not meta.get("grade") or grade_id not in run_tests:
            continue
        owner = of_test.get(grade_id)
        result = TestResult(grade_id, float(meta.get("points", 0)), "passed",
                            exercise=owner.label if owner else "",
                            hidden_part=grade_id in cells.hidden_parts,
                            stress=_is_stress(cell.source, grade_id))
        error = graded_cell_error(cell)
        if owner is not None and owner.name in untouched:
            result.outcome, result.message = "not attempted", STUB_MESSAGE
        elif not hidden and not _has_visible_check(cell.source):
            result.outcome, result.message = "hidden", "runs at grading"
        elif grade_id in lost:
            result.outcome, result.message = "failed", f"not graded: {lost[grade_id]}"
        elif error:
            message = error[1]
            if hidden and quotes_hidden(message, cells.secret):
                message = WITHHELD
            if error[0] == "NotImplementedError":
                result.outcome = "not attempted"
                message = "not attempted yet: code it calls still raises NotImplementedError" + (
                    f" ({message.split(':', 1)[1].strip()})" if message.split(":", 1)[1].strip() else "")
            else:
                result.outcome = "failed"
            result.message = message
        elif cell.get("execution_count") is None:
            result.outcome, result.message = "failed", "this cell did not run"
        results.append(result)
    return results


def check_hidden(notebook: Path, *, limits: Limits = Limits(), exercise: str | None = None) -> list[TestResult]:
    """For a learner alone: grade ``notebook`` as grading would, hidden tests included.

    Only each test's name, points and message come back — never its code,
    and a message that quotes a hidden line is withheld. An instructor turns
    this off for a class by setting ``COURSE_HIDDEN_CHECKS=off`` in the
    students' environment.
    """
    if os.environ.get("COURSE_HIDDEN_CHECKS", "on").lower() in ("off", "0", "no"):
        raise CourseError("hidden checks are turned off for this class: they run at grading")
    return check(notebook, limits=limits, exercise=exercise, hidden=True)


# ----------------------------------------------------------------------------------- the report
def _fit(message: str, indent: str = "        ") -> str:
    """A message on the lines below its test, wrapped at 100 columns, at most MESSAGE_LINES of them."""
    import textwrap

    lines = message.strip().splitlines() or [""]
    if len(lines) == 1 and len(lines[0]) <= 90:
        return f" — {lines[0]}"
    lines = [part for line in lines for part in (textwrap.wrap(line, 100, subsequent_indent="  ",
                                                               break_on_hyphens=False) or [""])]
    shown = lines[:MESSAGE_LINES]
    if len(lines) > MESSAGE_LINES:
        shown.append(f"… {len(lines) - MESSAGE_LINES} more lines: run the test cell in the notebook to see them all")
    return "\n" + "\n".join(indent + line for line in shown)


def report(notebook: Path, results: list[TestResult], *, hidden: bool = False) -> str:
    marks = {"passed": "PASS", "failed": "FAIL", "not attempted": "TODO", "rejected": "REJECTED",
             "hidden": "HIDDEN"}
    lines = [f"{'All tests (hidden ones included)' if hidden else 'Visible tests'} of {notebook}:"]
    heading = None
    for r in results:
        if r.exercise and r.exercise != heading:
            heading = r.exercise
            lines.append(f" {heading}")
        notes = []
        if r.hidden_part:
            notes.append("hidden checks included" if hidden else "+ hidden checks at grading")
        if r.stress and r.outcome == "passed":
            notes.append("a stress run: evidence, not proof")
        tail = f" [{'; '.join(notes)}]" if notes else ""
        lines.append(f"  {marks[r.outcome]:<4}  {r.grade_id} ({r.points:g} pt){tail}" + (_fit(r.message) if r.message else ""))
    passed = sum(r.outcome == "passed" for r in results)
    rejected = [r for r in results if r.outcome == "rejected"]
    hidden_only = [r for r in results if r.outcome == "hidden"]
    todo = [r for r in results if r.outcome == "not attempted"]
    tests = [r for r in results if r.outcome not in ("rejected", "hidden")]
    lines.append(f"{passed} of {len(tests)} test cells passed" + ("." if hidden else " their visible checks."))
    if todo:
        lines.append(f"{len(todo)} test cell(s) not attempted yet (TODO): write the exercise in its solution cell.")
    if hidden_only:
        lines.append(f"{len(hidden_only)} test cell(s) ({sum(r.points for r in hidden_only):g} pt) have only "
                     "hidden checks: they run at grading, not here.")
    partly = [r for r in results if r.hidden_part and r.outcome != "hidden"]
    if partly and not hidden:
        lines.append(f"{len(partly)} test cell(s) marked \"+ hidden checks at grading\" run more checks at grading "
                     "than here.")
    if any(r.stress and r.outcome == "passed" for r in results):
        lines.append("A stress run that passes shows only that no race happened in these runs: evidence, not "
                     "proof. The schedule explorer's tests are the ones that search for the bad interleaving.")
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


def _released_hidden_checks(folder: Path, lesson: str):
    """The hidden-checks file the instructor released beside the notebook (a class, where the source
    notebooks are not), as a notebook; refused clearly where it is not there."""
    import nbformat

    from .release import HIDDEN_CHECKS_FILE

    released = folder / HIDDEN_CHECKS_FILE
    if not released.is_file():
        raise CourseError(f"`course check --hidden` needs the course's source notebooks or the hidden checks "
                          f"your instructor releases with a lesson, and neither is here: hidden checks are "
                          f"turned off for {lesson} in this class; its hidden tests run when your hand-in "
                          "is graded")
    try:
        return nbformat.reads(released.read_text(encoding="utf-8"), as_version=4)
    except (OSError, ValueError) as exc:
        raise CourseError(f"{released} is not usable ({type(exc).__name__}): fetch {lesson} again") from None


# ----------------------------------------------------------------------------------- progress
def record_progress(notebook: Path, results: list[TestResult], *, hidden: bool) -> str:
    """Note the check in the learner's progress file; returns a line to show ("" if none).

    Per exercise *attempted* — its own tests ran against the learner's code,
    not the stub: the tests that passed of those that ran (a test with only
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
            ran = [by_id[t] for t in exercise.tests if t in by_id and by_id[t].outcome in ("passed", "failed")]
            rejected = any(by_id.get(s) is not None and by_id[s].outcome == "rejected" for s in exercise.solutions)
            if not ran and not rejected:
                continue  # not checked now, or still the stub: nothing attempted to record
            passed = 0 if rejected else sum(r.outcome == "passed" for r in ran)
            total = len([t for t in exercise.tests if t in by_id and by_id[t].outcome != "hidden"])
            outcomes[exercise.name] = (passed, max(total, len(ran)))
        if not outcomes:
            return "(progress: nothing recorded — no exercise has code of yours yet)"
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
