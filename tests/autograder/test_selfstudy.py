"""A learner alone, through the `course` command: staged hints, progress from real checks, and
worked solutions only after an attempt — on the tiny fixture course (two exercises)."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder.leaks import hidden_lines
from course_lib.selfstudy import progress
from tests.submissions import MINI_COURSE, make_submission, run_course

LESSON = "01-mini"


def course(*args, **kw):
    return run_course(*args, notebooks=MINI_COURSE, timeout=300, **kw)


def test_hints_come_one_at_a_time_and_say_when_none_is_left(tmp_path):
    shown = [course("hint", "01", "double", "--work", str(tmp_path)) for _ in range(3)]
    assert [r.returncode for r in shown] == [0, 0, 0]
    assert "hint 1 of 2" in shown[0].stdout and "MINI-HINT-1" in shown[0].stdout
    assert "MINI-HINT-2" not in shown[0].stdout
    assert "hint 2 of 2" in shown[1].stdout and "MINI-HINT-2" in shown[1].stdout
    assert "seen all 2 hints" in shown[2].stdout and "course solutions" in shown[2].stdout
    by_number = course("hint", "01-mini", "2", "--work", str(tmp_path))
    assert "MINI-HINT-3" in by_number.stdout, "an exercise can be named by its number"
    saved = json.loads((tmp_path / progress.FILE_NAME).read_text())["lessons"][LESSON]
    assert saved["double"]["hints_seen"] == 2 and saved["total"]["hints_seen"] == 1


@pytest.mark.parametrize("args,words", [
    (("hint", "07", "double"), "unknown lesson '07'"),
    (("hint", "01", "triple"), "has no exercise 'triple'; its exercises are: double, total"),
])
def test_a_wrong_lesson_or_exercise_is_one_clear_line(tmp_path, args, words):
    result = course(*args, "--work", str(tmp_path))
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_the_progress_file_is_never_written_among_the_course_sources():
    for folder in (MINI_COURSE / LESSON, MINI_COURSE):  # a source lesson folder, or the folder above
        result = course("progress", "--work", str(folder))
        assert result.returncode == 2 and "source lessons" in result.stderr
    assert not (MINI_COURSE / progress.FILE_NAME).exists()
    assert not (MINI_COURSE / "progress.html").exists()


WRONG_TOTAL = "def total(items):\n    return 0\n"


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A work folder where `course check` ran on a notebook with one exercise right and one wrong,
    then `course check --hidden`."""
    root = tmp_path_factory.mktemp("work")
    notebook = make_submission(root, "me", LESSON, {"total": WRONG_TOTAL}, notebooks=MINI_COURSE)
    nb = nbformat.read(notebook, as_version=4)  # as released: the hidden tests are not in it
    for cell in nb.cells:
        cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
    nbformat.write(nb, notebook)
    work = notebook.parent.parent
    runs = [course("check", str(notebook)), course("check", "--hidden", str(notebook))]
    return work, runs


@pytest.mark.slow
def test_progress_counts_match_real_checks(checked):
    work, (visible, hidden) = checked
    assert visible.returncode == 1 and "Progress saved" in visible.stdout, visible.stdout + visible.stderr
    assert hidden.returncode == 1
    saved = json.loads((work / progress.FILE_NAME).read_text())["lessons"][LESSON]
    # double: double_basic visible and passing, double_hidden only hidden; total: total_basic fails
    assert saved["double"]["visible"] == [1, 1] and saved["double"]["hidden"] == [2, 2]
    assert saved["total"]["visible"] == [0, 1] and saved["total"]["hidden"] == [0, 1]
    assert saved["double"]["checked_at"] and saved["total"]["checked_at"]
    shown = course("progress", "--work", str(work))
    assert shown.returncode == 0
    assert "01-mini: 1 of 2 exercises done" in shown.stdout
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("total"))
    assert "0/1" in row and "checked" in row
    page = (work / "progress.html").read_text()
    assert "1 of 2 exercises done" in page and "data:image/png;base64," in page


@pytest.mark.slow
def test_hidden_checks_turned_off_show_as_off(checked):
    work, _ = checked
    shown = course("progress", "--work", str(work), env={"COURSE_HIDDEN_CHECKS": "off"})
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("double"))
    assert " off " in row


