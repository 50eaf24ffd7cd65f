"""The referee: who decides each test's verdict, and where.

A test cell is never run as an IPython cell of the judge kernel. For each
one the grader either

* asks the kernel's trusted runner to run it (:mod:`course_lib.judge.runner`:
  the source went to the kernel before any cell ran; the request names the
  test) and reads the verdict off the signed channel, together with every
  ``CheckFailed`` made while it ran — a failure caught by other code still
  fails the test; or
* for a test tagged ``referee`` (it needs only data: pure functions,
  predictions, break-it schedules), runs it *here*, in the grader's
  process: the student's functions are called through the channel with
  data arguments and their results come back as data
  (:mod:`course_lib.judge.wire`), so the test's code, its expected values and
  the comparison never enter the kernel, and an object whose ``__eq__`` lies
  arrives as an opaque value that equals nothing.

Either way the verdict is one :class:`Verdict`, turned into the cell's
outputs by :func:`outputs` (nbgrader then scores the cell by them). A
failure on a line between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN
TESTS`` is *hidden*: the student's feedback gives its public summary — the
block's ``# feedback:`` comment if the author wrote one, else "a hidden
check of this test failed" and the test's question — never its message,
which may quote the hidden input or the expected value; the full message
stays in the graded notebook, ``results/`` and ``report.html``.

Requests (JSON, answered with ``{"reply": id, ...}``): ``test`` (name,
timeout) -> ``status`` passed / failed / timeout with ``ename``, ``message``,
``line``; ``describe`` (names) -> what each is; ``call`` (name, args, kwargs
as data, timeout) -> ``value`` / ``raised`` / ``timeout``; ``integrity``.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import threading
import time
from dataclasses import dataclass, field

from nbformat.v4 import new_output

from course_lib.judge import wire
from course_lib.judge.runner import compile_test, describe_failure

from .audit import ChannelClosed

__all__ = ["REFEREE_TAG", "TestPlan", "Verdict", "plan_tests", "judge_in_kernel", "judge_here", "outputs",
           "HIDDEN_FAILURE", "AFTER_HIDDEN", "verdict_metadata", "after_hidden_summary", "shown_ename",
           "RemoteFunction"]

REFEREE_TAG = "referee"
BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
HIDDEN_FAILURE = "a hidden check of this test failed"
#: Why a failure after hidden checks ran shows no message: student code may have kept what they gave it.
AFTER_HIDDEN = ("its message is not shown: hidden checks had run before it, and a message your code writes "
                "could carry what they gave it; `course check` shows it")
#: Modules a referee test may import here, in the grader's process (what the lessons' tests use).
HERE_MODULES = ("course_lib", "math", "ipaddress", "itertools", "collections", "re", "string", "random",
                "socket", "threading", "time")


@dataclass(frozen=True)
class TestPlan:
    """One test cell, read once: its source, where its hidden checks are, what its feedback may say."""

    grade_id: str
    source: str
    here: bool                               # judged in the grader's process (tag "referee")
    hidden: tuple = ()                       # (first line, last line, public summary) per hidden block
    question: str = ""                       # the test's docstring: what it checks, in the student's words
    statements: tuple = ()                   # (first line, last line) of each top-level statement

    def hidden_block(self, line: int | None):
        """The hidden block ``line`` is in: (first, last, summary), or None for a visible line.
        An unknown line in a test that has hidden checks counts as hidden."""
        if line is None:
            return self.hidden[0] if self.hidden else None
        return next((block for block in self.hidden if block[0] <= line <= block[1]), None)

    def hidden_may_have_run(self, top: int | None) -> bool:
        """Could a hidden block of this test have run before a failure under the top-level statement
        at line ``top``? Only a statement that ends before the first block proves it did not."""
        if not self.hidden:
            return False
        statement = next((s for s in self.statements if top is not None and s[0] <= top <= s[1]), None)
        return statement is None or statement[1] >= self.hidden[0][0]


@dataclass(frozen=True)
class Verdict:
    """What one test came to, decided by the grader."""

    grade_id: str
    status: str                  # passed, failed, not attempted, interrupted, timeout (its kernel replaced), kernel_died
    ename: str = ""
    message: str = ""            # the full message (instructor)
    public: str = ""             # what the student's feedback says ("" = the full message)
    hidden: bool = False
    line: int | None = None
    seconds: float = 0.0
    notes: tuple = field(default=())
    top: int | None = None       # the test's top-level statement the failure came under

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _question(source: str) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    text = ast.get_docstring(tree) or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def _hidden_blocks(source: str) -> tuple:
    blocks, start, summary = [], None, ""
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if BEGIN in text:
            start, summary = number, ""
        elif END in text and start is not None:
            blocks.append((start, number, summary))
            start = None
        elif start is not None and not summary and text.startswith("# feedback:"):
            summary = text[len("# feedback:"):].strip()
    if start is not None:
        blocks.append((start, 10 ** 9, summary))
    return tuple(blocks)


def _statements(source: str) -> tuple:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    return tuple((node.lineno, node.end_lineno or node.lineno) for node in tree.body)


def plan_tests(nb) -> dict[str, TestPlan]:
    """Every graded test cell of ``nb``, by grade id."""
    plans = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            source = cell.source
            plans[meta["grade_id"]] = TestPlan(
                grade_id=meta["grade_id"], source=source,
                here=REFEREE_TAG in (cell.metadata.get("tags") or []),
                hidden=_hidden_blocks(source), question=_question(source), statements=_statements(source))
    return plans


def _public(plan: TestPlan, line: int | None, message: str) -> tuple[bool, str]:
    block = plan.hidden_block(line)
    if block is None:
        return False, ""
    summary = block[2] or HIDDEN_FAILURE
    if plan.question and not block[2]:
        summary += f" — {plan.question}"
    return True, summary


def _verdict(plan: TestPlan, status: str, ename: str, message: str, line, seconds: float, top=None) -> Verdict:
    if status == "failed" and ename == "NotImplementedError":
        status = "not attempted"
    hidden, public = _public(plan, line, message) if status == "failed" else (False, "")
    return Verdict(plan.grade_id, status, ename, message, public, hidden, line, round(seconds, 3), top=top)


# ------------------------------------------------------------------------ in the kernel


def judge_in_kernel(channel, plan: TestPlan, timeout: float) -> Verdict:
    """Have the kernel's runner run ``plan``; the verdict, from its reply and the failures it reported."""
    started = time.monotonic()
    try:
        reply = channel.request({"op": "test", "test": plan.grade_id, "timeout": timeout}, timeout=timeout + 10)
    except TimeoutError:
        return Verdict(plan.grade_id, "timeout", "timeout",
                       f"this test did not finish within {timeout:g} s", seconds=time.monotonic() - started)
    except ChannelClosed:
        return Verdict(plan.grade_id, "kernel_died", "kernel_died",
                       "the kernel died while running this test (os._exit, exit(), a crash or too much memory)",
                       seconds=time.monotonic() - started)
    seconds = time.monotonic() - started
    status = reply.get("status")
    if status == "timeout":
        return Verdict(plan.grade_id, "timeout" if reply.get("alive") else "interrupted", "timeout",
                       f"this test did not finish within {timeout:g} s and was interrupted. Look for a loop that "
                       "never ends, a join() or get() without a timeout, or a recv() that waits for data that "
                       "never comes.", seconds=seconds)
    checks = channel.checks_for(reply.get("reply"))
    if status == "passed" and checks:
        first = checks[0]
        return _verdict(plan, "failed", "CheckFailed", str(first.get("message", "")), first.get("line"), seconds,
                        first.get("top"))
    if status == "passed":
        return Verdict(plan.grade_id, "passed", seconds=round(seconds, 3))
    if status == "failed":
        ename, line, top = str(reply.get("ename", "Error")), reply.get("line"), reply.get("top")
        message = str(reply.get("message", ""))
        if checks and ename != "CheckFailed":  # a check failed first; what was raised after it is secondary
            first = checks[0]
            ename, message, line, top = "CheckFailed", str(first.get("message", "")), first.get("line"), first.get("top")
        return _verdict(plan, "failed", ename, message, line, seconds, top)
    return Verdict(plan.grade_id, "failed", "GradingError",
                   f"the judge could not run this test: {reply.get('message', '')}", seconds=seconds)


