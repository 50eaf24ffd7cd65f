"""The trusted test runner: the judge runs each test itself, IPython never sees one.

Solution and lesson cells run as ordinary IPython cells. Test cells do not:
the grader sent every test's source in its first message, before any cell
ran, and later asks by name ("run test ``SafeCounter_counts``"). The runner
compiles the test with the file name :data:`~course_lib.judge.integrity.TEST_FILE`
(docstrings stripped, nothing registered in ``linecache``), runs it in a
thread of its own in a namespace of its own — the notebook's names, synced
from the user namespace before each test, the course's modules from the
judge's own table, built-ins whose ``__import__`` resolves those modules
from the same table — and answers on the signed channel: passed, or failed
with the exception's type, message and the test line it came from. Input
transformers, custom exception handlers, event callbacks, display hooks and
``run_cell`` overrides a student registered with IPython never touch a
test, and no test's source is in ``In``, the history or ``linecache``.

Every :class:`course_lib.grading.CheckFailed` made while a test runs is
reported on the channel as it is made, so a failure that student code
catches (in a thread, in a callback) still fails the test. The protected
modules are compared with their snapshot before and after every test and
after every controlled run of the scheduler.

For a test the grader judges in its own process (:mod:`autograder.referee`)
the runner only answers ``describe`` (is a name a function, or what data
does it hold?) and ``call`` (call a function with data, return data): the
test's code and its expected values never enter the kernel.

Methods for the judge's start-up: :func:`serve`. Requests and answers are
described in :mod:`autograder.referee`, the grader's end.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import threading
import time
import types

from . import walk, wire
from .integrity import TEST_FILE

__all__ = ["serve", "compile_test", "describe_failure"]

MAX_MESSAGE = 4000
GRACE_S = 2.0  # after the interrupt, how long a timed-out test has to unwind
RUNNER_NAMES = frozenset({"__builtins__", "__name__", "display"})  # what the runner itself sets in a test's namespace


class TestInterrupted(BaseException):
    """Raised in a test's thread at its time limit (a BaseException: ``except Exception`` keeps going)."""


def _interrupt(thread: threading.Thread, set_async_exc=ctypes.pythonapi.PyThreadState_SetAsyncExc) -> None:
    """Raise :class:`TestInterrupted` in ``thread`` at its next bytecode (not inside a C call)."""
    if thread.ident is not None:
        set_async_exc(ctypes.c_ulong(thread.ident), ctypes.py_object(TestInterrupted))


def compile_test(source: str):
    """The code of one test: docstrings stripped (a function a test hands to student code carries no
    text of the test), compiled under :data:`TEST_FILE`."""
    tree = ast.parse(source, filename=TEST_FILE)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.copy_location(ast.Pass(), first)]
    return compile(tree, TEST_FILE, "exec", dont_inherit=True)


def _test_lines(tb) -> tuple:
    """(last, first) line of test code in a traceback: where the failure surfaced in the test, and the
    test's own top-level statement it surfaced under."""
    line = top = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEST_FILE:
            line = tb.tb_lineno
            top = line if top is None else top
        tb = tb.tb_next
    return line, top


def describe_failure(error: BaseException) -> dict:
    """An exception as a verdict: its type's name, its message, the test line it came from."""
    try:
        message = str(error)
    except Exception:
        message = "?"
    line, top = _test_lines(error.__traceback__)
    return {"ename": type(error).__name__[:100], "message": message[:MAX_MESSAGE], "line": line, "top": top}


