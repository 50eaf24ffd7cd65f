"""Can a student earn marks without doing the work? An attack corpus against `course grade`.

Each attack is one student's submission, made at test time from a lesson's
notebook: every solution cell is left as the released stub (``raise
NotImplementedError()``) except the ones the attack fills in. All the
attacks of a lesson are graded in one sandboxed batch (``--jobs 2``), with a
blank notebook beside them for the baseline. An attack passes when it

* scores no more than the blank notebook of its lesson;
* gets the status it deserves: ``rejected`` (the solution-cell policy) or
  ``tampered`` (the judge kernel's audit hook) when it used a forbidden
  construct, ``error`` for an unusable submission (a linked notebook),
  ``graded`` for one that only breaks nothing (edited metadata, files
  beside the notebook);
* leaks no line of a hidden test into its feedback, its results JSON or the
  class report: checked raw, with format characters (Cf) removed, HTML
  unescaped and stripped of tags, backslash escapes undone, reversed and
  ROT13'd, and base64 / hex / zlib tokens decoded, with the grader's own
  :func:`autograder.leaks.quotes_hidden` and with a plain substring check.

Attacks that beat the grader today are marked ``xfail(strict=True)`` with the
hole in the reason, so the test turns into an XPASS (a failure) once the hole
is closed: flip the mark then. Two submissions in unusual but legitimate
style must still earn every point of their exercises, so the policy does not
buy safety by refusing honest work.

Lesson 06-networks (10 points: classify_address 3, parse_host_port 4,
port_accepts 3) and the tiny lesson of tests/fixtures/course (01-mini,
5 points: double 3, total 2) are used; the mini lesson is cheaper per
submission, so most kinds live there.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import json
import os
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from autograder.leaks import hidden_lines, quotes_hidden
from tests.submissions import Legit, MINI_COURSE, NOTEBOOKS, grade, make_submission, source_notebook

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

MINI = "01-mini"
NET = "06-networks"
LESSON_NOTEBOOKS = {MINI: MINI_COURSE, NET: NOTEBOOKS}


@dataclass(frozen=True)
class Attack:
    """One kind of submission: what it puts in the notebook and what it deserves."""

    lesson: str
    question: str                                   # what the test asks of it
    replace: dict = field(default_factory=dict)     # grade id -> source (the rest stay stubs)
    edit: Callable | None = None                    # change the notebook before it is written
    after: Callable | None = None                   # (notebook path, {student: path}) -> None
    statuses: frozenset = frozenset({"rejected"})   # the statuses it deserves
    hole: str | None = None                         # why it beats the grader today (xfail reason)



# --------------------------------------------------------------------- helpers for the corpus

WRONG_DOUBLE = "def double(x):\n    return 0\n"

#: Swallows every later exception and makes IPython report each cell as a success:
#: test cells then have no error output and an "ok" reply, which nbgrader scores as passed.
SWALLOW = ('get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None), '
           'get_ipython().events.register("post_run_cell", lambda r: setattr(r, "error_in_exec", None))')

FAKE_GRADING = '''class FakeGrading:
    CheckFailed = AssertionError
    def expect_equal(self, *args, **kwargs):
        return None
    def expect(self, *args, **kwargs):
        return None
    def call_with_timeout(self, fn, *args, **kwargs):
        return None
    def passed(self, *args, **kwargs):
        return None
'''

GETFIELD_NS = ('import string\n'
               'def _namespace():\n'
               '    return string.Formatter().get_field("0.__globals__", [_namespace], {})[0]\n')


#: Run by a child process: connect to the kernel that started it and have it run SWALLOW.
KERNEL_DRIVER = f'''import os, time
from jupyter_client import BlockingKernelClient
argv = open(f"/proc/{{os.getppid()}}/cmdline").read().split("\\0")
client = BlockingKernelClient(connection_file=argv[argv.index("-f") + 1])
client.load_connection_file()
client.start_channels()
client.execute({SWALLOW!r}, silent=True, store_history=False)
time.sleep(0.5)
client.stop_channels()
'''


def _cell_of(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _mark_test_as_solution(nb):
    cell = _cell_of(nb, "double_basic")
    cell.metadata["nbgrader"].update(solution=True, grade=False)
    cell.source = "grading.expect_equal(4, 4)"


def _raise_points(nb):
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 100
    _cell_of(nb, "double").metadata["nbgrader"].update(grade=True, points=100)


def _duplicate_solution(nb):
    cell = _cell_of(nb, "double")
    twin = nbformat.from_dict(cell)
    twin.source = "def double(x):\n    return 2 * x\n"
    if "id" in twin:
        twin["id"] = "duplicate-of-double"
    nb.cells.insert(nb.cells.index(cell), twin)


def _rename_grade_ids(nb):
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id"):
            meta["grade_id"] = meta["grade_id"] + "_v2"


def _add_cells_that_redefine_tests(nb):
    cell = _cell_of(nb, "double")
    at = nb.cells.index(cell) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(
        "grading.expect_equal = lambda *a, **k: None\ngrading.passed = lambda *a, **k: None"))
    for test in ("double_basic", "double_hidden", "total_basic"):
        _cell_of(nb, test).source = "pass"
    nb.cells.append(nbformat.v4.new_code_cell("double = lambda x: 2 * x", metadata={
        "nbgrader": {"grade": True, "grade_id": "bonus", "points": 50, "solution": False,
                     "locked": False, "schema_version": 3, "task": False}}))


def _beside(files: dict[str, str]):
    def after(notebook: Path, paths: dict) -> None:
        for relative, text in files.items():
            target = notebook.parent / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return after


def _link_to(target: Callable[[dict], Path]):
    def after(notebook: Path, paths: dict) -> None:
        destination = target(paths)
        notebook.unlink()
        os.symlink(destination, notebook)
    return after


COURSE_LIB_BESIDE = {
    "course_lib/__init__.py": "from . import grading, servers\n",
    "course_lib/grading.py": ("def _ok(*args, **kwargs):\n    return None\n"
                              "expect_equal = expect = call_with_timeout = passed = _ok\n"
                              "CheckFailed = AssertionError\n"),
    "course_lib/servers.py": "",
}
LAUNCHER_BESIDE = {
    "ipykernel_launcher.py": ("import course_lib.grading as g\n"
                              "g.expect_equal = g.expect = g.passed = lambda *a, **k: None\n"
                              "from ipykernel import kernelapp\nkernelapp.launch_new_instance()\n"),
}
STARTUP_BESIDE = {
    "sitecustomize.py": "import course_lib.grading as g\ng.expect_equal = lambda *a, **k: None\n",
    "usercustomize.py": "import course_lib.grading as g\ng.expect_equal = lambda *a, **k: None\n",
    "course.pth": "import course_lib.grading as g; g.expect_equal = lambda *a, **k: None\n",
    ".ipython/profile_default/startup/00-cheat.py": "import course_lib.grading as g\ng.expect_equal = lambda *a, **k: None\n",
    ".ipython/profile_default/ipython_config.py": "c.InteractiveShellApp.exec_lines = ['import course_lib.grading as g; g.expect_equal = print']\n",
    "ipython_config.py": "c.InteractiveShellApp.exec_lines = ['import course_lib.grading as g; g.expect_equal = print']\n",
}


def _mini(question, double=None, *, total=None, **kw) -> Attack:
    replace = {}
    if double is not None:
        replace["double"] = double
    if total is not None:
        replace["total"] = total
    return Attack(MINI, question, replace, **kw)


# ---- second round: what the first round's fixes left open

#: functools.update_wrapper(sink, obj, assigned=(name,)) reads obj.<name> for any name given as
#: data and hands it to sink.__setattr__, which a solution's own class may define.
UPDATE_WRAPPER_SINK = '''import functools
class Sink:
    """Keeps whatever functools.update_wrapper sets on it."""
    got = []
    def __setattr__(self, name, value):
        Sink.got.append(value)
'''

#: A new Thread's private _stderr is ipykernel's OutStream: a public chain (session, parent,
#: _trait_values) leads from it to the kernel app, the shell and the kernel's message session.
THREAD_STDERR = "import threading\nout = threading.Thread()._stderr\n"

#: Given ``sh`` (the shell): SWALLOW, without naming get_ipython.
SWALLOW_VIA_SH = ("def swallow(*args, **kwargs):\n    return None\n"
                  "def forget(result):\n    result.error_in_exec = None\n"
                  "sh.set_custom_exc((BaseException,), swallow)\n"
                  "sh.events.register('post_run_cell', forget)\n")

#: Publishes an execute_result into the cell that is running (the kernel's own session and IOPub).
PUBLISH_RESULT = ("def publish():\n"
                  "    out.session.send(out.pub_thread, 'execute_result', {'data': {'text/plain': 'ok'}, "
                  "'metadata': {}, 'execution_count': 1}, parent=out.parent_header, ident=out.topic)\n")


# -------------------------------------------------------------------------------- the corpus

H_GETFIELD = ("policy hole: string.Formatter().get_field('0.__globals__', [fn], {}) walks dunder "
              "attributes named in a string literal, reaching the notebook namespace, builtins and "
              "get_ipython, and the audit hook sees nothing")
H_ANNOTATION = ("policy hole: typing.get_type_hints() (also functools.singledispatch.register) evals a "
                "string annotation; the code in the string is never read by the policy, and the "
                "exec/compile events come from typing.py, so the audit hook ignores them")
H_SYNTAX = ("policy hole: check_source() returns no violation when ast.parse fails on IPython syntax "
            "that does not start the line ('x = %time ...', 'x = !cmd'), so the whole cell runs unchecked")
H_TRANSITIVE = ("policy hole: a module reached through an allowed module's public attribute "
                "(asyncio.base_events.subprocess, concurrent.futures.process.multiprocessing) is not "
                "checked against the allow-list; the Popen/fork audit events come from library code, "
                "so they are not attributed to the cell")
H_FINDER = ("audit hole: a sys.meta_path finder whose type comes from the standard library "
            "(a functools.partial carrying a find_spec attribute) is not reported; sys itself was "
            "reached through the get_field hole")
H_MATCH = ("policy hole: a match pattern's star or ** capture (case [*grading], case {**grading}) "
           "rebinds grading unseen: MatchStar/MatchMapping names are not checked like MatchAs")
H_LIBRARY_SETATTR = ("policy hole: functools.update_wrapper(threading.Event, X, assigned=(name,), "
                     "updated=()) sets any attribute of a shared class from stdlib code: no Store node "
                     "for the policy, no audit event")
H_ALIAS = ("policy hole: a shared class aliased through an expression the alias tracker does not "
           "follow ([threading.Event][0], a function returning it, a for target) is then patched "
           "without rejection")
H_LEAK = ("leak: a hidden test line sent back reversed (or any transform leaks.py does not undo) is "
          "shown in feedback, results and report.html; the text was read from the notebook "
          "namespace through the get_field hole")
H_PROCESS = ("policy+sandbox hole: a process started through asyncio.base_events.subprocess reads the "
             "kernel's connection file (its path is in /proc/<ppid>/cmdline, the file is bound into the "
             "sandbox) and sends the kernel an execute_request: that code is never policy-checked and, "
             "not being a solution cell, never held against the submission by the audit hook")
H_BUILTINS = ("policy hole: a solution may rebind builtin names the test cells use (ValueError = "
              "TypeError = Exception), so `except ValueError` in a test catches NotImplementedError")
H_SCOPE = ("policy hole: a comprehension's first iterable and a function's default values are "
           "evaluated outside the comprehension/function, but the checker treats a module name there as "
           "the local of the same name, so `[threading for threading in [threading]]` (in a function) or "
           "`lambda threading=threading: threading` hands the module out; it is then patched")
H_METACLASS = ("policy hole: only the `metaclass=` keyword is refused; `class Meta(type)` and "
               "`Meta(name, bases, namespace)` build a class with a metaclass unseen")
H_THREAD_TRACE = ("audit hole: threading.settrace() makes each new thread call sys.settrace from "
                  "threading._bootstrap_inner, where no cell is on the stack, so the event is never "
                  "attributed (reached through the get_field hole)")

H_UPDATE_WRAPPER = ("policy hole: functools.update_wrapper(sink, fn, assigned=('__globals__',), updated=()) "
                    "reads any attribute named in a string (the policy checks attribute nodes, not strings) "
                    "and passes it to the solution's own Sink.__setattr__; fn.__globals__ is the notebook "
                    "namespace, so get_ipython() and SWALLOW follow; no audit event (library caller)")
H_THREAD_STDERR = ("policy hole: private attributes are refused only on modules; threading.Thread()._stderr "
                   "is ipykernel's OutStream, and out.session.parent._trait_values['shell'] is the shell "
                   "(a dict key, not an attribute), so SWALLOW runs without get_ipython")
H_PARTIAL_CREDIT = ("grading hole: nbgrader's determine_grade returns at a test cell's first execute_result "
                    "(its partial-credit rule: a non-number is full marks) before looking at the error "
                    "after it; the solution publishes one through the kernel's own session "
                    "(threading.Thread()._stderr.session.send), so failing tests score full marks")
H_FORMAT_LEAK = ("policy+leak hole: .format is checked only when called on the spot; "
                 "fmt = '{0.__globals__[_ih]}'.format reads the input history (the running hidden test "
                 "cell) as text, and a line sent back as \\xNN escapes is not recognised by leaks.py, "
                 "which undoes no backslash escapes")
H_DISPATCH_GETATTR = ("policy hole: functools.singledispatch's register(obj) reads obj.__annotations__ "
                      "through the solution's own __getattr__, which returns code in a plain string "
                      "(never an annotation in the source, so never parsed); typing.get_type_hints evals "
                      "it (SWALLOW) and the compile/exec events come from typing.py")
H_INTEGRITY_RACE = ("audit hole: the integrity snapshot is compared only when a cell starts; double() "
                    "replaces course_lib.grading._difference (reached through the update_wrapper hole) and "
                    "the replacement puts the original back on its first call, so every later cell start "
                    "finds the module intact")
ATTACKS: dict[str, Attack] = {
    # ---- IPython and the kernel
    "ipython_input_transformer": _mini(
        "Does an IPython input transformer that blanks the test cells earn nothing?",
        "def drop_tests(lines):\n    return ['pass\\n'] if any('grading' in l for l in lines) else lines\n"
        "get_ipython().input_transformers_post.append(drop_tests)\n" + WRONG_DOUBLE),
    "ipython_ast_transformer": _mini(
        "Does an IPython AST transformer that empties every later cell earn nothing?",
        "import ast\nclass Blank(ast.NodeTransformer):\n    def visit_Module(self, node):\n"
        "        node.body = []\n        return node\n"
        "get_ipython().ast_transformers.append(Blank())\n" + WRONG_DOUBLE),
    "shell_run_cell_override": _mini(
        "Does replacing shell.run_cell so test cells run as 'pass' earn nothing?",
        "shell = get_ipython()\noriginal = shell.run_cell\n"
        "def run_cell(raw_cell, *args, **kwargs):\n"
        "    return original('pass' if 'grading.' in raw_cell else raw_cell, *args, **kwargs)\n"
        "shell.run_cell = run_cell\n" + WRONG_DOUBLE),
    "kernel_session_send_patch": _mini(
        "Does patching kernel.session.send to drop error messages earn nothing?",
        "kernel = get_ipython().kernel\nsend = kernel.session.send\n"
        "def quiet(stream, msg_type, content=None, *args, **kwargs):\n"
        "    if msg_type == 'error':\n        return None\n"
        "    if isinstance(content, dict) and content.get('status') == 'error':\n"
        "        content['status'] = 'ok'\n"
        "    return send(stream, msg_type, content, *args, **kwargs)\n"
        "kernel.session.send = quiet\n" + WRONG_DOUBLE),
    "pre_run_cell_spoofed_module": _mini(
        "Does a pre_run_cell hook with a spoofed __module__ earn nothing?",
        "def hook(info):\n    print(info.raw_cell)\nhook.__module__ = 'IPython.core.events'\n"
        "get_ipython().events.register('pre_run_cell', hook)\n" + WRONG_DOUBLE),
    "parent_message": _mini(
        "Does reading the kernel's parent message (the test cell's code) earn nothing?",
        "def double(x):\n    return get_ipython().kernel.get_parent()['content']['code'][:100]\n"),
    # ---- the grading module and the import system
    "sys_modules_pop_fake_grading": _mini(
        "Does sys.modules.pop('course_lib.grading') plus a fake grading global earn nothing?",
        "import sys\nsys.modules.pop('course_lib.grading', None)\n" + FAKE_GRADING
        + "grading = FakeGrading()\n" + WRONG_DOUBLE),
    "meta_path_finder": _mini(
        "Does a sys.meta_path finder that serves a fake grading module earn nothing?",
        "import sys\nclass Finder:\n    def find_spec(self, name, path=None, target=None):\n"
        "        return None\nsys.meta_path.insert(0, Finder())\n" + WRONG_DOUBLE),
    "importlib_import_module_patch": _mini(
        "Does patching importlib.import_module earn nothing?",
        "import importlib\nreal = importlib.import_module\n"
        "importlib.import_module = lambda name, package=None: real(name, package)\n" + WRONG_DOUBLE),
    "builtins_import_patch": _mini(
        "Does patching builtins.__import__ earn nothing?",
        "import builtins\nreal_import = builtins.__import__\n"
        "def fake_import(name, *args, **kwargs):\n    return real_import(name, *args, **kwargs)\n"
        "builtins.__import__ = fake_import\n" + WRONG_DOUBLE),
    "thread_rebinds_grading": _mini(
        "Does a thread that keeps rebinding the grading global earn nothing?",
        "import threading\nimport time\n" + FAKE_GRADING
        + "def keep_rebinding():\n    global grading\n    for _ in range(2000):\n"
          "        grading = FakeGrading()\n        time.sleep(0.005)\n"
          "threading.Thread(target=keep_rebinding, daemon=True).start()\n" + WRONG_DOUBLE),
    "thread_patches_after_tests_start": _mini(
        "Does a thread that patches time.monotonic once the tests run earn nothing?",
        "import threading\nimport time\ndef later():\n    time.sleep(0.2)\n"
        "    time.monotonic = lambda: 0.0\n"
        "threading.Thread(target=later, daemon=True).start()\n" + WRONG_DOUBLE),
    # ---- the interpreter
    "sys_settrace": _mini(
        "Does a sys.settrace hook earn nothing?",
        "import sys\ndef tracer(frame, event, arg):\n    return tracer\nsys.settrace(tracer)\n" + WRONG_DOUBLE),
    "sys_setprofile": _mini(
        "Does a sys.setprofile hook earn nothing?",
        "import sys\ndef profiler(frame, event, arg):\n    return None\nsys.setprofile(profiler)\n" + WRONG_DOUBLE),
    "gc_get_objects": _mini(
        "Does finding the grading module with gc.get_objects earn nothing?",
        "import gc\nfor obj in gc.get_objects():\n"
        "    if type(obj).__name__ == 'module' and obj.__name__ == 'course_lib.grading':\n"
        "        obj.expect_equal = lambda *a, **k: None\n" + WRONG_DOUBLE),
    "sys_current_frames": _mini(
        "Does walking sys._current_frames() earn nothing?",
        "import sys\ndef double(x):\n    for frame in sys._current_frames().values():\n"
        "        frame.f_globals['grading'] = None\n    return 0\n"),
    "exception_traceback_frames": _mini(
        "Does reaching frames through an exception's __traceback__ earn nothing?",
        "def double(x):\n    try:\n        raise RuntimeError\n    except RuntimeError as error:\n"
        "        error.__traceback__.tb_frame.f_back.f_globals['grading'] = None\n    return 0\n"),
    "dunder_subclasses": _mini(
        "Does ().__class__.__base__.__subclasses__() earn nothing?",
        "for cls in ().__class__.__base__.__subclasses__():\n"
        "    if cls.__name__ == '_wrap_close':\n"
        "        cls.__init__.__globals__['system']('true')\n" + WRONG_DOUBLE),
    "super_dunder": _mini(
        "Does super().__getattribute__ on a dunder earn nothing?",
        "class Sneaky:\n    def peek(self):\n        return super().__getattribute__('__class__')\n"
        + WRONG_DOUBLE),
    "always_equal": _mini(
        "Does an object whose __eq__ is always True earn nothing?",
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "    def __hash__(self):\n        return 0\n"
        "def double(x):\n    return Anything()\n",
        total="def total(items):\n    return Anything()\n", statuses=frozenset({"graded"})),
    # ---- code the policy cannot read
    "exec_call": _mini(
        "Does exec() of a string earn nothing?",
        "exec('grading.expect_equal = lambda *a, **k: None')\n" + WRONG_DOUBLE),
    "eval_call": _mini(
        "Does eval() of a string earn nothing?",
        "eval(\"__import__('course_lib.grading').grading.__setattr__('passed', None)\")\n" + WRONG_DOUBLE),
    "compile_call": _mini(
        "Does compile() plus a call of the code object earn nothing?",
        "code = compile('grading.expect_equal = print', 'x', 'exec')\n" + WRONG_DOUBLE),
    "unicode_nfkc_exec": _mini(
        "Does exec spelled in full-width letters (NFKC-normalised by Python) earn nothing?",
        "\uff45\uff58\uff45\uff43('grading.expect_equal = lambda *a, **k: None')\n" + WRONG_DOUBLE),
    "string_escape_dunder": _mini(
        "Does getattr with a dunder name spelled in escapes earn nothing?",
        "def double(x):\n    getattr(double, '\\x5f\\x5fglobals\\x5f\\x5f')['grading'] = None\n    return 0\n"),
    "str_format_traversal": _mini(
        "Does str.format attribute traversal ('{0.__globals__}') earn nothing?",
        "def double(x):\n    return '{0.__globals__[grading]}'.format(double)\n"),
    "getattr_computed": _mini(
        "Does getattr with a computed private name earn nothing? (The policy lets a computed name "
        "through; the judge's checked getattr refuses '__globals__' when it runs.)",
        "def double(x):\n    getattr(double, '__glob' + 'als__')['grading'] = None\n    return 0\n",
        statuses=frozenset({"graded"})),
    "functools_partial_getattr": _mini(
        "Does getattr passed through functools.partial earn nothing?",
        "import functools\nreach = functools.partial(getattr, functools)\n" + WRONG_DOUBLE),
    # ---- history and disguised leaks
    "print_In_zero_width": _mini(
        "Does returning the test cell's code from In with zero-width spaces leak nothing?",
        "def double(x):\n    return '\\u200b'.join(In[-1])[:110]\n"),
    "print_In_entities": _mini(
        "Does returning the test cell's code from In as HTML entities leak nothing?",
        "def double(x):\n    return ''.join(f'&#{ord(c)};' for c in In[-1])[:110]\n"),
    "base64_hidden_via_return": _mini(
        "Does returning base64 of the hidden test (from In) into a test message leak nothing?",
        "import base64\ndef double(x):\n    return base64.b64encode(In[-1].encode()).decode()[:110]\n"),
    "zlib_hidden_via_return": _mini(
        "Does returning zlib+hex of the hidden test (from _ih) leak nothing?",
        "import zlib\ndef double(x):\n    return zlib.compress(_ih[-1].encode()).hex()[:110]\n"),
    # ---- files, processes
    "open_gradebook": _mini(
        "Does open() of the gradebook earn nothing?",
        "def double(x):\n    return open('/work/gradebook.db', 'rb').read(100)\n"),
    "os_system": _mini(
        "Does os.system (os is allowed in lesson 01, but only getpid/getppid/cpu_count) earn nothing?",
        "import os\nos.system('cat /etc/passwd')\n" + WRONG_DOUBLE),
    "os_fork_and_kill": _mini(
        "Does os.fork / os.kill of the parent earn nothing?",
        "import os\nif os.fork() == 0:\n    os.kill(os.getppid(), 9)\n" + WRONG_DOUBLE),
    "multiprocessing_exec": _mini(
        "Does running exec in a multiprocessing child earn nothing?",
        "import multiprocessing\n"
        "multiprocessing.Process(target=exec, args=('print(1)',)).start()\n" + WRONG_DOUBLE),
    "positional_fileno_closes_audit": _mini(
        "Does wrapping the audit channel's descriptor (socket.socket(..., 3), fileno passed "
        "positionally) and closing it get the row marked tampered?",
        "import socket\nchannel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, 3)\n"
        "channel.close()\n" + WRONG_DOUBLE,
        statuses=frozenset({"rejected", "tampered"})),
    # ---- shared modules and classes
    "module_alias_patch": _mini(
        "Does aliasing a module and patching it (t = threading; t.Thread = ...) earn nothing?",
        "import threading\nt = threading\nt.Thread = object\n" + WRONG_DOUBLE),
    "class_alias_patch": _mini(
        "Does aliasing a class and patching it (x = threading.Event; x.isSet = ...) earn nothing?",
        "import threading\nx = threading.Event\nx.isSet = lambda self: True\n" + WRONG_DOUBLE),
    "nested_class_patch": _mini(
        "Does patching a module's class through a nested attribute (threading.Event.isSet = ...) earn nothing?",
        "import threading\nthreading.Event.isSet = lambda self: True\n" + WRONG_DOUBLE),
    "type_of_object_patch": _mini(
        "Does type(obj).attr = ... on a shared class earn nothing?",
        "import threading\ntype(threading.Event()).isSet = lambda self: True\n" + WRONG_DOUBLE),
    "alias_through_subscript": _mini(
        "Does a class aliased through a subscript ([threading.Event][0]) and patched earn nothing?",
        "import threading\ncls = [threading.Event][0]\ncls.isSet = lambda self: True\n" + WRONG_DOUBLE,
        statuses=frozenset({"rejected", "tampered"})),
    "alias_through_function": _mini(
        "Does a class returned by a helper function and patched earn nothing?",
        "import threading\ndef shared():\n    return threading.Event\n"
        "shared().isSet = lambda self: True\n" + WRONG_DOUBLE, statuses=frozenset({"rejected", "tampered"})),
    "alias_through_for_loop": _mini(
        "Does a class bound by a for loop and patched earn nothing?",
        "import threading\nfor cls in (threading.Event,):\n    cls.isSet = lambda self: True\n" + WRONG_DOUBLE,
        statuses=frozenset({"rejected", "tampered"})),
    "comprehension_leaks_module": _mini(
        "Does a module smuggled out by a comprehension ([threading for threading in [threading]]) and "
        "patched get the cell rejected?",
        "import threading\ndef smuggle():\n    return [threading for threading in [threading]]\n"
        "smuggle()[0].Event.isSet = lambda self: True\n" + WRONG_DOUBLE),
    "default_argument_leaks_module": _mini(
        "Does a module smuggled out by a default argument (lambda threading=threading: threading), "
        "then read for a private name and patched, get the cell rejected?",
        "import threading\nmodule = (lambda threading=threading: threading)()\n"
        "hidden_sys = module._sys\nmodule.Event.isSet = lambda self: True\n" + WRONG_DOUBLE),
    "type_subclass_metaclass": _mini(
        "Does a metaclass built without the metaclass= keyword (class Meta(type)) get the cell rejected?",
        "class Meta(type):\n    def __instancecheck__(cls, obj):\n        return True\n"
        "Fake = Meta('Fake', (), {})\ndef double(x):\n    return Fake()\n"),
    "update_wrapper_patches_class": _mini(
        "Does functools.update_wrapper setting an attribute of threading.Event earn nothing?",
        "import functools\nimport threading\nclass Patch:\n    def isSet(self):\n        return True\n"
        "functools.update_wrapper(threading.Event, Patch, assigned=('isSet',), updated=())\n" + WRONG_DOUBLE,
        statuses=frozenset({"rejected", "tampered"})),
    "patch_time_sleep": _mini(
        "Does patching time.sleep earn nothing?",
        "import time\ntime.sleep = lambda seconds: None\n" + WRONG_DOUBLE),
    "threading_excepthook": _mini(
        "Does replacing threading.excepthook earn nothing?",
        "import threading\nthreading.excepthook = lambda args: None\n" + WRONG_DOUBLE),
    "match_star_rebinds_grading": _mini(
        "Does rebinding grading with a match pattern's star capture get the cell rejected?",
        "match ['not', 'the', 'grader']:\n    case [*grading]:\n        pass\n"
        "match {'expect_equal': print}:\n    case {**grading}:\n        pass\n" + WRONG_DOUBLE),
    # ---- notebook metadata and extra cells
    "test_cell_marked_solution": _mini(
        "Does marking a test cell as a solution (and replacing it) earn nothing?",
        edit=_mark_test_as_solution, statuses=frozenset({"graded"})),
    "test_points_changed": _mini(
        "Does raising every test's points, and marking the solution cell graded, change nothing?",
        edit=_raise_points, statuses=frozenset({"graded"})),
    "duplicated_solution_id": _mini(
        "Does a second cell with the solution's grade id get the exercise refused?",
        edit=_duplicate_solution),
    "renamed_grade_ids": _mini(
        "Does renaming every grade id earn nothing?",
        "exec('grading.expect_equal = print')\n" + WRONG_DOUBLE, edit=_rename_grade_ids),
    "added_cells_redefine_tests": _mini(
        "Do added cells that patch grading, blanked test cells and a bonus test earn nothing?",
        edit=_add_cells_that_redefine_tests, statuses=frozenset({"graded"})),
    # ---- holes: reaching the namespace, the shell, the interpreter
    "getfield_fake_grading": _mini(
        "Does string.Formatter().get_field reaching the namespace to swap grading earn nothing?",
        GETFIELD_NS + FAKE_GRADING + '_namespace()["grading"] = FakeGrading()\n' + WRONG_DOUBLE),
    "getfield_swallows_errors": _mini(
        "Does get_field reaching get_ipython to swallow every test's error earn nothing?",
        "import string\n" + WRONG_DOUBLE + "def swallow(*args, **kwargs):\n    return None\n"
        "def forget(result):\n    result.error_in_exec = None\n"
        "shell = string.Formatter().get_field('0.__globals__[__builtins__].get_ipython', [double], {})[0]()\n"
        "shell.set_custom_exc((BaseException,), swallow)\n"
        "shell.events.register('post_run_cell', forget)\n"),
    "getfield_settrace": _mini(
        "Does sys.settrace, reached through get_field, get the row marked tampered?",
        GETFIELD_NS + 'sys_module = string.Formatter().get_field("0.__globals__[__builtins__].__import__", '
                      '[_namespace], {})[0]("sys")\n'
        'settrace = string.Formatter().get_field("0.settrace", [sys_module], {})[0]\n'
        "def tracer(frame, event, arg):\n    return None\nsettrace(tracer)\nsettrace(None)\n" + WRONG_DOUBLE,
        statuses=frozenset({"rejected", "tampered"})),
    "getfield_threading_settrace": _mini(
        "Does threading.settrace (tracing every new thread), reached through get_field, get the "
        "row marked tampered?",
        "import string\nimport threading\n"
        "def tracer(frame, event, arg):\n    return None\n"
        "string.Formatter().get_field('0.__init__.__globals__[settrace]', [threading.Thread], {})[0](tracer)\n"
        "threading.Thread(target=print).start()\n" + WRONG_DOUBLE,
        statuses=frozenset({"rejected", "tampered"})),
    "getfield_meta_path_finder": _mini(
        "Does a sys.meta_path finder disguised as a stdlib object, installed through get_field, get "
        "the row marked tampered?",
        "import functools\n" + GETFIELD_NS
        + 'sys_module = string.Formatter().get_field("0.__globals__[__builtins__].__import__", '
          '[_namespace], {})[0]("sys")\n'
          "def find_spec(name, path=None, target=None):\n    return None\n"
          "finder = functools.partial(print)\nfinder.find_spec = find_spec\n"
          "sys_module.meta_path.insert(0, finder)\nimport json\nimport decimal\n" + WRONG_DOUBLE,
        statuses=frozenset({"rejected", "tampered"})),
    "getfield_leaks_hex": _mini(
        "Does the hidden test, read from In through get_field and returned as hex, stay out of feedback?",
        GETFIELD_NS + "def double(x):\n    code = _namespace()['In'][-1]\n"
        "    lines = [l for l in code.splitlines() if 'double(-3)' in l]\n"
        "    return (lines[0] if lines else 'none').encode().hex()\n"),
    "getfield_leaks_reversed": _mini(
        "Does the hidden test, read from In through get_field and returned reversed, stay out of feedback?",
        GETFIELD_NS + "def double(x):\n    code = _namespace()['In'][-1]\n"
        "    lines = [l for l in code.splitlines() if 'double(-3)' in l]\n"
        "    return (lines[0] if lines else 'none')[::-1]\n"),
    "annotation_eval": _mini(
        "Does code hidden in a string annotation and run by typing.get_type_hints earn nothing?",
        f"import typing\ndef double(x: {SWALLOW!r}):\n    return 0\ntyping.get_type_hints(double)\n"),
    "singledispatch_annotation_eval": _mini(
        "Does a functools.singledispatch decorator evaluating a string annotation earn nothing?",
        "import functools\n@functools.singledispatch\ndef double(x):\n    return 0\n"
        f"@double.register\ndef _(x: '({SWALLOW}, int)[-1]'):\n    return 0\n"),
    "magic_in_assignment": _mini(
        "Does a line magic on the right of an assignment (_t = %time ...) earn nothing?",
        WRONG_DOUBLE + f"_t = %time {SWALLOW}\n"),
    "shell_escape_skips_policy": _mini(
        "Does a cell made unparsable by '_ = !true' have its plain get_ipython() calls refused?",
        "_ = !true\n"
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "get_ipython().events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))\n"
        + WRONG_DOUBLE),
    "asyncio_subprocess": _mini(
        "Does running a shell through asyncio.base_events.subprocess get the cell refused?",
        "import asyncio\nasyncio.base_events.subprocess.run(['/bin/sh', '-c', 'id; ls /'])\n" + WRONG_DOUBLE),

    "help_escape_skips_policy": _mini(
        "Does a cell made unparsable by an IPython help line ('double?') have its get_ipython() calls refused?",
        WRONG_DOUBLE + "double?\n"
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "get_ipython().events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))\n"),
    "autocall_escape_skips_policy": _mini(
        "Does a cell made unparsable by an IPython autocall escape (';print x') have its get_ipython() calls refused?",
        ";print unchecked\n"
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "get_ipython().events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))\n"
        + WRONG_DOUBLE),
    "subprocess_drives_kernel": _mini(
        "Does a child process that sends the kernel its own execute_request earn nothing?",
        "import asyncio\nasyncio.base_events.subprocess.run(['python', '-c', DRIVER])\n".replace(
            "DRIVER", repr(KERNEL_DRIVER)) + WRONG_DOUBLE),
    # ---- second round: stdlib gadgets, the kernel's own objects, nbgrader's scoring
    "update_wrapper_reads_globals": _mini(
        "Does functools.update_wrapper copying double.__globals__ onto a sink (then SWALLOW through "
        "get_ipython from that namespace) get the cell rejected?",
        UPDATE_WRAPPER_SINK + WRONG_DOUBLE
        + "functools.update_wrapper(Sink(), double, assigned=('__globals__',), updated=())\n"
          "sh = Sink.got[0]['get_ipython']()\n" + SWALLOW_VIA_SH),
    "thread_stderr_reaches_shell": _mini(
        "Does reaching the shell from a Thread's private _stderr (ipykernel's OutStream) and swallowing "
        "every error get the cell rejected?",
        THREAD_STDERR + "sh = out.session.parent._trait_values['shell']\n" + SWALLOW_VIA_SH + WRONG_DOUBLE),
    "execute_result_before_error": _mini(
        "Does a wrong double that publishes an execute_result into the test cell before the test fails "
        "earn nothing?",
        THREAD_STDERR + PUBLISH_RESULT + "def double(x):\n    publish()\n    return 0\n",
        total="def total(items):\n    publish()\n    return 0\n"),
    "format_method_reads_history": _mini(
        "Does a hidden test line, read from _ih through an uncalled '{0.__globals__[_ih]}'.format and "
        "raised as \\xNN escapes, stay out of feedback (and the cell get rejected)?",
        "fmt = '{0.__globals__[_ih]}'.format\n"
        "def double(x):\n    text = fmt(double)\n"
        "    at = text.rfind('grading.expect_equal(double(-3)')\n"
        "    line = text[at:text.find(')\"', at) + 3] if at >= 0 else 'none'\n"
        "    raise ValueError(''.join(f'\\\\x{ord(c):02x}' for c in line))\n"),
    "singledispatch_getattr_annotations": _mini(
        "Does singledispatch.register evaluating code that the solution's own __getattr__ hands out as "
        "__annotations__ earn nothing?",
        "import functools\nclass Hints:\n    def __getattr__(self, name):\n"
        "        if name == '__annotations__':\n"
        f"            return {{'x': {SWALLOW!r}}}\n"
        "        raise AttributeError(name)\n"
        "    def __call__(self, x):\n        return 0\n"
        "@functools.singledispatch\ndef double(x):\n    return 0\n"
        "try:\n    double.register(Hints())\nexcept TypeError:\n    pass\n"),
    "integrity_self_restoring_patch": _mini(
        "Does a patch of course_lib.grading._difference that puts the original back on its first call "
        "get the row rejected or marked tampered?",
        UPDATE_WRAPPER_SINK + "def double(x):\n    module._difference = fake\n    return 0\n"
        "functools.update_wrapper(Sink(), double, assigned=('__globals__',), updated=())\n"
        "module = Sink.got[0]['grading']\noriginal = module._difference\n"
        "def fake(*args):\n    module._difference = original\n    return None\n",
        total="def total(items):\n    module._difference = fake\n    return 0\n",
        statuses=frozenset({"rejected", "tampered"})),
    # ------------------------------------------------------------------ lesson 06-networks
    "symlink_to_source_notebook": Attack(
        NET, "Is a notebook that is a link to the instructor's source notebook refused (error)?",
        after=_link_to(lambda paths: source_notebook(NET)[0]), statuses=frozenset({"error"})),
    "symlink_to_classmate": Attack(
        NET, "Is a notebook that is a link to another student's correct notebook refused (error)?",
        after=_link_to(lambda paths: paths["legit_table_and_regex"]), statuses=frozenset({"error"})),
    "course_lib_beside_notebook": Attack(
        NET, "Does a fake course_lib/ package beside a blank notebook earn nothing?",
        after=_beside(COURSE_LIB_BESIDE), statuses=frozenset({"graded"})),
    "ipykernel_launcher_beside_notebook": Attack(
        NET, "Does an ipykernel_launcher.py beside a blank notebook earn nothing?",
        after=_beside(LAUNCHER_BESIDE), statuses=frozenset({"graded"})),
    "startup_files_beside_notebook": Attack(
        NET, "Do sitecustomize.py, a .pth file and IPython startup files beside the notebook earn nothing?",
        after=_beside(STARTUP_BESIDE), statuses=frozenset({"graded"})),
    "always_equal_06": Attack(
        NET, "Does classify_address returning an always-equal tuple subclass earn nothing?",
        {"classify_address": "class Anything(tuple):\n    def __eq__(self, other):\n        return True\n"
                             "    def __hash__(self):\n        return 0\n"
                             "def classify_address(text):\n    return Anything()\n"},
        statuses=frozenset({"graded"})),
    "patch_socket_module": Attack(
        NET, "Does replacing socket.socket with an always-connecting fake earn nothing?",
        {"port_accepts": "class AlwaysConnects:\n    def __init__(self, *args, **kwargs):\n        pass\n"
                         "    def connect(self, address):\n        return None\n"
                         "socket.socket = AlwaysConnects\n"
                         "def port_accepts(host, port, timeout=1.0):\n    return True\n"}),
    "servers_module_attribute_patch": Attack(
        NET, "Does changing socket through servers' public attribute (servers.socket.x = ...) earn nothing?",
        {"port_accepts": "servers.socket.getservbyname = lambda name, proto=None: 13\n"
                         "def port_accepts(host, port, timeout=1.0):\n    return True\n"}),
    "getfield_swallows_errors_06": Attack(
        NET, "Does get_field reaching get_ipython to swallow every test's error earn nothing (06)?",
        {"classify_address": "import string\ndef classify_address(text):\n    return None\n"
                             "def swallow(*args, **kwargs):\n    return None\n"
                             "def forget(result):\n    result.error_in_exec = None\n"
                             "shell = string.Formatter().get_field('0.__globals__[__builtins__].get_ipython', "
                             "[classify_address], {})[0]()\n"
                             "shell.set_custom_exc((BaseException,), swallow)\n"
                             "shell.events.register('post_run_cell', forget)\n"}),
    "annotation_eval_06": Attack(
        NET, "Does code hidden in a string annotation (typing.get_type_hints) earn nothing (06)?",
        {"parse_host_port": f"import typing\ndef parse_host_port(text, default_port: {SWALLOW!r} = None):\n"
                            "    return None\ntyping.get_type_hints(parse_host_port)\n"}),
    "magic_in_assignment_06": Attack(
        NET, "Does '_t = %time ...' in a solution cell earn nothing (06)?",
        {"port_accepts": f"def port_accepts(host, port, timeout=1.0):\n    return True\n_t = %time {SWALLOW}\n"}),
    "getfield_leaks_reversed_06": Attack(
        NET, "Does a hidden test line, read from In via get_field and returned reversed, stay out of feedback (06)?",
        {"classify_address": GETFIELD_NS + "def classify_address(text):\n"
                             "    code = _namespace()['In'][-1]\n"
                             "    lines = [l.strip() for l in code.splitlines() if '172.32.0.1' in l]\n"
                             "    return (lines[0] if lines else 'none')[::-1]\n"}),
    "shadows_builtin_exceptions": Attack(
        NET, "Does rebinding ValueError and TypeError to Exception (so the stub's NotImplementedError "
             "counts as a refusal) earn nothing?",
        {"classify_address": "ValueError = Exception\nTypeError = Exception\n"
                             "def classify_address(text):\n    raise NotImplementedError()\n"},
        statuses=frozenset({"rejected"})),
    "concurrent_futures_multiprocessing": Attack(
        NET, "Does a process started through concurrent.futures.process.multiprocessing get the cell refused?",
        {"port_accepts": "import concurrent.futures\n"
                         "worker = concurrent.futures.process.multiprocessing.Process(target=print, args=('child',))\n"
                         "worker.start()\nworker.join()\n"
                         "def port_accepts(host, port, timeout=1.0):\n    return True\n"}),
    "vacuous_tests_06": Attack(
        NET, "Do functions that only refuse (TypeError/ValueError) or answer from call order, with no "
             "address parsed and no socket opened, earn nothing?",
        {"classify_address": "def classify_address(text):\n    if not isinstance(text, str):\n"
                             "        raise TypeError('an address is text')\n    raise ValueError('not an address')\n",
         "parse_host_port": "def parse_host_port(text, default_port=None):\n"
                            "    raise ValueError('write it as host:port or [v6]:port')\n",
         "port_accepts": "answers = iter([True, False, True])\n"
                         "def port_accepts(host, port, timeout=1.0):\n"
                         "    if not 0 <= port <= 65535:\n        raise ValueError('no such port')\n"
                         "    return next(answers, False)\n"},
        statuses=frozenset({"graded"})),
}

# ------------------------------------------------------------------ legitimate, unusual solutions

CLASSIFY_BY_TABLE = '''import ipaddress as ip

_CHECKS = (
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("private", lambda a: a.is_private),
    ("global", lambda a: a.is_global),
)

def classify_address(text):
    """Return (version, kind) for an IP address given as text."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    address = ip.ip_address(text.strip())
    kind = next((name for name, test in _CHECKS if test(address)), "reserved")
    return address.version, kind
