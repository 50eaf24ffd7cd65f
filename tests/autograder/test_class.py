"""Does a whole synthetic class grade the same with one worker or two, in the sandbox, leaving nothing behind?

Thirty submissions of the tiny fixture lesson, two of each kind a real class
produces — correct, wrong, looping, deadlocking, kernel-killing, tampering,
huge output, and code that leaves processes and servers running (on the
syllabus's fixed port 12345, in several submissions graded at once).
"""

import shutil
import tempfile

import psutil
import pytest

from tests.submissions import MINI_COURSE, grade, make_submission

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

LESSON = "01-mini"
DEADLOCK = ("import threading\na, b = threading.Lock(), threading.Lock()\n"
            "def double(x):\n"
            "    def one():\n        with a:\n            b.acquire()\n"
            "    a.acquire(); t = threading.Thread(target=one); t.start()\n"
            "    b.acquire(); a.release(); t.join()\n")
# Leaves a forked child sleeping and a server listening (multiprocessing is allowed in lesson 01).
LEAKS = ("import multiprocessing, socket, threading, time\n"
         "multiprocessing.get_context('fork').Process(target=time.sleep, args=(300,), daemon=False).start()\n"
         "server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "server.bind(('127.0.0.1', 12345)); server.listen()\n"
         "threading.Thread(target=server.accept, daemon=True).start()\n"
         "def double(x):\n    return 2 * x")
# Kills its kernel with allowed code only: deep recursion through C in a thread with a tiny stack.
CRASHES = ("import threading\ndef double(x):\n    def dive(n):\n        return n if n == 0 else list(map(dive, [n - 1]))\n"
           "    threading.stack_size(32768)\n    t = threading.Thread(target=dive, args=(900,))\n"
           "    t.start()\n    t.join()")
TAMPERS = ("from course_lib import grading\ngrading.expect_equal = lambda *a, **k: None\n"
           "def double(x):\n    return 0")

KINDS = {
    # kind: (replacements, score)
    "correct": ({}, 5.0),
    "wrong": ({"double": "def double(x):\n    return x + 2"}, 3.0),
    "looping": ({"double": "def double(x):\n    while True:\n        pass"}, 2.0),
    "deadlocking": ({"double": DEADLOCK}, 2.0),
    "exits": ({"double": CRASHES}, 2.0),
    "tampers": ({"double": TAMPERS}, 2.0),
    "huge_output": ({"total": "print('y' * 3_000_000)\ndef total(items):\n    return sum(items)"}, 5.0),
    "leaks": ({"double": LEAKS}, 5.0),
    "half": ({"total": "def total(items):\n    return 0"}, 3.0),
    "none": ({"double": "def double(x):\n    raise NotImplementedError()",
              "total": "def total(items):\n    raise NotImplementedError()"}, 0.0),
}
COPIES = 3


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    for kind, (replace, _) in KINDS.items():
        for n in range(COPIES):
            make_submission(root, f"{kind}-{n}", LESSON, replace, notebooks=MINI_COURSE)
    limits = ("--cell-timeout", "3")
    # A temporary folder of this class's own: every kernel's command line names it, so
    # whatever a submission leaves running can be found afterwards.
    scratch = tempfile.mkdtemp(prefix="cls-")
    env = {"TMPDIR": scratch}
    two = grade(root, tmp_path_factory.mktemp("jobs2"), "--jobs", "2", *limits, notebooks=MINI_COURSE, env=env)
    # One worker grades one copy of each kind (the copies are identical submissions).
    firsts = tmp_path_factory.mktemp("class-firsts")
    for kind in KINDS:
        shutil.copytree(root / f"{kind}-0", firsts / f"{kind}-0")
    one = grade(firsts, tmp_path_factory.mktemp("jobs1"), "--jobs", "1", *limits, notebooks=MINI_COURSE, env=env)
    yield two, one, scratch
    shutil.rmtree(scratch, ignore_errors=True)


def test_the_class_has_thirty_submissions(classroom):
    """Is the synthetic class as large as the issue asks?"""
    two, _, _ = classroom
    assert len(two) == len(KINDS) * COPIES >= 30


def test_every_score_is_as_expected_and_sandboxed(classroom):
    """Does every kind earn exactly its points, graded in the sandbox?"""
    two, _, _ = classroom
    wrong = {k: r for k, r in two.items()
             if float(r["score"]) != KINDS[k[0].rsplit("-", 1)[0]][1] or r["mode"] != "sandbox"}
    assert not wrong, wrong


def test_one_worker_and_two_give_identical_results(classroom):
    """Are scores, statuses and reasons the same whatever --jobs is?"""
    two, one, _ = classroom
    strip = lambda rows: {k: (r["score"], r["status"], r["reason"]) for k, r in rows.items()}
    assert len(one) == len(KINDS)
    assert strip({k: r for k, r in two.items() if k in one}) == strip(one)


def test_nothing_a_submission_started_survives_grading(classroom):
    """Are the leaking submissions' processes (a forked child) and servers gone afterwards?"""
    import time

    _, _, scratch = classroom
    deadline = time.monotonic() + 10  # a namespace being torn down may take a moment under load
    while True:
        sleepers = [p for p in psutil.process_iter(["cmdline", "ppid", "create_time"])
                    if scratch in " ".join(p.info["cmdline"] or [])]
        if not sleepers or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not sleepers, [(p.pid, p.info["ppid"], p.info["create_time"]) for p in sleepers]
    listening = [c for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == 12345]
    assert not listening
