"""Does the judge kernel keep an audit trail that student code cannot erase or forge?

These run notebooks through ``BoundedExecute`` directly (the policy check,
which refuses most of this code long before, is bypassed on purpose): the
audit layer must hold on its own.
"""

import json
import threading

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.execute import BoundedExecute

pytestmark = pytest.mark.slow


def solution(source, grade_id):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": grade_id,
                                 "locked": False, "schema_version": 3}
    return cell


def graded(source, grade_id, points=1):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": grade_id, "points": points,
                                 "locked": True, "schema_version": 3}
    return cell


def run(cells, cwd, **kw):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nb.cells = cells
    kw.setdefault("timeout", 20)
    ep = BoundedExecute(**kw)
    before = set(threading.enumerate())
    ep.preprocess(nb, {"metadata": {"path": str(cwd)}})
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith(("audit", "kernel-log"))]
    assert not left, f"the judge's channels left threads behind: {left}"
    return nb, ep._incidents


def test_interpreter_hooks_in_solution_cells_are_reported_with_their_line(tmp_path):
    """Are settrace, gc.get_objects and a replaced __code__ in solution cells reported, naming the cell
    and the line — and the same calls in the course's own cells not held against anyone?"""
    cells = [
        new_code_cell("import sys, gc\nframe = sys._getframe()\nn = len(gc.get_objects())"),  # the course's
        solution("def f():\n    import sys\n    sys.settrace(None)\n    return 1", "traces"),
        new_code_cell("f()"),
        solution("import gc\nobjects = gc.get_objects()", "walks_the_heap"),
        solution("def g():\n    pass\ng.__code__ = (lambda: 1).__code__", "swaps_code"),
    ]
    _, incidents = run(cells, tmp_path)
    tampered = {i["cell"]: i["message"] for i in incidents if i["kind"] == "tampered"}
    assert set(tampered) == {"traces", "walks_the_heap", "swaps_code"}, incidents
    assert tampered["traces"].startswith("line 3 `sys.settrace(None)` raised sys.settrace")
    assert "gc.get_objects" in tampered["walks_the_heap"]


def test_closing_the_judges_channel_gains_nothing(tmp_path):
    """Does student code that closes the channel's descriptor lose its tests instead of passing them?"""
    closer = solution(
        "import os, socket\n"
        "for fd in range(3, 512):\n"
        "    try:\n"
        "        s = socket.socket(fileno=os.dup(fd))\n"
        "    except OSError:\n"
        "        continue\n"
        "    try:\n"
        "        if s.family == socket.AF_UNIX and str(s.getpeername()).endswith('audit.sock'):\n"
        "            os.close(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "    finally:\n"
        "        s.close()\n", "closes")
    nb, incidents = run([closer, graded("x = 1", "would_pass")], tmp_path, timeout=2)
    assert nb.cells[1].outputs and nb.cells[1].outputs[0]["output_type"] == "error", nb.cells[1].outputs


def test_a_second_connection_to_the_audit_channel_is_reported(tmp_path):
    """Does code that dials the grader's socket to forge reports get caught instead?"""
    dialer = solution(
        "import socket, json\n"
        "path = open('/proc/self/cmdline').read().split('\\0')\n"
        "path = path[path.index('--channel') + 1]\n"
        "c = socket.socket(socket.AF_UNIX)\nc.connect(path)\n"
        "c.sendall(json.dumps({'hello': 1}).encode() + b'\\n')\nc.close()", "dials")
    _, incidents = run([dialer], tmp_path)
    assert any("second connection" in i["message"] for i in incidents if i["kind"] == "tampered"), incidents


def test_files_beside_the_notebook_are_never_imported(tmp_path):
    """With a course_lib/ and an ipykernel_launcher.py planted in the working folder, does the kernel
    still start from the runtime and import the real course_lib?"""
    (tmp_path / "course_lib").mkdir()
    (tmp_path / "course_lib" / "__init__.py").write_text("FAKE = True\n")
    (tmp_path / "course_lib" / "grading.py").write_text("def expect_equal(*a, **k):\n    pass\n")
    (tmp_path / "ipykernel_launcher.py").write_text("raise SystemExit('planted launcher ran')\n")
    probe = new_code_cell("import course_lib, sys\nfrom course_lib import grading\n"
                          "print(json.dumps([hasattr(course_lib, 'FAKE'), grading.__file__, sys.flags.safe_path]))")
    nb, incidents = run([new_code_cell("import json"), probe], tmp_path)
    printed = json.loads(nb.cells[1].outputs[0]["text"])
    assert printed[0] is False and str(tmp_path) not in printed[1] and printed[2] is True
    assert not [i for i in incidents if i["kind"] != "output_capped"], incidents


