"""Do verdicts stay out of student code's reach: tests run by the judge, not by IPython?

These run notebooks through ``BoundedExecute`` directly, with the solution
policy bypassed on purpose (cells hold code the policy would refuse): the
runner, the sealing, the method guard and the channel must hold on their own.
"""

from __future__ import annotations

import json
import pytest
from nbformat.v4 import new_code_cell

from tests.autograder.test_judge import graded, run, solution

pytestmark = pytest.mark.slow

HIDDEN_MARK = "the-hidden-expected-value-77"
SETUP = new_code_cell("from course_lib import grading, interleave\nimport threading, socket, linecache")
DOUBLE = solution("def double(x):\n    return 2 * x", "double")


def hidden_test(grade_id: str) -> dict:
    return graded('"""Does double double?"""\n'
                  'grading.expect_equal(double(2), 4, "double(2)")\n'
                  '### BEGIN HIDDEN TESTS\n'
                  f'grading.expect_equal(double(21), 42, "{HIDDEN_MARK}")\n'
                  '### END HIDDEN TESTS\n', grade_id)


def failing_test(grade_id: str) -> dict:
    return graded(f'grading.expect_equal(double(2), 5, "double(2) is not 5: {grade_id}")', grade_id)


def outcome(nb, grade_id: str) -> str:
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "failed" if any(o.get("output_type") == "error" for o in cell.outputs) else "passed"


def test_ipython_hooks_a_solution_registers_never_touch_a_test(tmp_path):
    """With a custom exception handler that swallows every error, a post_run_cell callback that clears
    it, and an input transformer that turns every cell into `pass`, does a failing test still fail and
    a passing one still pass?"""
    hooks = solution(
        "ip = get_ipython()\n"
        "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "ip.events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))\n"
        "ip.input_transformers_post.append(lambda lines: ['pass\\n'])", "hooks")
    nb, _ = run([SETUP, DOUBLE, hooks, failing_test("fails"), hidden_test("passes")], tmp_path)
    assert outcome(nb, "fails") == "failed" and outcome(nb, "passes") == "passed"


def test_no_test_source_is_left_where_a_solution_can_read_it(tmp_path):
    """After the tests ran, do In, the output history, linecache and IPython's history hold no line of
    them — and does a function a test handed to student code carry no docstring?"""
    keeper = solution("kept = []\ndef call_it(fn):\n    kept.append(fn)\n    return fn()", "keeper")
    handing = graded('def handed():\n    """The docstring of a hidden helper."""\n    return 1\n'
                     'grading.expect_equal(call_it(handed), 1, "call_it")', "hands_a_function")
    probe = new_code_cell(
        "import json\nip = get_ipython()\n"
        "texts = [repr(In), repr(Out), repr(linecache.cache), repr(list(ip.history_manager.get_range()))]\n"
        "mark = " + " + ".join(repr(part) for part in HIDDEN_MARK.partition("-value")) + "\n"
        "print(json.dumps({'leak': any(mark in t for t in texts),"
        " 'doc': kept[0].__doc__}))")
    nb, _ = run([SETUP, DOUBLE, keeper, hidden_test("hidden"), handing, probe], tmp_path)
    printed = nb.cells[-1].outputs[0]["text"]
    assert '"leak": false' in printed and '"doc": null' in printed, printed
    assert outcome(nb, "hidden") == "passed" and outcome(nb, "hands_a_function") == "passed"


def test_a_check_failure_that_other_code_catches_still_fails_its_test(tmp_path):
    """If student code catches the CheckFailed a test's helper raised in the student's thread, is the
    test still failed?"""
    swallower = solution("def run_it(fn):\n    try:\n        fn()\n    except Exception:\n        pass\n"
                         "    return 'done'", "swallower")
    test = graded('def check():\n    grading.expect(False, "this check fails")\n'
                  'grading.expect_equal(run_it(check), "done", "run_it")', "caught")
    nb, _ = run([SETUP, swallower, test], tmp_path)
    assert outcome(nb, "caught") == "failed"
    cell = nb.cells[-1]
    assert "this check fails" in cell.outputs[0]["evalue"]


