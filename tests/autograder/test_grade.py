"""Does `course grade` give each kind of submission exactly what it deserves, without hanging?

One batch of fixture submissions, made from a tiny two-exercise lesson
(tests/fixtures/course), is graded once per module with two workers; each
test then checks one row. Exercise 1 (double) is worth 1 visible + 2 hidden
points, exercise 2 (total) 2 points.
"""

import hashlib
import json
import os
import shutil

import nbformat
import psutil
import pytest

from tests.submissions import MINI_COURSE, grade, make_submission, run_course

pytestmark = pytest.mark.slow

LESSON = "01-mini"
LOOP = "def double(x):\n    while True:\n        pass"
IGNORES_INTERRUPT = ("def double(x):\n    while True:\n        try:\n            time.sleep(0.05)\n"
                     "        except BaseException:  # KeyboardInterrupt and the runner's interrupt alike\n            pass\nimport time")
ALWAYS_EQUAL = ("class Anything:\n    def __eq__(self, other):\n        return True\n"
                "def double(x):\n    return Anything()")


def delete_test_cell(nb):
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "total_basic"]


PATCHES_GRADING = ("from course_lib import grading\n"
                   "for name in grading.__all__:\n"
                   "    if callable(getattr(grading, name)) and not isinstance(getattr(grading, name), type):\n"
                   "        setattr(grading, name, lambda *a, **k: True)\n"
                   "def double(x):\n    return 0")

HOOK_PRINTS_CELLS = ("get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))\n"
                     "def double(x):\n    return 2 * x")
READS_LINECACHE = ("import linecache\n"
                   "def double(x):\n"
                   "    for name, entry in list(linecache.cache.items()):\n"
                   "        print(''.join(entry[2]))\n"
                   "    return 2 * x")

# Crashes the kernel with allowed code only: deep recursion through C in a thread with a tiny stack.
CRASHES = ("import threading\ndef double(x):\n    def dive(n):\n        return n if n == 0 else list(map(dive, [n - 1]))\n"
           "    threading.stack_size(32768)\n    t = threading.Thread(target=dive, args=(900,))\n"
           "    t.start()\n    t.join()")
PRINTS = "print('STUDENT_' + 'PRINT_MARKER')\ndef double(x):\n    return 2 * x"
# Returns a hidden test line, so the test's own message would carry it to the student.
ECHOES_HIDDEN = "def double(x):\n    return 'SECRET_' + 'HIDDEN_MARKER = \"hidden\"' if x == -3 else 2 * x"

FIXTURES = {
    # student: (replacements, edit, expected score, expected status)
    "correct": ({}, None, 5.0, "graded"),
    "wrong": ({"double": "def double(x):\n    return x + 2"}, None, 3.0, "graded"),
    "looping": ({"double": LOOP}, None, 2.0, "timeout-partial"),
    "ignores_interrupt": ({"double": IGNORES_INTERRUPT}, None, 2.0, "timeout-partial"),
    "crashes": ({"double": CRASHES}, None, 2.0, "kernel_died"),
    "exits": ({"double": "import os\nos._exit(1)"}, None, 2.0, "rejected"),
    "sys_exit": ({"double": "import sys\ndef double(x):\n    sys.exit(0)"}, None, 2.0, "rejected"),
    "raises_system_exit": ({"double": "def double(x):\n    raise SystemExit(0)"}, None, 2.0, "graded"),
    "reads_stdin": ({"double": "def double(x):\n    return 2 * int(input('x? '))"}, None, 2.0, "graded"),
    "edits_test": ({"total": "def total(items):\n    return 0", "total_basic": "pass"}, None, 3.0, "graded"),
    "deletes_test": ({"total": "def total(items):\n    return 0"}, delete_test_cell, 3.0, "graded"),
    "patches_grading": ({"double": PATCHES_GRADING}, None, 2.0, "rejected"),
    "hook_prints_cells": ({"double": HOOK_PRINTS_CELLS}, None, 2.0, "rejected"),
    "reads_linecache": ({"double": READS_LINECACHE}, None, 2.0, "rejected"),
    "prints": ({"double": PRINTS}, None, 5.0, "graded"),
    "echoes_hidden": ({"double": ECHOES_HIDDEN}, None, 3.0, "graded"),
    "adds_cells": ({"double": "def double(x):\n    return x"}, lambda nb: nb.cells.append(
        nbformat.v4.new_code_cell("def double(x):\n    return 2 * x")), 2.0, "graded"),
    "always_equal": ({"double": ALWAYS_EQUAL}, None, 2.0, "graded"),
    "huge_output": ({"total": "print('x' * 5_000_000)\ndef total(items):\n    return sum(items)"}, None, 5.0, "graded"),
    "unattempted": ({"double": "def double(x):\n    raise NotImplementedError()",
                     "total": "def total(items):\n    raise NotImplementedError()"}, None, 0.0, "graded"),
}


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("submitted")
    for student, (replace, edit, _, _) in FIXTURES.items():
        make_submission(root, student, LESSON, replace, notebooks=MINI_COURSE, edit=edit)
    # Malformed: a notebook that is not JSON, a stray file, an unknown lesson folder.
    (root / "garbled" / LESSON).mkdir(parents=True)
    (root / "garbled" / LESSON / "01-mini.ipynb").write_text("{ not json", encoding="utf-8")
    (root / "notes.txt").write_text("not a student", encoding="utf-8")
    (root / "correct" / "99-nonsense").mkdir()
    # A student who handed in a renamed copy of the notebook.
    renamed = make_submission(root, "renamed", LESSON, notebooks=MINI_COURSE)
    renamed.rename(renamed.with_name("01-mini (1).ipynb"))
    before = tree_digest(root)
    out = tmp_path_factory.mktemp("graded")
    rows = grade(root, out, "--no-sandbox", "--jobs", "2", "--cell-timeout", "3",
                 notebooks=MINI_COURSE)
    return {"root": root, "out": out, "rows": rows, "before": before}