# ------------------------------------------------------------------------ here, with data


class RemoteFunction:
    """A student's function in the kernel, called with data; what it returns or raises comes back as data."""

    def __init__(self, channel, name: str, deadline: float):
        self._channel, self._deadline = channel, deadline
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        try:
            payload = {"args": wire.encode(list(args), strict=True),
                       "kwargs": wire.encode(dict(kwargs), strict=True)}
        except wire.NotData as error:
            raise TypeError(f"a test judged by the grader passed {self.__name__} something that is not data: "
                            f"{error}") from None
        left = max(0.5, self._deadline - time.monotonic())
        reply = self._channel.request({"op": "call", "name": self.__name__, "timeout": left, **payload},
                                      timeout=left + 5)
        if reply.get("timeout"):
            raise TimeoutError(f"{self.__name__}() did not return within {left:.0f} s")
        if "raised" in reply:
            wire.raise_decoded(reply["raised"])
        return wire.decode(reply.get("value"))

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"


def _free_names(tree: ast.AST) -> set[str]:
    """Names a test reads that it does not bind itself (anywhere) and that are not built-ins."""
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return {n for n in loaded - bound if not hasattr(builtins, n)}


def _safe_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or not name.split(".")[0] in {m.split(".")[0] for m in HERE_MODULES}:
        raise ImportError(f"a test judged by the grader cannot import {name}")
    return importlib.__import__(name, globals, locals, fromlist, level)


