"""Self-study for a class whose students never read the source notebooks (a hub), on the fixture course.

The `course` command runs here with COURSE_NOTEBOOKS pointing at a folder
that does not exist, as in a student's account on the hub: hints come from
the hints file released with the lesson (or are refused when the instructor
turned them off), `course check --hidden` refuses clearly, and worked
solutions reach students only after `course feedback release` put the
lesson's feedback into nbgrader's exchange. Nothing here needs root.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder import release as release_mod
from autograder.config import COURSE_ID
from autograder.feedback_release import feedback_release, released_students
from autograder.hub.provision import open_to_others
from tests.submissions import MINI_COURSE, make_submission, run_course

pytestmark = pytest.mark.slow

LESSON = "01-mini"


def as_student(tmp: Path, *args: str, env: dict | None = None):
    """`course ...` where no source notebook exists (a student's account on a class hub)."""
    return run_course(*args, notebooks=tmp / "no-source-here", timeout=300, env=env)


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> dict[str, Path]:
    """The fixture lesson released twice: with its hints, and with --no-hints."""
    root = tmp_path_factory.mktemp("released")
    for name, off in (("on", []), ("off", ["01"])):
        release_mod.release([LESSON], out=root / name, notebooks=MINI_COURSE, no_hints=off)
    return {"on": root / "on", "off": root / "off", "root": root}


def test_the_hints_file_holds_the_hints_and_never_a_walkthrough(released):
    """Does hints.json carry every hint when on, none when off, and no walkthrough or solution either way?"""
    on = (released["on"] / LESSON / "hints.json").read_text()
    off = (released["off"] / LESSON / "hints.json").read_text()
    assert all(f"MINI-HINT-{n}" in on for n in (1, 2, 3, 4))
    assert "MINI-HINT" not in off
    for text in (on, off):
        assert "MINI-WALKTHROUGH" not in text and "BEGIN SOLUTION" not in text
        assert [e["name"] for e in json.loads(text)["exercises"]] == ["double", "total"]


def test_course_hint_works_from_the_released_hints_file(released, tmp_path):
    """Without any source notebook, does `course hint` give the released hints one at a time?"""
    work = tmp_path / "home"
    shutil.copytree(released["on"], work)
    first = as_student(tmp_path, "hint", "01", "double", "--work", str(work))
    assert first.returncode == 0, first.stderr
    assert "hint 1 of 2" in first.stdout and "MINI-HINT-1" in first.stdout and "MINI-HINT-2" not in first.stdout
    second = as_student(tmp_path, "hint", "01", "double", "--work", str(work))
    assert "MINI-HINT-2" in second.stdout
    shown = as_student(tmp_path, "progress", "--work", str(work))
    assert shown.returncode == 0 and "double" in shown.stdout and "2/2" in shown.stdout


def test_course_hint_refuses_a_lesson_released_without_hints(released, tmp_path):
    """When the instructor turned a lesson's hints off, is `course hint` one clear line, no hint?"""
    work = tmp_path / "home"
    shutil.copytree(released["off"], work)
    refused = as_student(tmp_path, "hint", "01", "double", "--work", str(work))
    assert refused.returncode == 2 and "turned off" in refused.stderr and "Traceback" not in refused.stderr
    assert "MINI-HINT" not in refused.stdout + refused.stderr
    unknown = as_student(tmp_path, "hint", "02", "x", "--work", str(work))
    assert unknown.returncode == 2 and "unknown lesson '02'" in unknown.stderr


def test_hidden_checks_refuse_clearly_without_the_source(released, tmp_path):
    """Where the hidden tests are not on the machine, does `course check --hidden` say so in one line?"""
    notebook = next((released["on"] / LESSON).glob("*.ipynb"))
    for env, words in (({}, "needs the course's source notebooks"),
                       ({"COURSE_HIDDEN_CHECKS": "off"}, "turned off for this class")):
        refused = as_student(tmp_path, "check", "--hidden", str(notebook), env=env)
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr


@pytest.fixture
def class_folders(tmp_path):
    """An instructor's course folder with two collected hand-ins (one through the exchange), graded
    feedback for both, and an exchange holding the course."""
    course, graded, exchange = tmp_path / "course", tmp_path / "graded", tmp_path / "exchange"
    for student in ("alice", "bob"):
        make_submission(course / "submitted", student, LESSON, notebooks=MINI_COURSE)
        page = graded / "feedback" / student / LESSON / f"{LESSON}.html"
        page.parent.mkdir(parents=True)
        page.write_text(f"<html>feedback for {student}</html>")
    for name, text in (("timestamp.txt", "2026-03-01 10:00:00.000000 UTC"), ("submission_secret.txt", "s3cr3t")):
        (course / "submitted" / "alice" / LESSON / name).write_text(text)  # bob's came from a ZIP: no secret
    (exchange / COURSE_ID).mkdir(parents=True)
    return {"course": course, "graded": graded, "exchange": exchange}


def test_feedback_release_puts_each_page_where_only_its_student_finds_it(class_folders):
    """Does `course feedback release` stage and release through nbgrader's exchange, and list who it
    could not reach?"""
    c = class_folders
    released = run_course("feedback", "release", str(c["graded"]), "--course", str(c["course"]),
                          "--exchange", str(c["exchange"]), notebooks=MINI_COURSE)
    assert released.returncode == 0, released.stderr
    assert "released to 1 student" in released.stdout and "not released to bob" in released.stdout
    assert released_students(c["course"], c["exchange"], LESSON) == ["alice"]
    outbound = list((c["exchange"] / COURSE_ID / "feedback").glob("*.html"))
    assert len(outbound) == 1 and outbound[0].read_text() == "<html>feedback for alice</html>"
    assert outbound[0].stat().st_mode & 0o004, "students must be able to read their feedback"
    again = feedback_release(c["graded"], course=c["course"], exchange=c["exchange"])
    assert [r.released for r in again] == [["alice"]]  # releasing twice changes nothing


def test_worked_solutions_reach_a_class_only_after_the_lessons_feedback(class_folders, released, tmp_path):
    """Is `course solutions --exchange` refused before feedback release, and does a student's
    `course solutions` then copy the released walkthroughs (and refuse before)?"""
    c = class_folders
    shelf = c["exchange"] / COURSE_ID / "solutions"
    publish = ("solutions", "01", "--exchange", str(c["exchange"]), "--course", str(c["course"]))
    home = tmp_path / "home"  # the student's folder, with the lesson fetched
    shutil.copytree(released["on"], home)
    student = ("solutions", "01", "--out", str(home / "mine"), "--work", str(home))
    env = {"COURSE_SOLUTIONS": str(shelf)}

    early = run_course(*publish, notebooks=MINI_COURSE)
    assert early.returncode == 2 and "not released yet" in early.stderr and not shelf.exists()
    asked = as_student(tmp_path, *student, env=env)
    assert asked.returncode == 2 and "not released yet" in asked.stderr
    feedback_release(c["graded"], course=c["course"], exchange=c["exchange"])
    published = run_course(*publish, notebooks=MINI_COURSE)
    assert published.returncode == 0, published.stderr
    got = as_student(tmp_path, *student, env=env)
    assert got.returncode == 0, got.stderr
    text = (home / "mine" / LESSON / f"{LESSON}-solutions.ipynb").read_text()
    assert "MINI-WALKTHROUGH-2" in text and "BEGIN HIDDEN" not in text
    twice = as_student(tmp_path, *student, env=env)
    assert twice.returncode == 2 and "exists; nothing was written" in twice.stderr


def test_a_folder_is_open_to_others_only_when_every_folder_above_lets_them_in(tmp_path):
    """Is a 755 checkout seen as readable by students, and a 700 one (or one inside a 700 folder) not?"""
    checkout = tmp_path / "outer" / "checkout"
    checkout.mkdir(parents=True)
    (tmp_path / "outer").chmod(0o755)
    tmp_path.chmod(0o755)
    checkout.chmod(0o755)
    opened = open_to_others(checkout) if all(p.stat().st_mode & 0o001 for p in tmp_path.parents) else None
    if opened is not None:
        assert opened is True
    checkout.chmod(0o700)
    assert open_to_others(checkout) is False
    checkout.chmod(0o755)
    (tmp_path / "outer").chmod(0o700)
    assert open_to_others(checkout) is False


def test_worked_solutions_wait_for_every_student_handed_in_through_the_exchange(class_folders):
    """With one exchange hand-in still without its feedback (carol's, not graded yet), are the worked
    solutions refused, naming her, and released once her feedback is out too?"""
    c = class_folders
    carol = c["course"] / "submitted" / "carol" / LESSON
    shutil.copytree(c["course"] / "submitted" / "alice" / LESSON, carol)
    (carol / "submission_secret.txt").write_text("an0ther")
    feedback_release(c["graded"], course=c["course"], exchange=c["exchange"])  # alice's only
    publish = ("solutions", "01", "--exchange", str(c["exchange"]), "--course", str(c["course"]))
    refused = run_course(*publish, notebooks=MINI_COURSE)
    assert refused.returncode == 2 and "for carol" in refused.stderr and "not released yet" in refused.stderr
    assert not (c["exchange"] / COURSE_ID / "solutions").exists()
    page = c["graded"] / "feedback" / "carol" / LESSON / f"{LESSON}.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>feedback for carol</html>")
    feedback_release(c["graded"], course=c["course"], exchange=c["exchange"])
    published = run_course(*publish, notebooks=MINI_COURSE)
    assert published.returncode == 0, published.stderr