@pytest.mark.parametrize("student", sorted(FIXTURES))
def test_each_fixture_gets_its_expected_score_and_status(batch, student):
    """Is every kind of submission scored exactly, with the status that says what happened?"""
    _, _, score, status = FIXTURES[student]
    row = batch["rows"][(student, LESSON)]
    assert (float(row["score"]), row["status"]) == (score, status), row
    assert float(row["max_score"]) == 5.0


def test_a_timeout_or_dead_kernel_row_says_why(batch):
    """Is a timed-out or dead kernel never only a 0 in grades.csv?"""
    assert "did not finish within 3 s" in batch["rows"][("ignores_interrupt", LESSON)]["reason"]
    assert "interrupted after 3 s" in batch["rows"][("looping", LESSON)]["reason"]
    assert "kernel died" in batch["rows"][("crashes", LESSON)]["reason"]


def test_a_rejected_solution_row_names_the_line_and_the_construct(batch):
    """Does a solution that reaches for the grader say which line, and what, in grades.csv?"""
    reason = batch["rows"][("patches_grading", LESSON)]["reason"]
    assert "double rejected" in reason and "line 1" in reason and "course_lib" in reason
    assert "get_ipython" in batch["rows"][("hook_prints_cells", LESSON)]["reason"]
    assert "os._exit" in batch["rows"][("exits", LESSON)]["reason"]


def test_feedback_carries_verdicts_not_what_the_kernel_printed(batch):
    """Is a student's own print kept out of the feedback, and a hidden check's failure given only as its
    public summary (the test's question), never its message?"""
    printed = (batch["out"] / "feedback" / "prints" / LESSON / "01-mini.html").read_text(encoding="utf-8")
    assert "STUDENT_PRINT_MARKER" not in printed
    echoed = (batch["out"] / "feedback" / "echoes_hidden" / LESSON / "01-mini.html").read_text(encoding="utf-8")
    assert "a hidden check of this test failed" in echoed and "SECRET_HIDDEN_MARKER" not in echoed
    result = json.loads((batch["out"] / "results" / "echoes_hidden" / f"{LESSON}.json").read_text())
    assert "SECRET_HIDDEN_MARKER" not in json.dumps(result)


def test_malformed_entries_get_clear_errors_and_the_rest_is_graded(batch):
    """Do a broken notebook, a stray file and an unknown lesson each get a one-line reason?"""
    rows = batch["rows"]
    assert rows[("garbled", LESSON)]["status"] == "error"
    assert "not a readable notebook" in rows[("garbled", LESSON)]["reason"]
    assert rows[("notes.txt", "")]["status"] == "error"
    assert "not a lesson folder" in rows[("correct", "99-nonsense")]["reason"]
    assert rows[("renamed", LESSON)]["score"] == "5.0"


def test_submissions_are_never_modified(batch):
    """Is every byte under SUBMISSIONS the same after grading?"""
    assert tree_digest(batch["root"]) == batch["before"]


