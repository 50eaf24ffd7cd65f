"""Does the `course` command explain itself, and does `course check` tell a student the truth?"""

import pytest

from submissions import MINI_COURSE, make_submission, run_course

COMMANDS = ["lessons", "release", "grade", "check", "solutions"]


def test_course_help_lists_every_command():
    """Does `course --help` name every subcommand?"""
    proc = run_course("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_subcommand_help_ends_with_an_example(command):
    """Does every `course X --help` show a worked example?"""
    proc = run_course(command, "--help")
    assert proc.returncode == 0
    assert "example:" in proc.stdout and f"course {command}" in proc.stdout.split("example:")[1]


def test_no_command_prints_help_and_exits_2():
    """Is `course` alone a usage error, not a traceback?"""
    proc = run_course()
    assert proc.returncode == 2 and "COMMAND" in proc.stdout and "Traceback" not in proc.stderr


def test_check_on_a_missing_file_is_a_one_line_error(tmp_path):
    """Does a wrong path give exit code 2 and one line?"""
    proc = run_course("check", str(tmp_path / "missing.ipynb"))
    assert proc.returncode == 2 and proc.stderr.strip().startswith("course: not a notebook")


@pytest.mark.slow
def test_check_reports_passes_failures_and_todo_and_says_hidden_tests_are_not_run(tmp_path):
    """Does `course check` show PASS, FAIL with the message, TODO for stubs, and the hidden-test caveat?"""
    nb = make_submission(tmp_path, "me", "01-mini", {
        "double": "def double(x):\n    return x + 2",
        "total": "def total(items):\n    raise NotImplementedError()",
    }, notebooks=MINI_COURSE)
    proc = run_course("check", str(nb), notebooks=MINI_COURSE)
    assert proc.returncode == 1
    out = proc.stdout
    assert "PASS  double_basic" in out           # double(2) == 4 holds for x + 2
    assert "FAIL  double_hidden" in out and "expected -6, got -1" in out
    assert "TODO  total_basic" in out
    assert "Hidden tests run only at grading" in out


@pytest.mark.slow
def test_solutions_never_overwrite_a_learners_folder(tmp_path):
    """Does `course solutions` write the source lesson once and refuse to overwrite it?"""
    proc = run_course("solutions", "01", "--out", str(tmp_path), notebooks=MINI_COURSE)
    assert proc.returncode == 0, proc.stderr
    assert "BEGIN SOLUTION" in (tmp_path / "01-mini" / "01-mini.ipynb").read_text()
    again = run_course("solutions", "01", "--out", str(tmp_path), notebooks=MINI_COURSE)
    assert again.returncode == 2 and "exists" in again.stderr