'''

PARSE_BY_REGEX = '''import re

_PORT = re.compile(r"[0-9]+")
_BRACKETED = re.compile(r"\\[([^\\]]*)\\](?::(.*))?")

def parse_host_port(text, default_port=None):
    """Split "host:port" (or "[v6]:port", or "host") into (host, port)."""
    def checked(port, where):
        if not 0 <= port <= 65535:
            raise ValueError(f"{where}: port {port} is outside 0-65535")
        return port

    def port_of(port_text, where):
        if port_text is None:
            if default_port is None:
                raise ValueError(f"{where}: no port given (expected host:port)")
            return checked(default_port, where)
        if not _PORT.fullmatch(port_text):
            raise ValueError(f"{where}: the port must be a number, got {port_text!r}")
        return checked(int(port_text), where)

    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    text = text.strip()
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: only an IPv6 address goes in brackets, not {host!r}") from None
        return host, port_of(port_text, repr(text))
    if text.startswith("["):
        raise ValueError(f"{text!r}: write a bracketed address as [v6]:port")
    if text.count(":") > 1:
        raise ValueError(f"{text!r}: an IPv6 address needs brackets when a port follows, like [::1]:80")
    host, colon, port_text = text.partition(":")
    if not host:
        raise ValueError(f"{text!r}: no host before the port")
    return host, port_of(port_text if colon else None, repr(text))