def test_an_honest_notebook_raises_no_incident(tmp_path):
    """Do threads, sockets, queues and dataclasses in solution cells stay clear of the audit?"""
    honest = solution(
        "import threading, queue, socket, dataclasses, collections\n"
        "@dataclasses.dataclass(frozen=True)\nclass P:\n    x: int\n"
        "Pair = collections.namedtuple('Pair', 'a b')\n"
        "def work():\n    q = queue.Queue()\n    t = threading.Thread(target=q.put, args=(P(1),))\n"
        "    t.start(); t.join()\n    a, b = socket.socketpair()\n    a.sendall(b'x'); b.recv(1)\n"
        "    a.close(); b.close()\n    return q.get()", "honest")
    _, incidents = run([honest, new_code_cell("assert work() == P(1)")], tmp_path)
    assert incidents == []


def test_a_class_the_tests_use_patched_through_any_alias_is_reported(tmp_path):
    """Is a shared class changed through an alias (which raises no audit event) caught at the next
    cell's start — and one changed in the very last cell too?"""
    cells = [new_code_cell("import threading"),
             solution("cls = [threading.Event][0]\ncls.is_set = lambda self: True", "patches"),
             new_code_cell("x = 1")]
    _, incidents = run(cells, tmp_path)
    assert any(i["kind"] == "tampered" and "threading.Event.is_set was replaced" in i["message"]
               for i in incidents), incidents
    last = [new_code_cell("import socket"), solution("[socket.socket][0].send = print", "last")]
    _, incidents = run(last, tmp_path)
    assert any(i["kind"] == "tampered" and "socket.socket.send" in i["message"] for i in incidents), incidents


def test_the_connection_file_is_gone_once_the_kernel_has_read_it(tmp_path):
    """Can code in the kernel no longer read the key that signs messages to it?"""
    probe = new_code_cell("import sys\nargv = open('/proc/self/cmdline').read().split('\\0')\n"
                          "import os\nprint(os.path.exists(argv[argv.index('-f') + 1]))")
    nb, _ = run([probe], tmp_path)
    assert nb.cells[0].outputs[0]["text"].strip() == "False"


def test_a_process_started_from_a_solution_is_reported_where_none_is_allowed(tmp_path):
    """In a lesson without processes, is a child started below a solution cell tampering, however
    deep in the library the start happens?"""
    cells = [solution("import subprocess\ndef run():\n    return subprocess.run(['true']).returncode", "spawns"),
             new_code_cell("run()")]
    from autograder.audit import JudgeKernelManager  # noqa: F401  (configured below)
    from traitlets.config import Config

    config = Config()
    config.JudgeKernelManager.allow_processes = False
    _, incidents = run(cells, tmp_path, config=config)
    assert any(i["kind"] == "tampered" and "subprocess.Popen" in i["message"] for i in incidents), incidents


def test_every_module_the_tests_rely_on_is_sealed():
    """Would a new course_lib module be left outside the judge's sealing and snapshot? (The list is
    found in the package, so it cannot be: the judge itself and the widgets excepted.)"""
    import pkgutil

    import course_lib
    from course_lib.judge.integrity import protected_names

    modules = {m.name for m in pkgutil.walk_packages(course_lib.__path__, "course_lib.")}
    unwatched = {m for m in modules - set(protected_names())
                 if not m.startswith(("course_lib.judge", "course_lib.widgets"))}
    assert not unwatched and "course_lib.grading" in protected_names(), sorted(unwatched)


def test_a_judge_kernels_ipython_folder_is_its_own_and_private():
    """Is the folder where IPython keeps a judge kernel's history (the cells it ran) private to the
    user (mode 700) and different for each kernel, so no other account reads a student's code there?"""
    import os
    import stat

    from autograder.audit import JudgeKernelManager

    first, second = JudgeKernelManager().judge_env()["IPYTHONDIR"], JudgeKernelManager().judge_env()["IPYTHONDIR"]
    try:
        assert first != second
        assert stat.S_IMODE(os.stat(first).st_mode) == 0o700
    finally:
        os.rmdir(first)
        os.rmdir(second)


def test_a_search_left_patched_is_the_courses_patch_not_tampering(monkeypatch):
    """When a test gives up on a search whose invariant hangs in student code, the scheduler's stand-ins
    stay installed: does the snapshot count them as the originals, and still see any other replacement?"""
    import threading
    import time

    from course_lib.interleave.engine import _Patched
    from course_lib.interleave.primitives import _REAL_LOCK
    from course_lib.judge.integrity import Snapshot

    snapshot = Snapshot([threading, time], frozenset())
    with _Patched([]):
        assert threading.Lock is not _REAL_LOCK
        assert snapshot.changed() == ""
    assert snapshot.changed() == ""
    monkeypatch.setattr(threading, "Lock", lambda: None)
    assert snapshot.changed() == "threading.Lock was replaced or removed"

