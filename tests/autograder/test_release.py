"""Release on its own: nbgrader's student version, never a solution, never over a student's work."""

from __future__ import annotations

import nbformat
import pytest

from autograder import release as release_mod
from autograder.lessons import CourseError
from autograder.release import MARKERS, build_course, cached_course, check_release, template_key
from tests.submissions import MINI_COURSE


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return build_course(tmp_path_factory.mktemp("course"), ["01-mini"], notebooks=MINI_COURSE)


@pytest.mark.slow
def test_the_release_has_stubs_no_hidden_tests_and_a_gradebook_that_agrees(course):
    """Are solutions replaced by the course's stub, hidden tests removed, and every graded cell's
    points recorded (the workers copy that gradebook)?"""
    from nbgrader.api import Gradebook

    released = nbformat.read(course / "release" / "01-mini" / "01-mini.ipynb", as_version=4)
    text = nbformat.writes(released)
    assert not [m for m in MARKERS if m in text] and "SECRET_HIDDEN_MARKER" not in text
    stubs = [c.source for c in released.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(stubs) == 2 and all(s.rstrip().endswith("# YOUR CODE HERE\n    raise NotImplementedError()") for s in stubs)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "threads-sockets") as gb:
        assert gb.find_assignment("01-mini").max_score == 5
    check_release(course / "release" / "01-mini")


@pytest.mark.parametrize("marker", MARKERS)
def test_check_release_refuses_a_notebook_that_still_holds_a_marker(tmp_path, marker):
    """Would a release that kept a solution or hidden test be handed out?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"### {marker}\nx = 1")])
    nbformat.write(nb, tmp_path / "lesson.ipynb")
    with pytest.raises(CourseError, match=f"still contains \\['{marker}'\\]: not released"):
        check_release(tmp_path)


@pytest.mark.slow
def test_release_keeps_a_folder_that_exists_unless_forced(tmp_path):
    """Does releasing again leave a student's edited lesson alone, and --force replace it?"""
    work = tmp_path / "lesson-folder"
    (work / "01-mini").mkdir(parents=True)
    (work / "01-mini" / "mine.txt").write_text("my notes")
    assert release_mod.release(["01-mini"], out=work, notebooks=MINI_COURSE) == []
    assert (work / "01-mini" / "mine.txt").read_text() == "my notes"
    assert release_mod.release(["01-mini"], out=work, force=True, notebooks=MINI_COURSE) == [work / "01-mini"]
    assert sorted(p.name for p in (work / "01-mini").iterdir()) == ["01-mini.ipynb", "hints.json"]


@pytest.mark.slow
def test_a_template_is_built_once_and_rebuilt_when_a_lesson_changes(tmp_path, monkeypatch):
    """Does a second batch of the same lessons reuse the built template, and does editing the
    lesson (or anything it is built from) give a new one?"""
    import shutil

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    lessons = tmp_path / "notebooks"
    shutil.copytree(MINI_COURSE, lessons)
    first = cached_course(["01-mini"], lessons)
    assert (first / "gradebook.db").is_file() and (first / "release" / "01-mini" / "01-mini.ipynb").is_file()
    monkeypatch.setattr(release_mod, "build_course", lambda *a, **k: pytest.fail("rebuilt unchanged lessons"))
    assert cached_course(["01-mini"], lessons) == first
    monkeypatch.undo()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    before = template_key(["01-mini"], lessons)
    notebook = lessons / "01-mini" / "01-mini.ipynb"
    notebook.write_text(notebook.read_text().replace("Return twice x.", "Return 2x."))
    assert template_key(["01-mini"], lessons) != before
    second = cached_course(["01-mini"], lessons)
    assert second != first and "Return 2x." in (second / "source" / "01-mini" / "01-mini.ipynb").read_text()
    assert sorted(p.name for p in (tmp_path / "cache" / "templates").iterdir()) == sorted([first.name, second.name])