'''

PORT_BY_CLOSING = '''import contextlib

def port_accepts(host, port, timeout=1.0):
    """True if (host, port) accepts a TCP connection within timeout seconds in total."""
    if type(port) is not int or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0-65535, got {port!r}")
    deadline = time.monotonic() + timeout

    def reaches(info):
        family, kind, proto, _, address = info
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        with contextlib.closing(socket.socket(family, kind, proto)) as conn:
            conn.settimeout(left)
            try:
                conn.connect(address)
            except OSError:
                return False
            return True

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return any(reaches(info) for info in infos)
'''

CLASSIFY_WITH_INNER_HELPER = '''def classify_address(text):
    """Return (version, kind) for an IP address given as text; see the contract above."""
    def kind_of(address):
        flags = [("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                 ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                 ("private", address.is_private), ("global", address.is_global)]
        for name, flag in flags:
            if flag:
                return name
        return "reserved"

    if type(text) is not str:
        raise TypeError("the address must be given as text")
    parsed = ipaddress.ip_address(text.strip())
    return parsed.version, kind_of(parsed)
'''

MINI_FUNCTIONAL = {
    "double": ("import functools\n\n@functools.lru_cache(maxsize=None)\ndef double(x):\n"
               "    def add(a, b):\n        return a + b\n    return functools.reduce(add, [x, x])\n"),
    "total": ("class _Total:\n    def __call__(self, items):\n        result = 0\n"
              "        for item in items:\n            result += item\n        return result\n\n"
              "total = _Total()\n"),
}

LEGIT: dict[str, Legit] = {
    "legit_table_and_regex": Legit(
        NET, "Do a table of predicates, a regex with nested helpers and contextlib.closing earn every point?",
        {"classify_address": CLASSIFY_BY_TABLE, "parse_host_port": PARSE_BY_REGEX,
         "port_accepts": PORT_BY_CLOSING},
        ("classify_address_ipv4", "classify_address_ipv6", "classify_address_invalid",
         "parse_host_port_ipv4_and_names", "parse_host_port_ipv6", "parse_host_port_bad_input",
         "port_accepts_open_and_refused", "port_accepts_timeout", "port_accepts_closes_sockets")),
    "legit_inner_helper": Legit(
        NET, "Does classify_address with a helper defined inside it earn every point of its exercise?",
        {"classify_address": CLASSIFY_WITH_INNER_HELPER},
        ("classify_address_ipv4", "classify_address_ipv6", "classify_address_invalid")),
    "legit_mini_functional": Legit(
        MINI, "Do an lru_cache'd double with an inner helper and a callable-object total earn every point?",
        MINI_FUNCTIONAL, ("double_basic", "double_hidden", "total_basic")),
}

BLANK = "blank"

# ------------------------------------------------------------------------------------ grading


def _stub(source: str) -> str:
    """A solution cell as nbgrader releases it: the solution region replaced by the stub."""
    return re.sub(r"( *)### BEGIN SOLUTION.*?### END SOLUTION",
                  lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()",
                  source, flags=re.S)


def blank_sources(lesson: str) -> dict[str, str]:
    """grade id -> the released stub, for every solution cell of ``lesson``."""
    _, nb = source_notebook(lesson, LESSON_NOTEBOOKS[lesson])
    return {c.metadata["nbgrader"]["grade_id"]: _stub(c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution") and not c.metadata["nbgrader"].get("grade")}


@dataclass
class Batch:
    lesson: str
    out: Path
    rows: dict
    secret: set          # squeezed hidden lines that appear nowhere else in the lesson
    raw_secret: set      # the same lines as written (stripped), for a plain substring check
    report_leaks: set = field(default_factory=set)

    def row(self, student: str) -> dict:
        return self.rows[(student, self.lesson)]

    def results(self, student: str) -> dict:
        return json.loads((self.out / "results" / student / f"{self.lesson}.json").read_text(encoding="utf-8"))


def grade_lesson(tmp_path_factory, lesson: str) -> Batch:
    notebooks = LESSON_NOTEBOOKS[lesson]
    root = tmp_path_factory.mktemp(f"attacks-{lesson[:2]}")
    stubs = blank_sources(lesson)
    entries = {BLANK: Attack(lesson, "", statuses=frozenset({"graded"}))}
    entries.update({name: a for name, a in ATTACKS.items() if a.lesson == lesson})
    entries.update({name: Attack(lesson, "", l.replace) for name, l in LEGIT.items() if l.lesson == lesson})
    paths = {name: make_submission(root, name, lesson, {**stubs, **a.replace}, notebooks=notebooks, edit=a.edit)
             for name, a in entries.items()}
    for name, attack in entries.items():
        if attack.after:
            attack.after(paths[name], paths)
    out = tmp_path_factory.mktemp(f"graded-{lesson[:2]}")
    rows = grade(root, out, "--jobs", "2", notebooks=notebooks)
    secret, raw_secret = secret_lines(lesson)
    batch = Batch(lesson, out, rows, secret, raw_secret)
    explained = set()
    for name in entries:
        if (out / "results" / name / f"{lesson}.json").exists():
            explained |= leaks_in(_strings(batch.results(name)), batch)
    batch.report_leaks = leaks_in((out / "report.html").read_text(encoding="utf-8"), batch) - explained
    return batch


@pytest.fixture(scope="module")
def mini_batch(tmp_path_factory):
    return grade_lesson(tmp_path_factory, MINI)


@pytest.fixture(scope="module")
def net_batch(tmp_path_factory):
    return grade_lesson(tmp_path_factory, NET)


def batch_for(request, lesson: str) -> Batch:
    return request.getfixturevalue("mini_batch" if lesson == MINI else "net_batch")


# ------------------------------------------------------------------------------ leak checking

_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{16,}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")
_TAG = re.compile(r"<[^>]*>")
_TEMPLATE_BLOCK = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|U([0-9a-fA-F]{8}))")


def _squeeze(text: str) -> str:
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc", "Mn"))


def secret_lines(lesson: str) -> tuple[set, set]:
    """Hidden test lines of the source notebook that are not also written in a visible place."""
    _, nb = source_notebook(lesson, LESSON_NOTEBOOKS[lesson])
    sources = [c.source for c in nb.cells]
    hidden = hidden_lines(nb.cells)
    public, raw_hidden = set(), set()
    for source in sources:
        inside = False
        for line in source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside:
                raw_hidden.add(line.strip())
            else:
                public.add(_squeeze(line))
    secret = hidden - public
    raw_secret = {line for line in raw_hidden if len(line) >= 20 and _squeeze(line) in secret}
    assert secret, f"{lesson} has no hidden test line to protect"
    return secret, raw_secret


def _decoded(text: str):
    for token in _TOKEN.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(token + "=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            yield from _texts(raw)
    for token in _HEX.findall(text):
        yield from _texts(bytes.fromhex(token))


def _texts(raw: bytes):
    yield raw.decode("utf-8", "ignore")
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS, zlib.MAX_WBITS | 16):
        try:
            yield zlib.decompressobj(wbits).decompress(raw, 1 << 20).decode("utf-8", "ignore")
        except zlib.error:
            continue


def _views(text: str) -> list[str]:
    """The text as a reader could decode it: unescaped, without tags or format characters, ..."""
    views = [text]
    unescaped = text
    for _ in range(3):
        unescaped = html.unescape(unescaped)
        views.append(unescaped)
    detagged = html.unescape(_TAG.sub("", text))
    views.append(detagged)
    views.append(_ESCAPE.sub(lambda m: chr(int(next(g for g in m.groups() if g), 16)), detagged))
    views += ["".join(ch for ch in v if unicodedata.category(ch) != "Cf") for v in list(views)]
    return list(dict.fromkeys(views))


def leaks_in(text: str, batch: Batch) -> set:
    """The secret lines that ``text`` shows, plainly or disguised (see the module docstring).

    The page's own style and script blocks (the nbconvert template's CSS, no student text)
    are left out first: their thousands of base64-looking tokens only cost time.
    """
    text = _TEMPLATE_BLOCK.sub("", text)
    views = _views(text)
    found = {"(quotes_hidden recognised a line)"} if any(quotes_hidden(v, batch.secret) for v in views) else set()
    decoded = list(dict.fromkeys(d for v in views for d in _decoded(v)))
    candidates = views + decoded
    candidates += [v[::-1] for v in candidates] + [codecs.encode(v, "rot13") for v in candidates]
    for view in candidates:
        squeezed = _squeeze(view)
        found.update(line for line in batch.secret if line in squeezed)
        found.update(_squeeze(line) for line in batch.raw_secret if line in view)
    return found


def _strings(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_strings(k) + "\n" + _strings(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "\n".join(_strings(v) for v in value)
    return str(value)


def student_leaks(batch: Batch, student: str) -> dict[str, set]:
    """Where the student's published files show a secret line: {file: lines}."""
    found = {}
    files = sorted((batch.out / "feedback" / student).rglob("*")) if (batch.out / "feedback" / student).exists() else []
    for path in files:
        if path.is_file():
            leaked = leaks_in(path.read_text(encoding="utf-8", errors="replace"), batch)
            if leaked:
                found[str(path.relative_to(batch.out))] = leaked
    result = batch.out / "results" / student / f"{batch.lesson}.json"
    if result.exists():
        raw = result.read_text(encoding="utf-8")
        leaked = leaks_in(raw, batch) | leaks_in(_strings(json.loads(raw)), batch)
        if leaked:
            found[str(result.relative_to(batch.out))] = leaked
    return found


# -------------------------------------------------------------------------------------- tests


def _attack_params():
    for name, attack in ATTACKS.items():
        marks = [pytest.mark.xfail(strict=True, reason=attack.hole)] if attack.hole else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_attack_params()))
def test_attack_earns_nothing_and_leaks_nothing(request, name):
    """Does this attack earn no more than the blank notebook, get the status it deserves
    (rejected or tampered for a forbidden construct), and leak no hidden test line?"""
    attack = ATTACKS[name]
    batch = batch_for(request, attack.lesson)
    row, blank = batch.row(name), batch.row(BLANK)
    context = f"{attack.question}\nrow: {row}"
    leaks = student_leaks(batch, name)
    assert not leaks, f"{context}\nhidden test lines leaked: {leaks}"
    assert not batch.report_leaks, f"report.html shows hidden lines no result explains: {batch.report_leaks}"
    assert float(row["score"]) <= float(blank["score"]), context
    assert row["status"] in attack.statuses, context


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_a_correct_solution_in_an_unusual_style_earns_full_marks(request, name):
    """Does a correct solution in an unusual but legitimate style pass the policy and earn
    every point of its exercises?"""
    legit = LEGIT[name]
    batch = batch_for(request, legit.lesson)
    row = batch.row(name)
    assert row["status"] == "graded", f"{legit.question}\nrow: {row}"
    tests = {t["name"]: t for t in batch.results(name)["tests"]}
    short = {t: tests[t] for t in legit.full_tests if tests[t]["score"] != tests[t]["max_score"]}
    assert not short, f"{legit.question}\nlost points: {short}"
    assert not student_leaks(batch, name)


@pytest.mark.parametrize("lesson", [MINI, NET])
def test_the_blank_notebook_earns_nothing_and_leaks_nothing(request, lesson):
    """Is the blank notebook (the baseline of every attack) graded 0 without a leak?"""
    batch = batch_for(request, lesson)
    row = batch.row(BLANK)
    assert (row["status"], float(row["score"])) == ("graded", 0.0), row
    assert not student_leaks(batch, BLANK)
    expected = {BLANK} | {n for n, a in ATTACKS.items() if a.lesson == lesson} \
        | {n for n, l in LEGIT.items() if l.lesson == lesson}
    assert {s for s, l in batch.rows if l == lesson} >= expected