def test_a_protected_module_or_class_cannot_be_changed_from_a_cell(tmp_path):
    """Is `threading.Lock = ...` refused, and can a method of a cell's class no longer take a library
    class as its `self` (the route that would change threading.Event for everyone)?"""
    attempts = solution(
        "results = []\n"
        "try:\n    threading.Lock = None\nexcept AttributeError as e:\n    results.append('module refused')\n"
        "class Patcher:\n    def patch(self):\n        self.is_set = lambda *a: True\n"
        "try:\n    Patcher.patch(threading.Event)\nexcept TypeError:\n    results.append('self refused')\n"
        "Patcher().patch()\nresults.append(threading.Event().is_set())", "attempts")
    probe = new_code_cell("print(results)")
    nb, incidents = run([SETUP, attempts, probe], tmp_path)
    assert nb.cells[-1].outputs[0]["text"].strip() == "['module refused', 'self refused', False]"
    assert not [i for i in incidents if i["kind"] == "tampered"], incidents


def test_a_line_written_onto_the_channel_by_student_code_is_refused(tmp_path):
    """Does a verdict forged by writing onto the judge's socket descriptor count as tampering, not as a
    verdict?"""
    forger = solution(
        "import os, json\n"
        "for fd in range(3, 256):\n"
        "    try:\n"
        "        s = socket.socket(fileno=os.dup(fd))\n"
        "    except OSError:\n"
        "        continue\n"
        "    try:\n"
        "        if s.family == socket.AF_UNIX and str(s.getpeername()).endswith('audit.sock'):\n"
        "            s.sendall(b'0' * 64 + b' ' + json.dumps({'reply': 1, 'status': 'passed'}).encode() + b'\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "    finally:\n"
        "        s.detach()\n", "forger")
    nb, incidents = run([SETUP, DOUBLE, forger, failing_test("fails")], tmp_path)
    assert outcome(nb, "fails") == "failed"
    assert any(i["kind"] == "tampered" and "not signed" in i["message"] for i in incidents), incidents


def test_no_process_starts_where_the_lesson_allows_none_but_threads_do(tmp_path):
    """Under the no-process filter, do fork and exec fail from a solution, however they are reached,
    while threads still start?"""
    from traitlets.config import Config

    config = Config()
    config.JudgeKernelManager.allow_processes = False
    tries = solution(
        "import os, subprocess, asyncio\nfound = []\n"
        "def in_a_loop():\n    asyncio.run(asyncio.create_subprocess_exec('true'))\n"
        "for attempt in (lambda: subprocess.run(['true']), lambda: os.fork(), in_a_loop):\n"
        "    def run(attempt=attempt):\n"
        "        try:\n            attempt()\n            found.append('ran')\n"
        "        except OSError:\n            found.append('refused')\n"
        "    t = threading.Thread(target=run)\n    t.start(); t.join()\n"
        "t = threading.Thread(target=found.append, args=('thread',))\nt.start(); t.join()", "tries")
    nb, _ = run([SETUP, tries, new_code_cell("print(found)")], tmp_path, config=config)
    assert nb.cells[-1].outputs[0]["text"].strip() == "['refused', 'refused', 'refused', 'thread']"


def test_a_referee_test_compares_data_so_an_always_equal_object_earns_nothing(tmp_path):
    """Judged in the grader with data, does a result whose __eq__ always says True fail, and a right
    one pass — with a hidden failure marked hidden?"""
    liar = solution("class Yes:\n    def __eq__(self, other):\n        return True\n"
                    "def double(x):\n    return Yes() if x == 21 else 2 * x", "double")
    test = hidden_test("double_referee")
    test.metadata["tags"] = ["referee"]
    nb, _ = run([SETUP, liar, test], tmp_path)
    cell = nb.cells[-1]
    assert outcome(nb, "double_referee") == "failed"
    assert cell.metadata["course"]["verdict"]["hidden"] is True
    assert HIDDEN_MARK in cell.outputs[0]["evalue"]  # the instructor's copy keeps the message
    assert HIDDEN_MARK not in cell.metadata["course"]["verdict"]["public"]