def serve(send, requests, *, tests: dict, user_ns: dict, modules: dict, snapshot, grading, interleave) -> None:
    """Answer the grader's requests until it closes the channel (runs on the judge's own thread).

    ``tests`` maps a grade id to its source, ``user_ns`` is the notebook's
    namespace, ``modules`` the judge's table of trusted modules by name.
    """
    real_import = builtins.__import__
    start_thread = threading.Thread
    current = {"request": None, "test": None}  # the test running now: failures are reported for it

    def trusted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in modules:
            module = modules[name]
            if fromlist:
                return module
            return modules.get(name.partition(".")[0], module)
        return real_import(name, globals, locals, fromlist, level)

    test_builtins = dict(vars(builtins))
    test_builtins["__import__"] = trusted_import
    namespace: dict = {}        # the tests' namespace, kept from test to test as cells would keep it
    synced: dict = {}           # name -> the value last copied from the user namespace
    owned_by_tests: set = set()  # names a test bound itself: never copied over again
    builtin_names = frozenset(vars(builtins))

    def on_failure(message: str, line, top=None) -> None:
        if current["request"] is not None:
            send({"check": "failed", "request": current["request"], "test": current["test"],
                  "message": str(message)[:MAX_MESSAGE], "line": line, "top": top})

    grading.report_failures_to(on_failure)

    def after_controlled_run() -> None:
        what = snapshot.changed()
        if what:
            send({"integrity": what, "test": current["test"], "where": "after a controlled run"})

    interleave.after_each_run(after_controlled_run)

    def sync_namespace() -> None:
        """The notebook's names into the tests' namespace, but never over what is the tests' own: a
        built-in's name (a cell's ``global len; len = ...`` would otherwise answer the tests' ``len``)
        nor a name a test bound (student code a test calls may rebind the notebook's copy of it)."""
        for name, value in list(namespace.items()):
            if name not in RUNNER_NAMES and synced.get(name, synced) is not value:
                owned_by_tests.add(name)
        for name, value in list(user_ns.items()):
            if name in builtin_names or name in owned_by_tests:
                continue
            if synced.get(name) is not value:
                if isinstance(value, types.ModuleType):
                    value = modules.get(getattr(value, "__name__", ""), value)
                synced[name] = namespace[name] = value
        namespace["__builtins__"] = test_builtins
        namespace["__name__"] = "__main__"
        namespace["display"] = lambda *objects, **options: None  # verdicts, not displays

    def share_imports() -> None:
        """Modules a test imported become the notebook's too, as a test cell's imports always were
        (a solution that uses ``multiprocessing`` a test imported keeps working); nothing else does."""
        for name, value in list(namespace.items()):
            if isinstance(value, types.ModuleType) and name not in user_ns and not name.startswith("__"):
                user_ns[name] = value
                synced[name] = value

    def bounded(fn, timeout: float, name: str):
        """Run ``fn`` in a thread of its own; (finished, value or exception, thread)."""
        outcome = {}
        done = threading.Event()  # set by the worker when fn returns or raises

        def work():
            try:
                outcome["value"] = fn()
            except BaseException as error:  # reported, never raised in the runner
                outcome["error"] = error
            finally:
                done.set()

        # Not a daemon: threads a test's code starts inherit that flag, as they would from the main thread.
        worker = start_thread(target=work, name=name, daemon=False)
        worker.start()
        finished = done.wait(timeout)
        return finished, outcome, worker

    def run_test(request: dict) -> dict:
        grade_id = request.get("test")
        source = tests.get(grade_id)
        if source is None:
            return {"status": "error", "ename": "LookupError", "message": f"no test named {grade_id!r}"}
        try:
            code = compile_test(source)
        except SyntaxError as error:
            return {"status": "failed", "ename": "SyntaxError", "message": str(error), "line": error.lineno,
                    "top": error.lineno}
        sync_namespace()
        before = snapshot.changed()
        if before:
            send({"integrity": before, "test": grade_id, "where": "before the test"})
        current["request"], current["test"] = request.get("id"), grade_id
        try:
            finished, outcome, worker = bounded(lambda: exec(code, namespace), float(request.get("timeout", 20)),
                                                f"judge-test:{grade_id}")
        finally:
            del code
        alive = False
        if not finished:
            _interrupt(worker)
            worker.join(GRACE_S)
            alive = worker.is_alive()
        if not alive:
            # Compared only once the test's thread has ended: a controlled run cut off by the time limit
            # patches threading until it unwinds, and that is the course's own doing, not tampering.
            after = snapshot.changed()
            if after:
                send({"integrity": after, "test": grade_id, "where": "after the test"})
            current["request"] = current["test"] = None
        share_imports()
        if not finished:
            return {"status": "timeout", "alive": alive}
        if "error" in outcome:
            return {"status": "failed", **describe_failure(outcome.pop("error"))}
        return {"status": "passed"}

    def describe(request: dict) -> dict:
        sync_namespace()
        found = {}
        for name in request.get("names", [])[:200]:
            if name not in namespace or name == "__builtins__":
                found[name] = {"kind": "missing"}
                continue
            value = namespace[name]
            if isinstance(value, types.ModuleType):
                found[name] = {"kind": "module", "module": value.__name__}
                continue
            if callable(value):
                found[name] = {"kind": "callable", "class": isinstance(value, type)}
                continue
            finished, outcome, _ = bounded(lambda value=value: wire.encode(value), 5.0, f"judge-describe:{name}")
            if finished and "value" in outcome:
                found[name] = {"kind": "value", "value": outcome["value"]}
            else:
                found[name] = {"kind": "value", "value": {"$o": [type(value).__name__[:100], "?"]}}
        return {"names": found}

    def call(request: dict) -> dict:
        name = request.get("name")
        sync_namespace()
        fn = namespace.get(name)
        if fn is None or not callable(fn):
            return {"raised": wire.encode_exception(NameError(f"name {name!r} is not defined"))}
        try:
            args = wire.decode(request.get("args", []))
            kwargs = wire.decode(request.get("kwargs", {"$d": []}))
        except wire.NotData as error:
            return {"raised": wire.encode_exception(TypeError(str(error)))}

        def invoke():
            return wire.encode(fn(*args, **kwargs))

        finished, outcome, _ = bounded(invoke, float(request.get("timeout", 10)), f"judge-call:{name}")
        if not finished:
            return {"timeout": True}
        if "error" in outcome:
            return {"raised": wire.encode_exception(outcome["error"])}
        return {"value": outcome["value"]}

    def integrity(request: dict) -> dict:
        return {"changed": snapshot.changed()}

    def reachability(request: dict) -> dict:
        finished, outcome, _ = bounded(lambda: walk.run(request, user_ns=user_ns, modules=modules),
                                       float(request.get("seconds", 120)) + 30, "judge-walk")
        if not finished or "error" in outcome:
            return {"status": "error", "message": repr(outcome.get("error", "the walk did not finish"))}
        return outcome["value"]

    handlers = {"test": run_test, "describe": describe, "call": call, "integrity": integrity,
                "walk": reachability}

    def answer(request: dict) -> None:
        handler = handlers.get(request.get("op"))
        started = time.monotonic()
        try:
            reply = handler(request) if handler else {"status": "error", "message": "unknown request"}
        except Exception as error:  # a bug here must not leave the grader waiting
            reply = {"status": "error", "ename": type(error).__name__, "message": str(error)[:MAX_MESSAGE]}
        reply["reply"] = request.get("id")
        reply["seconds"] = round(time.monotonic() - started, 4)
        send(reply)

    for request in requests:
        if request.get("op") == "test":
            answer(request)  # one test at a time, in order
        else:
            start_thread(target=answer, args=(request,), name="judge-request", daemon=True).start()
