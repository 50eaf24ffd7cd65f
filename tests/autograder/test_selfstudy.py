"""A learner alone, through the `course` command: staged hints numbered as the notebook numbers them,
progress from real checks of the learner's own code, worked solutions only after an attempt, and
self-study files that a planted link cannot turn against the learner — on the tiny fixture course
(two exercises) and, where numbering matters, on lesson 03."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest

from autograder.leaks import hidden_lines
from course_lib.selfstudy import progress
from tests.submissions import MINI_COURSE, REPO, course_env, make_submission, run_course

LESSON = "01-mini"


@pytest.fixture(autouse=True)
def own_key(tmp_path, monkeypatch):
    """Each test has its own sealing key (never the machine user's), here and in `course` subprocesses."""
    monkeypatch.setenv("COURSE_PROGRESS_KEY_FILE", str(tmp_path / "key" / "progress.key"))


def course(*args, **kw):
    return run_course(*args, notebooks=MINI_COURSE, timeout=300, **kw)


def released(root, replace=None):
    """The mini lesson as a student has it (hidden tests gone), solution cells as given or stubs."""
    notebook = make_submission(root, "me", LESSON, replace, notebooks=MINI_COURSE)
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade") and cell.metadata["nbgrader"]["grade_id"] not in (replace or {}):
            head = cell.source.split("### BEGIN SOLUTION")[0]
            cell.source = head + "# YOUR CODE HERE\n    raise NotImplementedError()"
    nbformat.write(nb, notebook)
    return notebook


# ----------------------------------------------------------------------------------------- hints
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


def test_hint_numbers_are_the_notebooks_and_the_lesson_lists_them(tmp_path):
    """Is `course hint 03 1` Exercise 1 of the notebook (SafeCounter, not the prediction before it),
    and does `course hint 03` list the exercises with their numbers?"""
    first = run_course("hint", "03", "1", "--work", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Exercise 1 — SafeCounter, hint 1 of")
    saved = json.loads((tmp_path / progress.FILE_NAME).read_text())["lessons"]["03-race-conditions-and-locks"]
    assert list(saved) == ["SafeCounter"], "only SafeCounter's hint was used"
    listed = run_course("hint", "03", "--work", str(tmp_path))
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("-", "predict_lost_update"), ("1", "SafeCounter"), ("2", "Bank"),
                                            ("3", "break_overdraft")]
    assert "1 of 3 hints seen" in listed.stdout


def test_no_hint_assumes_a_name_the_learner_chooses():
    """Do the hints of the lessons name only what the exercise asks for, never the reference's private
    attributes as if the learner had them (`self._count`), except as a marked example?"""
    import re

    from course_lib.selfstudy.exercises import lesson_exercises
    from autograder.lessons import all_lessons

    assuming = []
    for lesson in all_lessons():
        for exercise in lesson_exercises(lesson):
            for number, text in enumerate(exercise.hints, 1):
                private = set(re.findall(r"self\._\w+", text))
                if private and not re.search(r"\b(for\s+example|e\.g\.|say|if you call|here called)\b", text, re.I):
                    assuming.append(f"{lesson} {exercise.name} hint {number}: {sorted(private)}")
    assert not assuming, "\n".join(assuming)


@pytest.mark.parametrize("args,words", [
    (("hint", "07", "double"), "unknown lesson '07'"),
    (("hint", "01", "triple"), "has no exercise 'triple'; its exercises are: Exercise 1 — double, Exercise 2 — total"),
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


# ----------------------------------------------------------------------------------------- checks and progress
WRONG_TOTAL = "def total(items):\n    return 0\n"


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A work folder where `course check` ran on a notebook with one exercise right and one wrong,
    then `course check --hidden` (with its own sealing key)."""
    root = tmp_path_factory.mktemp("work")
    env = {"COURSE_PROGRESS_KEY_FILE": str(root / "key")}
    notebook = released(root, {"double": "def double(x):\n    return 2 * x\n", "total": WRONG_TOTAL})
    work = notebook.parent.parent
    runs = [course("check", str(notebook), env=env), course("check", "--hidden", str(notebook), env=env)]
    return work, runs, env


@pytest.mark.slow
def test_progress_counts_match_real_checks(checked):
    work, (visible, hidden), env = checked
    assert visible.returncode == 1 and "Progress saved" in visible.stdout, visible.stdout + visible.stderr
    assert hidden.returncode == 1
    saved = json.loads((work / progress.FILE_NAME).read_text())["lessons"][LESSON]
    # double: double_basic visible and passing, double_hidden only hidden; total: total_basic fails
    assert saved["double"]["visible"] == [1, 1] and saved["double"]["hidden"] == [2, 2]
    assert saved["total"]["visible"] == [0, 1] and saved["total"]["hidden"] == [0, 1]
    assert saved["double"]["checked_at"] and saved["double"]["seal"]
    shown = course("progress", "--work", str(work), env=env)
    assert shown.returncode == 0
    assert "01-mini: 1 of 2 exercises done" in shown.stdout
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("Exercise 2 — total"))
    assert "0/1" in row and "checked" in row
    assert "Columns: status: done = " in shown.stdout, "the columns are explained"
    page = (work / "progress.html").read_text()
    assert "1 of 2 exercises done" in page and "data:image/png;base64," in page and "<dt><b>status" in page


@pytest.mark.slow
def test_a_real_check_unlocks_the_worked_solutions_of_what_was_tried(checked, tmp_path):
    work, _, env = checked
    result = course("solutions", "01", "--out", str(tmp_path), "--work", str(work), env=env)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / LESSON / f"{LESSON}-solutions.ipynb").read_text()
    assert "return 2 * x" in text and "return sum(items)" in text, "both were attempted (one wrong)"


@pytest.mark.slow
def test_hidden_checks_turned_off_show_as_off(checked):
    work, _, env = checked
    shown = course("progress", "--work", str(work), env={**env, "COURSE_HIDDEN_CHECKS": "off"})
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("Exercise 1 — double"))
    assert " off " in row


@pytest.mark.slow
def test_a_check_of_the_untouched_notebook_unlocks_no_solution(tmp_path):
    """After `course check` of the notebook as released, is every exercise TODO, nothing recorded as
    checked, and does `course solutions` write nothing (not even a placeholder)?"""
    notebook = released(tmp_path)
    work = notebook.parent.parent
    checked = course("check", str(notebook))
    assert "TODO  double_basic" in checked.stdout and "TODO  total_basic" in checked.stdout, checked.stdout
    assert "nothing recorded" in checked.stdout
    data = progress.load(work)
    assert not any(e.get("checked_at") for e in data["lessons"].get(LESSON, {}).values())
    out = tmp_path / "out"
    result = course("solutions", "01", "--out", str(out), "--work", str(work))
    assert result.returncode == 1 and "nothing written" in result.stdout, result.stdout + result.stderr
    assert not out.exists() or not any(out.rglob("*.ipynb")), "no file of placeholders"


def test_a_progress_file_typed_by_hand_unlocks_nothing(tmp_path):
    """Does a checked_at (or a seal) that `course check` did not write unlock any worked solution?"""
    forged = {"version": 1, "lessons": {LESSON: {"double": {"checked_at": "2026-01-01 10:00:00",
                                                            "visible": [1, 1], "seal": "00" * 32},
                                                 "total": {"checked_at": "2026-01-01 10:00:00"}}}}
    (tmp_path / progress.FILE_NAME).write_text(json.dumps(forged))
    result = course("solutions", "01", "--out", str(tmp_path / "out"), "--work", str(tmp_path))
    assert result.returncode == 1 and "nothing written" in result.stdout
    progress.record_check(tmp_path, LESSON, {"double": (1, 1)}, hidden=False)  # as course check records it
    data = progress.load(tmp_path)
    assert progress.sealed_check(data, LESSON, "double") and not progress.sealed_check(data, LESSON, "total")
    data["lessons"][LESSON]["double"]["visible"] = [5, 5]  # edited after the check: the seal no longer fits
    assert not progress.sealed_check(data, LESSON, "double")


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


# ----------------------------------------------------------------------------------------- worked solutions
def test_solutions_are_walkthroughs_and_code_never_tests(tmp_path):
    out = tmp_path / "out"
    result = course("solutions", "01", "--out", str(out), "--force", "--work", str(tmp_path))
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(out / LESSON / f"{LESSON}-solutions.ipynb", as_version=4)
    nbformat.validate(nb)
    text = "\n".join(c.source for c in nb.cells)
    assert "MINI-WALKTHROUGH:" in text and "MINI-WALKTHROUGH-2:" in text
    assert "return 2 * x" in text and "return sum(items)" in text and "BEGIN SOLUTION" not in text
    assert "(3 points)" in text and "(1 points)" not in text
    source = nbformat.read(MINI_COURSE / LESSON / f"{LESSON}.ipynb", as_version=4)
    secret = hidden_lines(c for c in source.cells if c.cell_type == "code")
    squeezed = "".join(text.split())
    assert secret and not [line for line in secret if line in squeezed]
    assert "grading.expect_equal" not in text and "SECRET_HIDDEN_MARKER" not in text


def test_only_unlocked_exercises_are_written_never_a_placeholder(tmp_path):
    progress.record_check(tmp_path, LESSON, {"double": (0, 1)}, hidden=False)  # checked, even failing
    out = tmp_path / "out"
    result = course("solutions", "01", "--out", str(out), "--work", str(tmp_path))  # stdin is no terminal
    assert result.returncode == 0 and "total: not written" in result.stdout, result.stdout + result.stderr
    text = (out / LESSON / f"{LESSON}-solutions.ipynb").read_text()
    assert "return 2 * x" in text and "return sum(items)" not in text and "Left out" not in text
    progress.record_check(tmp_path, LESSON, {"total": (1, 1)}, hidden=False)
    again = course("solutions", "01", "--out", str(out), "--work", str(tmp_path))
    assert f"{LESSON}-solutions-2.ipynb" in again.stdout, "the first file stays; the new one gets the next name"
    assert "return sum(items)" in (out / LESSON / f"{LESSON}-solutions-2.ipynb").read_text()


def test_solutions_ask_only_about_exercises_not_yet_checked(tmp_path, monkeypatch):
    """Is the learner asked once per unchecked exercise, and does a yes write that one?"""
    from autograder import lessons, solutions

    monkeypatch.setenv("COURSE_NOTEBOOKS", str(MINI_COURSE))  # where course_lib reads exercises
    resolve = lessons.resolve
    monkeypatch.setattr(solutions.lessons_mod, "resolve", lambda names: resolve(names, MINI_COURSE))
    progress.record_check(tmp_path, LESSON, {"double": (0, 1)}, hidden=False)
    asked = []
    written = solutions.solutions(["01"], out=tmp_path / "out", work=tmp_path, say=lambda _: None,
                                  confirm=lambda lesson, name: asked.append(name) or True)
    assert asked == ["total"]
    text = written[0].read_text()
    assert "return 2 * x" in text and "return sum(items)" in text


def test_end_of_input_at_the_question_is_a_no_on_one_line(tmp_path):
    """At a terminal, does Ctrl-D at "Read its worked solution anyway?" answer no, with no traceback?"""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "autograder.cli", "solutions", "01", "--out",
                                 str(tmp_path / "out"), "--work", str(tmp_path)], cwd=REPO,
                                env={**course_env(MINI_COURSE), "COURSE_PROGRESS_KEY_FILE": str(tmp_path / "k")},
                                stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(follower)
        follower = -1
        os.write(leader, b"\x04\x04")  # Ctrl-D for each of the two questions
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 1 and "Traceback" not in err and "EOFError" not in err, err
    assert "nothing written" in out


def test_ctrl_c_at_the_question_is_one_line(tmp_path, monkeypatch, capsys):
    from autograder import cli

    def interrupted(prompt=""):
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupted)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    code = cli.main(["solutions", "03", "--out", str(tmp_path / "out"), "--work", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 130 and err.strip().splitlines()[-1].startswith("course: interrupted")
    assert "Traceback" not in err and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------- planted links
def test_a_planted_lock_link_is_refused_and_nothing_is_created(tmp_path):
    """`course hint` in a folder where a classmate linked the progress lock to a file of the learner's:
    refused in one line, the link's target not created or touched."""
    victim = tmp_path / "victim.txt"
    work = tmp_path / "work"
    work.mkdir()
    (work / (progress.FILE_NAME + ".lock")).symlink_to(victim)
    result = course("hint", "01", "double", "--work", str(work))
    assert result.returncode == 2 and "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert not victim.exists()


def test_a_planted_page_or_progress_link_is_replaced_never_written_through(tmp_path):
    """`course progress` where progress.html and the progress file are links to the learner's files:
    the links are replaced by the course's own files; what they pointed at is unchanged."""
    work = tmp_path / "work"
    work.mkdir()
    page_target, data_target = tmp_path / "thesis.html", tmp_path / "notes.json"
    page_target.write_text("my thesis")
    data_target.write_text('{"version": 1, "lessons": {}}')
    (work / "progress.html").symlink_to(page_target)
    (work / progress.FILE_NAME).symlink_to(data_target)
    shown = course("progress", "--work", str(work))
    assert shown.returncode == 0, shown.stderr
    assert "symbolic link" in shown.stdout, "the note says why the progress file was not read"
    assert page_target.read_text() == "my thesis" and data_target.read_text() == '{"version": 1, "lessons": {}}'
    assert not (work / "progress.html").is_symlink() and "Your progress" in (work / "progress.html").read_text()
    course("hint", "01", "double", "--work", str(work))
    assert not (work / progress.FILE_NAME).is_symlink() and data_target.read_text() == '{"version": 1, "lessons": {}}'


def test_solutions_never_write_through_a_linked_lesson_folder(tmp_path):
    """`course solutions --out OUT` where OUT/<lesson> is a link outside: refused, nothing written there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / LESSON).symlink_to(outside)
    result = course("solutions", "01", "--out", str(out), "--force")
    assert result.returncode == 2 and "symbolic link" in result.stderr and "nothing was written" in result.stderr
    assert list(outside.iterdir()) == []
    (out / LESSON).unlink()
    (out / LESSON).mkdir()
    (out / LESSON / f"{LESSON}-solutions.ipynb").symlink_to(outside / "victim.ipynb")
    written = course("solutions", "01", "--out", str(out), "--force")
    assert written.returncode == 0 and not (outside / "victim.ipynb").exists()


@pytest.mark.parametrize("command", [("hint", "01", "double"), ("progress",),
                                     ("solutions", "01", "--out", "{tmp}/out", "--force")])
def test_a_work_or_output_folder_reached_through_a_link_is_refused(tmp_path, command):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real)
    args = [a.replace("{tmp}", str(tmp_path / "linked")) for a in command]
    result = course(*args, "--work", str(tmp_path / "linked"))
    assert result.returncode == 2 and "symbolic link" in result.stderr, result.stdout + result.stderr
    assert list(real.iterdir()) == []


def test_the_progress_plot_keeps_its_legend_off_every_bar(tmp_path):
    """With every lesson's exercises (lesson 09's tall bar included), does the legend overlap no bar?"""
    import matplotlib.pyplot as plt

    from autograder.progress_report import figure, progress_rows

    fig = figure(progress_rows(tmp_path))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for patch in ax.patches]
    assert bars and not [b for b in bars if b.overlaps(legend)]
    plt.close(fig)
