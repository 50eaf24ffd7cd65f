"""Are the lesson notebooks well-formed nbgrader sources that run, and is their release safe?

Every lesson under notebooks/ is checked: stored clean (no outputs), valid
nbformat with unique ids, correct nbgrader metadata; it runs top to bottom
with its solutions in a fresh kernel; and its student version has no
solution or hidden test and runs up to the first exercise.
"""

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib.selfstudy.exercises import is_self_study_cell

from autograder.lessons import all_lessons
from autograder.release import MARKERS, release
from tests.submissions import NOTEBOOKS

LESSONS = all_lessons(NOTEBOOKS)
SECONDS_PER_LESSON = 45  # solutions and every hidden test (lesson 09 explores ~25 s of schedules), a core to spare


def seconds_per_lesson() -> float:
    """The lesson's bound, stretched by the machine's load: with N runnable tasks per core the
    kernel gets about 1/N of one, so a lesson that takes 15 s on a quiet core takes 15 N s."""
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return SECONDS_PER_LESSON * min(max(1.0, per_core), 4.0)


def lesson_notebook(lesson) -> Path:
    return next((NOTEBOOKS / lesson).glob("*.ipynb"))


def nbgrader_meta(cell):
    return cell.metadata.get("nbgrader", {})


def test_there_are_lessons():
    """Is at least the first lesson there, named as an nbgrader assignment id?"""
    assert LESSONS and LESSONS[0].startswith("01-")


@pytest.mark.parametrize("lesson", LESSONS)
def test_notebook_is_stored_clean_and_valid(lesson):
    """Is the notebook valid nbformat, without outputs, with unique cell and grade ids?"""
    path = lesson_notebook(lesson)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert path.stem == lesson, "the notebook is named like its lesson folder"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), "cell ids must be present and unique"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"outputs stored in {cell.id}"
    grade_ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(set(grade_ids)) == len(grade_ids), "grade ids must be unique"


@pytest.mark.parametrize("lesson", LESSONS)
def test_cells_that_need_an_exercise_let_run_all_continue(lesson):
    """Are test cells tagged raises-exception, so a student's Run All gets past a failing one?"""
    nb = nbformat.read(lesson_notebook(lesson), as_version=4)
    untagged = [c.get("id") for c in nb.cells if nbgrader_meta(c).get("grade")
                and "raises-exception" not in c.metadata.get("tags", [])]
    assert not untagged, f"test cells without the raises-exception tag: {untagged}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_nbgrader_metadata_is_consistent(lesson):
    """Do solution cells carry markers, test cells points, and does every exercise have tests?"""
    nb = nbformat.read(lesson_notebook(lesson), as_version=4)
    solutions, tests = [], []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        assert meta.get("schema_version") == 3
        if meta.get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta["grade_id"]
            assert not meta.get("grade"), f"{meta['grade_id']}: a solution cell is not also a test"
            solutions.append(meta["grade_id"])
        if meta.get("grade"):
            assert meta.get("points", 0) > 0, f"{meta['grade_id']} has no points"
            assert meta.get("locked"), f"{meta['grade_id']}: test cells are locked"
            assert "BEGIN SOLUTION" not in cell.source
            tests.append(meta["grade_id"])
    assert solutions, "a lesson has graded exercises"
    assert len(tests) >= len(solutions), "every exercise has at least one test cell"
    assert any("BEGIN HIDDEN TESTS" in c.source for c in nb.cells), "a lesson has hidden tests"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_top_to_bottom_with_solutions(lesson):
    """Does the whole lesson run without an error, quickly, with its solutions?"""
    path = lesson_notebook(lesson)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=False,
                            shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - started
    # Cells tagged raises-exception (exercise checks, for a student's Run All) must not fail either.
    failed = [(c.get("id"), o.get("ename"), o.get("evalue")) for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.get("output_type") == "error"]
    assert not failed, f"cells failed with the solutions: {failed}"
    bound = seconds_per_lesson()
    assert elapsed < bound, f"{lesson} took {elapsed:.1f} s (bound {bound:.0f} s at this machine's load)"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    release(LESSONS, out=out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_release_has_no_solutions_or_hidden_tests(released, lesson):
    """Does the student version hold stubs instead of solutions, and no hidden test?"""
    nb_path = released / lesson / f"{lesson}.ipynb"
    text = nb_path.read_text(encoding="utf-8")
    for marker in MARKERS:
        assert marker not in text
    nb = nbformat.read(nb_path, as_version=4)
    stubs = [c for c in nb.cells if nbgrader_meta(c).get("solution") and c.cell_type == "code"]
    assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_every_released_code_cell_is_valid_python(released, lesson):
    """With its hidden tests cut out, is every code cell still Python (a hidden region that splits a
    try from its finally leaves a visible test a student's Run All cannot even compile)?"""
    import ast

    nb = nbformat.read(released / lesson / f"{lesson}.ipynb", as_version=4)
    broken = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        python = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            ast.parse(python)
        except SyntaxError as error:
            broken.append(f"{cell.get('id')}: {error}")
    assert not broken, broken


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_release_runs_up_to_the_first_exercise(released, lesson):
    """Can a student run everything before the first exercise without an error?"""
    nb = nbformat.read(released / lesson / f"{lesson}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("solution"))
    nb.cells = nb.cells[:first]
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=False,
                   shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(released / lesson)}}).execute()


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_demo_cells_are_released_as_they_are(released, lesson):
    """Does a student still get every demo cell, unchanged: the tag changes only what grading runs?"""
    source = nbformat.read(NOTEBOOKS / lesson / f"{lesson}.ipynb", as_version=4)
    student = nbformat.read(released / lesson / f"{lesson}.ipynb", as_version=4)
    demos = [c.source for c in source.cells if "demo" in c.metadata.get("tags", [])]
    released_sources = [c.source for c in student.cells]
    assert demos and all(d in released_sources for d in demos)
    self_study = [c for c in source.cells if is_self_study_cell(c)]
    assert len(student.cells) == len(source.cells) - len(self_study)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_hints_and_walkthroughs_are_not_in_the_student_version(released, lesson):
    """Does a hint reach a student only when asked for (course hint, the hint panel)?"""
    text = (released / lesson / f"{lesson}.ipynb").read_text(encoding="utf-8")
    source = nbformat.read(NOTEBOOKS / lesson / f"{lesson}.ipynb", as_version=4)
    notes = [c.source for c in source.cells if is_self_study_cell(c)]
    assert notes
    student = nbformat.read(released / lesson / f"{lesson}.ipynb", as_version=4)
    visible = "\n".join(c.source for c in student.cells)
    assert not [n for n in notes if n in visible or max(n.splitlines(), key=len) in visible]
    assert '"hint"' not in text and '"walkthrough"' not in text
