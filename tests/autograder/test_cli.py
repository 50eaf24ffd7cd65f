"""Does the `course` command explain itself, and does `course check` tell a student the truth?"""

import nbformat
import pytest

from tests.submissions import MINI_COURSE, make_submission, run_course

COMMANDS = ["lessons", "release", "grade", "collect", "gradebook", "report", "check", "solutions"]


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
    assert "HIDDEN  double_hidden" in out and "expected -6" not in out, "hidden checks never run here"
    assert "TODO  total_basic (2 pt) [+ hidden checks at grading]" in out
    assert "Hidden tests run only at grading" in out
    assert "WARNING" not in proc.stderr and "encryption" not in proc.stdout + proc.stderr, proc.stderr


@pytest.mark.slow
def test_check_names_a_forbidden_construct_before_hand_in(tmp_path):
    """Does `course check` report a solution cell the grader would reject, with its line and construct?"""
    nb = make_submission(tmp_path, "me", "01-mini", {
        "double": "def double(x):\n    return 2 * x\nprint(In[-1])",
        "total": "import sys\ndef total(items):\n    return sum(items)",
    }, notebooks=MINI_COURSE)
    proc = run_course("check", str(nb), notebooks=MINI_COURSE)
    assert proc.returncode == 1
    assert "REJECTED  double" in proc.stdout and "line 3: In" in proc.stdout
    assert "REJECTED  total" in proc.stdout and "line 1: import sys" in proc.stdout
    assert "grading would score those exercises 0" in proc.stdout


@pytest.mark.slow
def test_solutions_never_overwrite_a_learners_folder(tmp_path):
    """Does `course solutions` write worked solutions beside a learner's work, and a second time under
    the next free name, leaving the first file as it was?"""
    (tmp_path / "01-mini").mkdir()
    (tmp_path / "01-mini" / "01-mini.ipynb").write_text("my work")
    proc = run_course("solutions", "01", "--out", str(tmp_path), "--force", notebooks=MINI_COURSE)
    assert proc.returncode == 0, proc.stderr
    written = (tmp_path / "01-mini" / "01-mini-solutions.ipynb").read_text()
    assert "return 2 * x" in written and "BEGIN SOLUTION" not in written
    assert (tmp_path / "01-mini" / "01-mini.ipynb").read_text() == "my work"
    (tmp_path / "01-mini" / "01-mini-solutions.ipynb").write_text("my notes")
    again = run_course("solutions", "01", "--out", str(tmp_path), "--force", notebooks=MINI_COURSE)
    assert again.returncode == 0 and "01-mini-solutions-2.ipynb" in again.stdout, again.stderr
    assert (tmp_path / "01-mini" / "01-mini-solutions.ipynb").read_text() == "my notes"


@pytest.mark.slow
def test_a_platform_zip_is_collected_graded_and_reported(tmp_path):
    """Can an instructor go from a learning platform's ZIP to grades and a report with three commands?"""
    import zipfile

    made = tmp_path / "made"
    good = make_submission(made, "x", "01-mini", notebooks=MINI_COURSE)
    bad = make_submission(made, "y", "01-mini", {"double": "def double(x):\n    return x"}, notebooks=MINI_COURSE)
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(good, "alice_1001_01-mini.ipynb")
        z.write(bad, "bob_1002_01-mini.ipynb")
        z.writestr("readme.txt", "not a submission")
    proc = run_course("collect", str(archive), "--lesson", "01", "--out", str(tmp_path / "submitted"),
                      notebooks=MINI_COURSE)
    assert proc.returncode == 0, proc.stderr
    assert "readme.txt" in proc.stdout  # listed, not silently dropped
    proc = run_course("grade", str(tmp_path / "submitted"), "--out", str(tmp_path / "graded"),
                      "--no-sandbox", "--quiet", notebooks=MINI_COURSE)
    assert proc.returncode == 0, proc.stderr
    csv_text = (tmp_path / "graded" / "grades.csv").read_text()
    assert "alice,01-mini,5.0,5.0,graded" in csv_text and "bob,01-mini,2.0,5.0,graded" in csv_text
    (tmp_path / "graded" / "report.html").unlink()
    proc = run_course("report", str(tmp_path / "graded"), notebooks=MINI_COURSE)
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "graded" / "report.html").read_text()
    assert "double_hidden" in report and "data:image/png;base64," in report


@pytest.mark.slow
def test_check_shows_a_hidden_only_test_as_hidden_never_as_pass(tmp_path):
    """On the student's copy, is a test cell whose checks are all hidden shown as HIDDEN, and left
    out of the passed count?"""
    proc = run_course("release", "--out", str(tmp_path), notebooks=MINI_COURSE)
    assert proc.returncode == 0, proc.stderr
    nb_path = tmp_path / "01-mini" / "01-mini.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "double":
            cell.source = "def double(x):\n    return 2 * x"
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "total":
            cell.source = "def total(items):\n    return sum(items)"
    nbformat.write(nb, nb_path)
    out = run_course("check", str(nb_path), notebooks=MINI_COURSE).stdout
    assert "HIDDEN  double_hidden" in out and "PASS  double_hidden" not in out
    assert "2 of 2 test cells passed their visible checks" in out
    assert "1 test cell(s) (2 pt) have only hidden checks" in out


@pytest.mark.slow
def test_check_hidden_runs_the_hidden_tests_and_shows_no_code(tmp_path):
    """Does `course check --hidden` report hidden tests by name and message, never their code, and
    can an instructor turn it off?"""
    nb = make_submission(tmp_path, "me", "01-mini", {"double": "def double(x):\n    return x + 2"},
                         notebooks=MINI_COURSE)
    proc = run_course("check", "--hidden", str(nb), notebooks=MINI_COURSE)
    assert proc.returncode == 1
    assert "FAIL  double_hidden" in proc.stdout and "expected -6, got -1" in proc.stdout
    assert "PASS  total_basic" in proc.stdout
    assert "SECRET_HIDDEN_MARKER" not in proc.stdout + proc.stderr
    off = run_course("check", "--hidden", str(nb), notebooks=MINI_COURSE, env={"COURSE_HIDDEN_CHECKS": "off"})
    assert off.returncode == 2 and "turned off" in off.stderr


def test_check_imports_nbgraders_preprocessors_without_its_server_or_gradebook():
    """Does `course check` load nbgrader's and nbconvert's real preprocessors but not nbgrader's server
    extensions or SQLAlchemy, nor nbconvert's exporters and filters (mistune, bs4, bleach, jinja2)?"""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from autograder import slowimports\n"
        "slowimports.skip_slow_imports()\n"
        "import autograder.check, autograder.execute\n"
        "from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions, Execute\n"
        "import nbgrader.preprocessors.clearsolutions as real\n"
        "assert ClearSolutions is real.ClearSolutions and Execute.__module__ == 'nbgrader.preprocessors.execute'\n"
        "assert issubclass(autograder.execute.BoundedExecute, Execute)\n"
        "import nbgrader, nbconvert\n"
        "assert nbgrader.__version__ and nbconvert.__version__\n"
        "from nbconvert.preprocessors import ExecutePreprocessor\n"
        "import nbconvert.preprocessors.execute as real_execute\n"
        "assert ExecutePreprocessor is real_execute.ExecutePreprocessor\n"
        "try:\n"
        "    from nbgrader.preprocessors import NoSuchPreprocessor\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('an unknown name imported')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'nbgrader.server_extensions', "
        "'nbgrader.api', 'nbconvert.filters', 'nbconvert.exporters.html', 'mistune', 'bs4', 'bleach', 'jinja2'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