def judge_here(channel, plan: TestPlan, timeout: float, namespace: dict) -> Verdict:
    """Run ``plan`` in this process against the kernel's names (see the module docstring).

    ``namespace`` is kept from test to test (as the kernel keeps its own).
    """
    started = time.monotonic()
    deadline = started + timeout
    try:
        tree = ast.parse(plan.source)
        code = compile_test(plan.source)
    except SyntaxError as error:
        return _verdict(plan, "failed", "SyntaxError", str(error), error.lineno, 0.0, error.lineno)
    wanted = sorted(n for n in _free_names(tree) if n not in namespace)
    try:
        if wanted:
            described = channel.request({"op": "describe", "names": wanted}, timeout=timeout).get("names", {})
        else:
            described = {}
    except (TimeoutError, ChannelClosed) as error:
        return Verdict(plan.grade_id, "kernel_died" if isinstance(error, ChannelClosed) else "timeout",
                       type(error).__name__, f"the kernel did not answer: {error}")
    for name, what in described.items():
        kind = what.get("kind")
        if kind == "callable":
            namespace[name] = RemoteFunction(channel, name, deadline)
        elif kind == "module":
            try:
                namespace[name] = _safe_import(what.get("module", ""), fromlist=("x",))
            except ImportError:
                pass
        elif kind == "value":
            try:
                namespace[name] = wire.decode(what.get("value"))
            except wire.NotData:
                pass
    for value in namespace.values():  # a later test's calls get this test's deadline
        if isinstance(value, RemoteFunction):
            value._deadline = deadline
    test_builtins = dict(vars(builtins))
    test_builtins["__import__"] = _safe_import
    namespace["__builtins__"] = test_builtins
    namespace["display"] = lambda *objects, **options: None
    outcome: dict = {}
    done = threading.Event()  # set by the test's thread when the test returns or raises

    def run():
        try:
            exec(code, namespace)
        except BaseException as error:  # the verdict
            outcome["error"] = error
        finally:
            done.set()

    worker = threading.Thread(target=run, name=f"referee:{plan.grade_id}", daemon=True)
    worker.start()
    if not done.wait(timeout):
        return Verdict(plan.grade_id, "timeout", "timeout",
                       f"this test did not finish within {timeout:g} s", seconds=time.monotonic() - started)
    seconds = time.monotonic() - started
    error = outcome.get("error")
    if error is None:
        return Verdict(plan.grade_id, "passed", seconds=round(seconds, 3))
    failure = describe_failure(error)
    return _verdict(plan, "failed", failure["ename"], failure["message"], failure["line"], seconds, failure["top"])


# ------------------------------------------------------------------------ the cell's outputs


def outputs(verdict: Verdict, public: str = "") -> list:
    """The outputs nbgrader scores: nothing but a line when passed, one error output otherwise.
    ``public``: what the student's feedback says instead of the message ("" = the message)."""
    if verdict.passed:
        return []
    where = f" (test line {verdict.line})" if verdict.line else ""
    head = f"{verdict.ename}: {verdict.message}"
    trace = [head + where]
    if public:
        trace.append(f"In the student's feedback: {public}")
    return [new_output("error", ename=verdict.ename or "Error", evalue=verdict.message, traceback=trace)]


def shown_ename(ename: str) -> str:
    """An exception's name as feedback may show it once hidden checks have run: a check's; any other is
    shown as ``Error`` — a solution picks which class it raises (a built-in one too: about 60 to choose
    from, some 6 bits a failing test), so the name is text it chose."""
    return ename if ename in ("CheckFailed", "GraderCheckFailed") else "Error"


def after_hidden_summary(plan: TestPlan | None, verdict: Verdict | None) -> str:
    """What the student's feedback says of a failure that came after hidden checks had run: where it
    failed (a visible line of the test, which the student has) and why its message is not shown."""
    line = verdict.line if verdict is not None else None
    lines = plan.source.splitlines() if plan is not None else []
    visible = plan is not None and line is not None and 0 < line <= len(lines) and plan.hidden_block(line) is None
    where = f"failed at test line {line}: {lines[line - 1].strip()[:200]}" if visible else "failed"
    return f"{where} ({AFTER_HIDDEN})"


def verdict_metadata(verdict: Verdict, plan: TestPlan | None = None, *, after_hidden: bool = False) -> dict:
    """What the feedback needs beyond the outputs: is the failure hidden, did hidden checks run before it
    (``after_hidden``), and what may the feedback say."""
    meta = {"status": verdict.status, "hidden": verdict.hidden, "public": verdict.public, "line": verdict.line,
            "seconds": verdict.seconds, "after_hidden": after_hidden}
    if after_hidden and not verdict.hidden and not verdict.passed:
        meta["public"] = after_hidden_summary(plan, verdict)
    return meta