def test_feedback_never_shows_hidden_test_code(batch):
    """Does a student's feedback keep hidden tests' code out, even from tracebacks?"""
    for student in ("correct", "wrong", "hook_prints_cells", "reads_linecache", "echoes_hidden"):
        html = (batch["out"] / "feedback" / student / LESSON / "01-mini.html").read_text(encoding="utf-8")
        assert "SECRET_HIDDEN_MARKER" not in html
        assert "double(-3)" not in html.replace("double(-3): expected", "")
    wrong = (batch["out"] / "feedback" / "wrong" / LESSON / "01-mini.html").read_text(encoding="utf-8")
    assert "expected -6, got -1" not in wrong  # a hidden check's message names its input and expected value
    assert "double works for negative numbers and zero" in wrong and "HiddenCheckFailed" in wrong
    result = json.loads((batch["out"] / "results" / "wrong" / f"{LESSON}.json").read_text())
    assert any("expected -6, got -1" in t["message"] for t in result["tests"])  # the instructor keeps it


def test_full_feedback_shows_hidden_messages_when_the_course_asks(batch, tmp_path):
    """With --feedback full, does the student see the hidden check's own message (today's nbgrader
    behaviour, for a course that wants it), where the default shows only its public summary?"""
    out = tmp_path / "graded-full"
    rows = grade(batch["root"], out, "--no-sandbox", "--jobs", "1", "--cell-timeout", "3",
                 "--student", "wrong", "--feedback", "full", notebooks=MINI_COURSE)
    assert rows[("wrong", LESSON)]["score"] == batch["rows"][("wrong", LESSON)]["score"]
    html = (out / "feedback" / "wrong" / LESSON / "01-mini.html").read_text(encoding="utf-8")
    assert "expected -6, got -1" in html


def test_instructor_keeps_the_graded_notebook_with_hidden_tests(batch):
    """Can the instructor still read what the hidden tests did?"""
    nb = nbformat.read(batch["out"] / "autograded" / "wrong" / LESSON / "01-mini.ipynb", as_version=4)
    assert any("SECRET_HIDDEN_MARKER" in c.source for c in nb.cells)


def test_no_grading_process_is_left_running(batch):
    """Are all workers and kernels gone when the command returns?"""
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if f"autograder.worker --batch {batch['out']}" in cmd:
            leftovers.append(cmd)
    assert not leftovers


def test_a_second_run_resumes_where_the_first_stopped(batch):
    """Does re-running skip finished submissions and grade only the missing one?"""
    result = batch["out"] / "results" / "correct" / f"{LESSON}.json"
    first = json.loads(result.read_text())["seconds"]
    shutil.rmtree(batch["out"] / "results" / "wrong")
    again = grade(batch["root"], batch["out"], "--no-sandbox", "--lesson", LESSON,
                  "--cell-timeout", "3", notebooks=MINI_COURSE)
    assert json.loads(result.read_text())["seconds"] == first  # not regraded
    assert again[("wrong", LESSON)]["score"] == "3.0"  # the missing one was graded
    assert again[("looping", LESSON)]["status"] == "timeout-partial"


def test_force_regrades_everything_and_a_changed_submission_is_graded_again(tmp_path):
    """Does a plain re-run reuse every stored result, --force replace them all, and a submission
    whose files changed get graded again while the others are reused?"""
    root, out = tmp_path / "submitted", tmp_path / "out"
    for student in ("ann", "bob"):
        make_submission(root, student, LESSON, notebooks=MINI_COURSE)
    first = grade(root, out, "--no-sandbox", notebooks=MINI_COURSE)
    real = {student: first[(student, LESSON)]["score"] for student in ("ann", "bob")}

    def mark_stored_results():  # a stored result that a regrade would overwrite
        for student in ("ann", "bob"):
            path = out / "results" / student / f"{LESSON}.json"
            data = json.loads(path.read_text())
            # raw_score is what the late policy prices again on every run: mark it too
            path.write_text(json.dumps({**data, "score": 99.0, **({"raw_score": 99.0} if "raw_score" in data else {})}))

    mark_stored_results()
    reused = grade(root, out, "--no-sandbox", notebooks=MINI_COURSE)
    assert {s: reused[(s, LESSON)]["score"] for s in real} == {"ann": "99.0", "bob": "99.0"}
    forced = grade(root, out, "--no-sandbox", "--force", notebooks=MINI_COURSE)
    assert {s: forced[(s, LESSON)]["score"] for s in real} == real
    mark_stored_results()
    make_submission(root, "bob", LESSON, {"double": "def double(x):\n    return x + 2"}, notebooks=MINI_COURSE)
    changed = grade(root, out, "--no-sandbox", notebooks=MINI_COURSE)
    assert changed[("ann", LESSON)]["score"] == "99.0"             # untouched: reused
    assert float(changed[("bob", LESSON)]["score"]) < float(real["bob"])  # changed: graded again