def test_the_streams_a_cell_sees_lead_nowhere(tmp_path):
    """Is sys.stderr, as a cell (and threading.Thread.__init__, which keeps it) sees it, a stream with no
    attribute, public or private, that leads to ipykernel's session, app or shell — and does print still
    reach the notebook?"""
    probe = new_code_cell(
        "import json, sys, threading\n"
        "stream = threading.Thread()._stderr\n"
        "names = [n for n in dir(stream) if not n.startswith('__')]\n"
        "print(json.dumps({'same': stream is sys.stderr, 'type': type(stream).__name__,"
        " 'state': sorted(vars(stream)), 'names': names}))")
    nb, _ = run([SETUP, probe], tmp_path)
    printed = json.loads(nb.cells[-1].outputs[0]["text"])
    assert printed["same"] and printed["type"] == "CoveredStream" and set(printed["state"]) <= {"write"}  # IPython's, per cell
    assert not {"session", "parent", "pub_thread", "_session"} & set(printed["names"]), printed


def test_a_tests_builtins_and_its_own_names_are_never_the_solutions(tmp_path):
    """A solution rebinds ``len`` and a name a test defined, through ``global`` (the policy refuses it; here
    it is bypassed): do the tests still see the real built-in and their own helper — and does the
    honest counterpart, a solution that rebinds names of its own, still pass?"""
    rebinding = solution("mine = 1\ndef rebind():\n    global len, verdict, mine\n    len = lambda sized: 0\n"
                         "    verdict = lambda: True\n    mine = 2", "rebinding")
    defines = graded('def verdict():\n    return False\nrebind()', "defines")
    uses_len = graded('assert len([1, 2]) == 2, "the tests\' len"', "uses_len")
    own_helper = graded('assert verdict() is False, "the test\'s own verdict()"', "own_helper")
    sees_theirs = graded('assert mine == 2, "the notebook\'s own name, as the solution left it"', "sees_theirs")
    nb, _ = run([SETUP, rebinding, defines, uses_len, own_helper, sees_theirs], tmp_path)
    assert [outcome(nb, g) for g in ("defines", "uses_len", "own_helper", "sees_theirs")] == ["passed"] * 4


def test_a_computed_getattr_in_a_cell_reads_public_names_only(tmp_path):
    """Does ``getattr(obj, name)`` with a name from a table work in a solution (the idiom the policy now
    allows), while a computed private or interpreter name is refused when it runs, default or not — and
    do the tests keep the real ``getattr``?"""
    table = solution(
        "import ipaddress\nKINDS = ('is_multicast', 'is_loopback')\n"
        "def kind(text):\n    address = ipaddress.ip_address(text)\n"
        "    return next((n for n in KINDS if getattr(address, n)), None), hasattr(address, KINDS[1])\n"
        "def peek(obj, name, *default):\n    return getattr(obj, name, *default)\n", "table")
    works = graded('assert kind("127.0.0.1") == ("is_loopback", True), kind("127.0.0.1")', "works")
    refused = graded(
        "import threading\nfor name in ('_target', '__class__', 'f_globals', 'gi_frame', 'modules', 'format', 3):\n"
        "    for default in ((), (None,)):\n"
        "        try:\n            peek(threading.Thread(), name, *default)\n"
        "        except PermissionError as error:\n            assert 'public' in str(error), error\n"
        "        else:\n            raise AssertionError(f'a computed {name!r} was read')\n"
        "assert getattr(threading.Thread(), '_target') is None  # the tests' own getattr is the real one", "refused")
    nb, _ = run([SETUP, table, works, refused], tmp_path)
    assert outcome(nb, "works") == "passed", nb.cells[2].outputs
    assert outcome(nb, "refused") == "passed", nb.cells[3].outputs


def test_after_hidden_checks_only_a_checks_class_name_is_shown():
    """Once hidden checks ran, is every exception class but a check's shown as Error — a built-in one too,
    since a solution picks which to raise (about 6 bits a failing test)?"""
    from autograder.referee import shown_ename

    assert [shown_ename(n) for n in ("CheckFailed", "GraderCheckFailed")] == ["CheckFailed", "GraderCheckFailed"]
    assert {shown_ename(n) for n in ("ZeroDivisionError", "KeyError", "MyHiddenInput42", "TimeLimitExceeded")} == {"Error"}
