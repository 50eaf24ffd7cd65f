"""An exercise not attempted yet shows in a notebook as one line, not as a traceback.

Run All on a lesson as released runs every stub (``raise NotImplementedError()``)
and every test cell that calls one. Without help each of those prints a
traceback, a wall of red for work the learner simply has not done yet. This
module gives IPython a handler for the three errors an untouched exercise
causes, and turns each into one line saying so:

* ``NotImplementedError`` — a stub ran: the cell itself (a prediction, a
  break-it schedule, a class-level stub), or a function it called;
* ``NameError`` for a name that an answer cell above would define, when that
  cell still raises ``NotImplementedError`` (the prediction's variable, the
  class of a stub that raises in its body);
* a failed check (``AssertionError``, which :class:`course_lib.grading.CheckFailed`
  is) whose message says a stub raised, that names such an unset answer, or
  raised in a cell where a thread hit a stub (the thread's own traceback is
  one line too).

Everything else shows as usual. The error is still an error — the cell
failed, nbgrader counts it so — only its display changes.

What it trades off: it installs an IPython custom exception handler and a
``threading.excepthook``, both process-wide. So it is installed only in a
learner's kernel, when ``course_lib`` is first imported there (never in a
grading kernel: nbgrader's ``NBGRADER_EXECUTION``, or the judge's own start
:mod:`course_lib.judge`), and ``COURSE_PLAIN_TRACEBACKS=1`` turns it off.

    install(shell=None)   set it up in the running IPython (idempotent); False where it does not apply
"""

from __future__ import annotations

import builtins
import keyword
import linecache
import os
import re
import sys
import threading

__all__ = ["MARK", "install", "one_line"]

MARK = "⏳ not attempted yet"
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{2,}\b")
_ANSWER = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b")  # a prediction's or a schedule's variable: FREE_PERMITS


class _State:
    """What the handler has seen in this kernel (one learner's session: no lock needed beyond the GIL)."""

    def __init__(self, shell):
        self.shell = shell
        self.pending: dict[str, str] = {}   # name -> why it is not defined yet
        self.thread_stub = ""               # set by the thread hook during the current cell


_state: _State | None = None


def _grading() -> bool:
    if os.environ.get("NBGRADER_EXECUTION") or os.environ.get("COURSE_PLAIN_TRACEBACKS") == "1":
        return True
    # The judge starts as `python -P -m course_lib.judge ...`: its original command line says so.
    return "course_lib.judge" in getattr(sys, "orig_argv", ())


def install(shell=None) -> bool:
    """Install the handler in ``shell`` (default: the running IPython); False where it does not apply."""
    global _state
    if _grading():
        return False
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    if _state is not None and _state.shell is shell:
        return True
    _state = _State(shell)
    shell.set_custom_exc((NotImplementedError, NameError, AssertionError), _handler)
    shell.events.register("pre_run_cell", _new_cell)
    previous = threading.excepthook

    def thread_hook(args, previous=previous):
        if isinstance(args.exc_value, NotImplementedError) and _state is not None:
            first = not _state.thread_stub
            _state.thread_stub = _where(args.exc_traceback) or (args.thread.name if args.thread else "a thread")
            if first:
                print(f"{MARK} — {_state.thread_stub} (run in thread {args.thread.name if args.thread else '?'}) "
                      "still raises NotImplementedError", file=sys.stderr)
            return
        previous(args)

    threading.excepthook = thread_hook
    return True


def _new_cell(*_args) -> None:
    if _state is not None:
        _state.thread_stub = ""


def _frames(tb):
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _in_cell(frame) -> bool:
    """Code of a notebook cell (not a library): ipykernel names cell files like /tmp/ipykernel_1/2.py."""
    name = frame.f_code.co_filename
    return "ipykernel_" in name or name.startswith("<ipython-input-")


def _top_level(frame) -> bool:
    """A cell's own statements: its module code, or a class body written in it (a class-level stub)."""
    return frame.f_code.co_name == "<module>" or "__qualname__" in frame.f_locals and "__module__" in frame.f_locals


def _where(tb) -> str:
    """The function that raised, as the learner wrote it (``SafeCounter.increment``); "" for a cell's own code."""
    cells = [f for f in _frames(tb) if _in_cell(f)]
    if not cells or _top_level(cells[-1]):
        return ""
    return getattr(cells[-1].f_code, "co_qualname", cells[-1].f_code.co_name)


def _defined(name: str) -> bool:
    return _state is not None and name in _state.shell.user_ns


def _remember_stub_cell(tb) -> None:
    """A cell raised NotImplementedError at its top level: the names it mentions are answers not given yet."""
    cells = [f for f in _frames(tb) if _in_cell(f) and f.f_code.co_name == "<module>"]
    if not cells or _state is None:
        return
    source = "".join(linecache.getlines(cells[-1].f_code.co_filename))
    for word in set(_WORD.findall(source)):
        if not (keyword.iskeyword(word) or hasattr(builtins, word) or _defined(word)):
            _state.pending[word] = "an answer cell above still raises NotImplementedError"


def one_line(value: BaseException, tb) -> str | None:
    """The one line for an error an untouched exercise causes; None for any other error."""
    if _state is None:
        return None
    if isinstance(value, NotImplementedError):
        where = _where(tb)
        if not where:
            _remember_stub_cell(tb)
            return (f"{MARK} — this cell is still the stub: write your answer in place of "
                    "`raise NotImplementedError()`, then run it")
        return (f"{MARK} — {where} still raises NotImplementedError: write it in its solution cell, "
                "run that cell, then this one")
    if isinstance(value, NameError):
        name = getattr(value, "name", None)
        if name and name in _state.pending and not _defined(name):
            return f"{MARK} — {name} comes from an exercise cell above that still raises NotImplementedError"
        return None
    if isinstance(value, AssertionError):
        text = str(value)
        unset = [w for w in _ANSWER.findall(text) if w in _state.pending and not _defined(w)]
        if "NotImplementedError" in text or unset:
            what = unset[0] if unset else "the code this test checks"
            return f"{MARK} — {what} still raises NotImplementedError (the exercise's cell is the stub)"
        if _state.thread_stub:
            return f"{MARK} — {_state.thread_stub} still raises NotImplementedError, so the threads did nothing"
    return None


def _handler(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler: it shows the error itself (IPython only reads what it returns)."""
    line = one_line(value, tb)
    if line is None:  # as IPython shows any other error
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    shell._showtraceback(etype, value, [line])
    return [line]