@pytest.mark.parametrize("garbage", [b"{not json", b"\xff\xfe\x00", b'{"lessons": {"01-mini": {"double": '
                                     b'{"visible": [5, 2]}, "total": {"hints_seen": 1}}}}', b"[]"])
def test_a_corrupt_progress_file_is_rebuilt_never_a_traceback(tmp_path, garbage):
    (tmp_path / progress.FILE_NAME).write_bytes(garbage)
    shown = course("progress", "--work", str(tmp_path))
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "note:" in shown.stdout
    hinted = course("hint", "01", "total", "--work", str(tmp_path))
    assert hinted.returncode == 0
    saved = json.loads((tmp_path / progress.FILE_NAME).read_text())
    assert saved["version"] == 1 and "double" not in saved["lessons"].get(LESSON, {})


def test_solutions_need_an_attempt_first_unless_forced(tmp_path):
    out = tmp_path / "out"
    asked = course("solutions", "01", "--out", str(out), "--work", str(tmp_path))  # stdin is not a terminal
    assert asked.returncode == 0 and "left out" in asked.stdout
    written = out / LESSON / f"{LESSON}-solutions.ipynb"
    text = written.read_text()
    assert "return 2 * x" not in text and "Left out" in text
    progress.record_check(tmp_path, LESSON, {"double": (1, 1)}, hidden=False)
    written.unlink()
    after = course("solutions", "01", "--out", str(out), "--work", str(tmp_path))
    text = written.read_text()
    assert "return 2 * x" in text and "MINI-WALKTHROUGH:" in text, after.stdout
    assert "return sum(items)" not in text, "total was not checked: still left out"


def test_solutions_are_walkthroughs_and_code_never_tests(tmp_path):
    out = tmp_path / "out"
    result = course("solutions", "01", "--out", str(out), "--force", "--work", str(tmp_path))
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(out / LESSON / f"{LESSON}-solutions.ipynb", as_version=4)
    nbformat.validate(nb)
    text = "\n".join(c.source for c in nb.cells)
    assert "MINI-WALKTHROUGH:" in text and "MINI-WALKTHROUGH-2:" in text
    assert "return 2 * x" in text and "return sum(items)" in text and "BEGIN SOLUTION" not in text
    source = nbformat.read(MINI_COURSE / LESSON / f"{LESSON}.ipynb", as_version=4)
    secret = hidden_lines(c.source for c in source.cells if c.cell_type == "code")
    squeezed = "".join(text.split())
    assert secret and not [line for line in secret if line in squeezed]
    assert "grading.expect_equal" not in text and "SECRET_HIDDEN_MARKER" not in text


def test_solutions_never_overwrite_a_file(tmp_path):
    target = tmp_path / LESSON / f"{LESSON}-solutions.ipynb"
    target.parent.mkdir()
    target.write_text("my own notes")
    result = course("solutions", "01", "--out", str(tmp_path), "--force")
    assert result.returncode == 2 and "exists; nothing was written" in result.stderr
    assert target.read_text() == "my own notes"
    link = tmp_path / "elsewhere"
    link.mkdir()
    (link / LESSON).symlink_to(tmp_path / LESSON)
    target.unlink()
    target.symlink_to(tmp_path / "victim")
    result = course("solutions", "01", "--out", str(link), "--force")
    assert result.returncode == 2 and not (tmp_path / "victim").exists()


def test_solutions_ask_only_about_exercises_not_yet_checked(tmp_path, monkeypatch):
    """Is the learner asked once per unchecked exercise, and does a yes write that one?"""
    from autograder import lessons, solutions

    monkeypatch.setenv("COURSE_NOTEBOOKS", str(MINI_COURSE))  # where course_lib reads exercises
    resolve = lessons.resolve
    monkeypatch.setattr(solutions.lessons_mod, "resolve", lambda names: resolve(names, MINI_COURSE))
    progress.record_check(tmp_path, LESSON, {"double": (0, 1)}, hidden=False)  # checked, even failing
    asked = []
    written = solutions.solutions(["01"], out=tmp_path / "out", work=tmp_path, say=lambda _: None,
                                  confirm=lambda lesson, name: asked.append(name) or True)
    assert asked == ["total"]
    text = written[0].read_text()
    assert "return 2 * x" in text and "return sum(items)" in text
