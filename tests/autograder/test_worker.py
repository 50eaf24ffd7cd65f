"""The grading worker on its own: reading a submission as data, a row's status, the JSON-lines
protocol, and one submission graded in process (no subprocess, no sandbox)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict

import nbformat
import pytest

from autograder import worker
from autograder.config import Limits
from autograder.release import build_course
from autograder.worker import Job, SubmissionError, read_submitted
from tests.submissions import MINI_COURSE, make_submission

NAME = "01-mini.ipynb"


def _notebook_bytes(cells=()) -> bytes:
    return json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def test_read_submitted_reads_the_expected_notebook_among_others(tmp_path):
    """With the expected name present, is it graded even when another notebook is newer, and are
    the others and a stray file listed, never read?"""
    (tmp_path / "scratch.ipynb").write_bytes(_notebook_bytes())
    (tmp_path / NAME).write_bytes(_notebook_bytes([{"cell_type": "code", "source": "x = 1"}]))
    os.utime(tmp_path / NAME, (1, 1))
    with open(os.fsencode(tmp_path) + b"/caf\xe9.txt", "wb"):
        pass  # an empty file whose Latin-1 name is not UTF-8
    (tmp_path / "timestamp.txt").write_text("2026-03-01 10:00:00 UTC")
    submitted = read_submitted(tmp_path, NAME)
    assert submitted["cells"][0]["source"] == "x = 1"
    assert submitted.notes == ["graded 01-mini.ipynb (the name the lesson expects); "
                               "other notebooks not graded: scratch.ipynb",
                               "not graded, not read: caf\\xe9.txt"]


def test_without_the_expected_name_the_newest_notebook_is_graded_and_the_choice_stated(tmp_path):
    """With `Untitled.ipynb` and `01-mini (1).ipynb` but no 01-mini.ipynb, is the newer one graded,
    whatever the names' order, and does the note say which and why?"""
    (tmp_path / "Untitled.ipynb").write_bytes(_notebook_bytes([{"cell_type": "code", "source": "new"}]))
    (tmp_path / "01-mini (1).ipynb").write_bytes(_notebook_bytes([{"cell_type": "code", "source": "old"}]))
    os.utime(tmp_path / "01-mini (1).ipynb", (1000, 1000))
    submitted = read_submitted(tmp_path, NAME)
    assert submitted["cells"][0]["source"] == "new"
    assert submitted.notes == ["graded Untitled.ipynb (the newest of 2, as 01-mini.ipynb is missing); "
                               "other notebooks not graded: 01-mini (1).ipynb"]


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no notebook in the submission (expected 01-mini.ipynb)"),
    (lambda d: (d / "notes.txt").write_text("x"),
     "no notebook in the submission (expected 01-mini.ipynb); not graded, not read: notes.txt"),
    (lambda d: os.symlink("/etc/passwd", d / NAME), "is a symbolic link, not a notebook"),
    (lambda d: os.mkfifo(d / NAME), "is not a regular file"),
    (lambda d: (d / NAME).write_bytes(b"\xff\xfe not utf-8"), "is not a readable notebook"),
    (lambda d: (d / NAME).write_bytes(b"[1, 2]"), "it has no list of cells"),
    (lambda d: (d / NAME).write_bytes(b'{"cells": "many"}'), "it has no list of cells"),
])
def test_read_submitted_refuses_what_is_not_a_notebook_with_a_reason(tmp_path, setup, message):
    """Does each malformed submission get a message that says what is wrong (and never a traceback)?"""
    setup(tmp_path)
    with pytest.raises(SubmissionError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        read_submitted(tmp_path, NAME)


def test_read_submitted_refuses_an_oversized_notebook_unread(tmp_path):
    """Is a notebook over the limit refused by its size, before any byte is parsed?"""
    (tmp_path / NAME).write_bytes(b"{" + b" " * (3 << 20) + b"}")
    with pytest.raises(SubmissionError, match="3 MB, over the 2 MB limit"):
        read_submitted(tmp_path, NAME, max_bytes=2 << 20)


def test_read_submitted_drops_cells_that_are_not_objects_and_survives_a_missing_folder(tmp_path):
    """Are junk cells dropped (not crashing normalize later), and is a missing folder a reason?"""
    (tmp_path / NAME).write_bytes(_notebook_bytes([7, None, {"cell_type": "markdown", "source": "hi"}]))
    assert read_submitted(tmp_path, NAME)["cells"] == [{"cell_type": "markdown", "source": "hi"}]
    with pytest.raises(SubmissionError, match="cannot list the submission folder"):
        read_submitted(tmp_path / "absent", NAME)


def test_status_takes_the_gravest_incident_and_keeps_every_reason():
    """Is tampering reported over a timeout, and does each incident's reason appear once, the
    output cap last?"""
    incidents = [{"kind": "output_capped", "cell": 3, "message": "output beyond 10 characters dropped"},
                 {"kind": "output_capped", "cell": 4, "message": "output beyond 10 characters dropped"},
                 {"kind": "timeout", "cell": "loop", "message": "interrupted after 20 s"},
                 {"kind": "tampered", "cell": None, "message": "while the notebook ran, x"}]
    status, reason = worker._status(incidents, [])
    assert status == "tampered"
    assert reason == ("loop: interrupted after 20 s; while the notebook ran, x; "
                      "output beyond 10 characters dropped")
    assert worker._status([{"kind": "timeout", "cell": "a", "message": "m"}], [])[0] == "timeout"
    assert worker._status([{"kind": "kernel_died", "cell": "a", "message": "m"},
                           {"kind": "timeout", "cell": "b", "message": "m"}], [])[0] == "kernel_died"
    assert worker._status([], []) == ("graded", "")


def test_last_error_names_the_last_error_line():
    """Does nbgrader's failure reach the row as the exception it logged (not its "[ERROR] see the
    above traceback"), else its last error line, bounded?"""
    outcome = {"error": "", "log": "Traceback (most recent call last):\n  File \"x\", line 1\n"
                                   "zmq.error.ZMQError: No such file or directory\n"
                                   "[ERROR] Please see the the above traceback"}
    assert worker._last_error(outcome) == "zmq.error.ZMQError: No such file or directory"
    assert worker._last_error({"log": "[INFO] fine\n[ERROR] the real one"}) == "[ERROR] the real one"
    assert worker._last_error({}) == "unknown error"
    assert len(worker._last_error({"log": "Error " + "x" * 1000})) == 300


def test_serve_answers_every_job_line_even_when_grading_fails(tmp_path):
    """Does the worker answer a job it cannot grade with an error row and go on to the next?"""
    broken = Job(student="s1", lesson="01-mini", submission=str(tmp_path), template=str(tmp_path / "none"),
                 sandbox=False)
    lines = "\n".join(json.dumps(asdict(broken) | {"student": s}) for s in ("s1", "s2")) + "\n\n"
    proc = subprocess.run([sys.executable, "-m", "autograder.worker"], input=lines, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["result"]["student_id"] for a in answers] == ["s1", "s2"]
    assert all(a["result"]["status"] == "error" and a["files"] == {} for a in answers)
    assert "grading failed: FileNotFoundError" in answers[0]["result"]["reason"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_course(tmp_path_factory.mktemp("template"), ["01-mini"], notebooks=MINI_COURSE)


@pytest.mark.slow
def test_run_grades_one_submission_in_process(tmp_path, template, monkeypatch):
    """Does run() give the points nbgrader awards, the lost exercise's reason, and the files to
    publish — writing nothing outside its own temporary folder, and talking to an unsandboxed
    kernel over Unix sockets (TCP ports can be taken by a kernel starting at the same moment)?"""
    configs = []
    real_config = worker.nbgrader_config
    monkeypatch.setattr(worker, "nbgrader_config", lambda *a, **k: configs.append(real_config(*a, **k)) or configs[-1])
    def drop_total(nb):
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "total"]

    notebook = make_submission(tmp_path / "in", "ann", "01-mini", {"double": "def double(x):\n    return x + x\n"},
                               notebooks=MINI_COURSE, edit=drop_total)
    before = sorted(p.name for p in tmp_path.iterdir())
    job = Job(student="ann", lesson="01-mini", submission=str(notebook.parent), template=str(template),
              limits=asdict(Limits(cell_timeout=10)), sandbox=False)
    answer = worker.run(job)
    result = answer["result"]
    assert (result["score"], result["max_score"], result["status"]) == (3.0, 5.0, "rejected"), result
    total = next(t for t in result["tests"] if t["name"] == "total_basic")
    assert total["score"] == 0 and total["message"].startswith("not graded:")
    assert sorted(answer["files"]) == [f"autograded/ann/01-mini/{NAME}", "feedback/ann/01-mini/01-mini.html"]
    graded = nbformat.reads(answer["files"][f"autograded/ann/01-mini/{NAME}"], as_version=4)
    assert graded.cells[0].source.startswith("**Grading notes**")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert configs[0].JudgeKernelManager.transport == "ipc"


def test_log_causes_picks_each_tracebacks_exception_and_named_errors():
    """Does a failure's reason quote the exception lines of the log, not the traceback's code?"""
    log = ("[AutogradeApp | ERROR] There was an error processing assignment\n"
           "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
           "    for notebook in submission.assignment.notebooks:\n"
           "RuntimeError: Kernel died before replying to kernel_info\n"
           "/venv/bin/python: Error while finding module specification for 'course_lib.judge' "
           "(ModuleNotFoundError: No module named 'course_lib')\n"
           "[ERROR] Please see the the above traceback for details\n")
    assert worker.log_causes(log) == [
        "RuntimeError: Kernel died before replying to kernel_info",
        "/venv/bin/python: Error while finding module specification for 'course_lib.judge' "
        "(ModuleNotFoundError: No module named 'course_lib')"]
    assert worker.log_causes("one\ntwo\nthree\nfour\n") == ["two", "three", "four"]


@pytest.mark.slow
def test_a_kernel_that_cannot_start_puts_its_cause_in_the_reason(tmp_path, template):
    """When the judge kernel cannot import course_lib (a course run from inside another checkout),
    does the row's reason quote that cause from the worker's log, not only nbgrader's "see the
    above traceback"?"""
    site = tmp_path / "site"
    site.mkdir()
    # Only in the kernel (python -m course_lib.judge ...): course_lib cannot be imported there.
    (site / "sitecustomize.py").write_text(
        "import sys\nif 'course_lib.judge' in sys.orig_argv:\n    sys.modules['course_lib'] = None\n")
    notebook = make_submission(tmp_path / "in", "ann", "01-mini", {}, notebooks=MINI_COURSE)
    job = Job(student="ann", lesson="01-mini", submission=str(notebook.parent), template=str(template),
              limits=asdict(Limits(cell_timeout=10)), sandbox=False)
    log = tmp_path / "worker.log"
    with open(log, "ab") as stderr:
        proc = subprocess.run([sys.executable, "-m", "autograder.worker"], input=json.dumps(asdict(job)) + "\n",
                              stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=240,
                              env={**os.environ, "PYTHONPATH": str(site)})
    result = json.loads(proc.stdout.splitlines()[0])["result"]
    assert result["status"] == "error"
    assert "the grading kernel could not start or run" in result["reason"], result["reason"]
    assert "course_lib" in result["reason"] and "ModuleNotFoundError" in result["reason"], result["reason"]


def test_a_kernel_that_dies_while_starting_is_started_once_more_cold(monkeypatch, tmp_path):
    """If nbgrader fails because the kernel died before its first reply (no cell ran: never the
    student's doing), is the submission graded once more, without a kernel started ahead — and only once?"""
    from autograder import worker
    from autograder.results import Result

    calls = []

    def fake_grade_in(work, job):
        calls.append(job.prestart)
        if len(calls) == 1:
            return Result(student_id=job.student, lesson=job.lesson, status="error",
                          reason="nbgrader could not grade it: RuntimeError: Kernel died before replying to "
                                 "kernel_info"), {}
        return Result(student_id=job.student, lesson=job.lesson, status="graded", score=1.0), {}

    monkeypatch.setattr(worker, "_grade_in", fake_grade_in)
    job = worker.Job(student="s", lesson="01-mini", submission=str(tmp_path), template=str(tmp_path))
    assert worker.run(job)["result"]["status"] == "graded"
    assert calls == [True, False]
    calls.clear()
    monkeypatch.setattr(worker, "_grade_in", lambda work, job: (calls.append(job.prestart) or Result(
        student_id="s", lesson="01-mini", status="error",
        reason="nbgrader could not grade it: RuntimeError: Kernel died before replying to kernel_info"), {}))
    assert worker.run(job)["result"]["status"] == "error" and calls == [True, False]