def test_unknown_lesson_and_missing_folder_are_one_line_errors(tmp_path):
    """Does a user mistake end with one line and exit code 2, not a traceback?"""
    proc = run_course("grade", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--no-sandbox",
                      notebooks=MINI_COURSE)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such folder" in proc.stderr
    proc = run_course("release", "42", "--out", str(tmp_path / "o"), notebooks=MINI_COURSE)
    assert proc.returncode == 2 and "unknown lesson '42'" in proc.stderr


SLOW = "import time\ntime.sleep(1.5)\ndef total(items):\n    return sum(items)"


def test_an_interrupted_batch_resumes_to_the_same_grades(tmp_path, request):
    """After Ctrl-C mid-batch (one line, no traceback, no scratch folder left), and then kill -9 of
    the resumed run, does the same command finish the job with the grades an uninterrupted run
    gives, each submission once?"""
    import pathlib
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    from tests.submissions import course_env, grading_processes
    from tests.waiting import wait_until

    root = tmp_path / "submitted"
    students = [f"s{n}" for n in range(6)]
    for n, student in enumerate(students):
        make_submission(root, student, LESSON, {"total": SLOW} if n % 2 else
                        {"total": SLOW, "double": "def double(x):\n    return x + 2"}, notebooks=MINI_COURSE)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autograder.cli", "grade", str(root), "--out", str(out),
           "--no-sandbox", "--jobs", "2", "--quiet"]

    # A short TMPDIR of the test's own: the workers' folders go under it (a long one, as pytest's
    # tmp_path, is replaced by /tmp: see test_a_long_tmpdir_leaves_room_for_kernel_sockets).
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="t-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))

    def start_then_interrupt_after_one_more_result(how):
        done = len(list(out.glob("results/*/*.json")))
        proc = subprocess.Popen(cmd, env={**course_env(MINI_COURSE), "TMPDIR": str(scratch)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 120
        while len(list(out.glob("results/*/*.json"))) == done and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(list(out.glob("results/*/*.json"))) > done, "no submission was graded within 120 s"
        if how == "sigint":
            assert [p for p in scratch.iterdir() if p.name.startswith("cw-")], "the workers use TMPDIR"
            os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole foreground group
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 130 and b"run the same command again" in err
            assert err.decode().count("\n") == 1 and b"Traceback" not in err, err.decode()
            assert list(scratch.iterdir()) == [], "Ctrl-C left scratch folders"
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
        # workers see their parent gone within about half a second
        wait_until(lambda: not grading_processes(out), timeout=10, interval=0.1)
        assert not grading_processes(out), f"{how} left grading processes running"

    start_then_interrupt_after_one_more_result("sigint")
    start_then_interrupt_after_one_more_result("sigkill")
    assert len(list(out.glob("results/*/*.json"))) < len(students), "the batch was interrupted before the end"
    rows = grade(root, out, "--no-sandbox", "--jobs", "2", notebooks=MINI_COURSE)
    assert {k[0]: (r["score"], r["status"]) for k, r in rows.items()} == {
        student: ("5.0" if n % 2 else "3.0", "graded") for n, student in enumerate(students)}, \
        {k[0]: r["reason"] for k, r in rows.items()}
    with open(out / "grades.csv", encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 1 + len(students), "one row per submission, none doubled"


def test_the_class_report_shows_where_the_class_struggled(batch):
    """Does report.html list the crashed and timed-out submissions with why, and per-test results?"""
    report = (batch["out"] / "report.html").read_text(encoding="utf-8")
    for expected in ("kernel_died", "exits", "ignores_interrupt", "double_hidden", "data:image/png;base64,"):
        assert expected in report


def test_a_long_tmpdir_leaves_room_for_kernel_sockets(monkeypatch):
    """With a TMPDIR too long for the kernels' Unix sockets (107 bytes with the job folders under
    it; pytest's own tmp_path is), do the workers' folders go to /tmp instead, and else stay in it?"""
    import tempfile

    from autograder import pool

    monkeypatch.setattr(tempfile, "tempdir", "/tmp/" + "x" * 70)
    assert pool.scratch_root() == "/tmp"
    monkeypatch.setattr(tempfile, "tempdir", "/var/tmp/short")
    assert pool.scratch_root() == "/var/tmp/short"
    longest = "/" + "x" * (pool.MAX_TMPDIR_CHARS - 1) + "/cw-12345678/course-grade-12345678/ipc/k-65535"
    assert len(longest.encode()) <= 107
