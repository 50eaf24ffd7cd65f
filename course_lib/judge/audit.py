"""The audit hook of a judge kernel: what student code does to the interpreter, refused or reported.

Installed by :mod:`course_lib.judge.start` before ipykernel starts, with
``sys.addaudithook`` (Python code cannot remove one). For every event it
watches it sends one signed line on the judge's channel: the event, the
notebook cells on the stack (file names and lines) and a detail. The grader
decides which of those cells are solution cells, so an event raised by a
lesson's own cells or libraries is never held against a student.

Refused as it happens (the hook raises, so the operation does not take
place): an attribute set on, or deleted from, a class of a protected
module (``interleave.Trace``, ``threading.Thread``, ...) by code acting for
a notebook cell — :func:`course_lib.judge.integrity.owner` looks past
library frames, so ``dataclasses.dataclass(SomeTrustedClass)`` called from
a cell is refused too.

Reported (the grader withholds the points): events only code reaching into
the interpreter raises (``sys.settrace``, ``sys._getframe``,
``gc.get_objects``, ``ctypes``, a function's ``__code__`` replaced, ...)
when a cell's code is their *immediate* caller — a library that looks at its
caller's frame (``collections.namedtuple`` does) is not the student's doing;
``sys.path`` or ``sys.meta_path`` changed by a cell; a process started
in a lesson that starts none, with or without a cell on the stack (seccomp,
not this hook, is what stops it). At the start of every cell the protected modules are also
compared with their snapshot.

What it trades off: the hook runs for every audit event in the kernel, so
it returns at once for events it does not watch (a frozenset lookup).
"""

from __future__ import annotations

import os
import sys
import threading

from .integrity import is_cell, owner

__all__ = ["WATCHED", "PROCESS_EVENTS", "install"]

#: Events reported when a notebook cell's own code raised them (only the immediate caller counts).
WATCHED = frozenset({
    "sys.settrace", "sys.setprofile", "sys._current_frames", "sys.addaudithook",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "sys._getframe", "object.__getattr__", "object.__setattr__", "object.__delattr__",
    "exec", "compile", "open", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
    "os.fork", "os.kill", "os.killpg", "signal.pthread_kill", "code.__new__",
})
_PREFIXES = ("ctypes.",)
#: Events that start a process: held against a solution cell anywhere on the stack, in
#: lessons whose exercises start no process.
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.system",
                            "os.spawn", "os.forkpty", "pty.spawn"})
_MAX_FRAMES = 60
_MAX_EVENTS = 50
_COURSE_LIB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _untrusted_change(baseline: dict, trusted: tuple) -> str:
    """What was added to sys.path or sys.meta_path that the runtime did not put there, if anything."""
    added = [p for p in sys.path if p not in baseline["path"]]
    baseline["path"].update(added)
    outside = [p for p in added if not os.path.realpath(p or ".").startswith(trusted)]
    if outside:
        return f"{outside[0]!r} added to sys.path"
    for finder in sys.meta_path:
        if id(finder) not in baseline["meta_path"]:
            baseline["meta_path"].add(id(finder))
            module = getattr(type(finder), "__module__", "") or ""
            if module == "__main__" or not module:
                return "an import finder from the notebook added to sys.meta_path"
    return ""


def _course_hook_active(event: str) -> bool:
    """Is the course's own tracer (``course_lib.interleave``) this thread's trace function?

    CPython removes a trace function that raised (the scheduler aborts a
    stuck run that way) and audits that as ``sys.settrace`` with the traced
    frame — the student's — current; it is not the student's call.
    """
    current = sys.gettrace() if event == "sys.settrace" else sys.getprofile()
    code = getattr(getattr(current, "__func__", current), "__code__", None)
    if code is None:
        return False
    folder = os.path.dirname(os.path.abspath(code.co_filename))
    return folder == _COURSE_LIB or folder.startswith(_COURSE_LIB + os.sep)


def _starter(frame) -> str:
    """Where a process was started from: the first frame outside subprocess/os (file:line)."""
    depth, seen = 0, []
    while frame is not None and depth < _MAX_FRAMES:
        name = frame.f_code.co_filename
        if not name.endswith(("subprocess.py", "os.py")):
            seen.append(f"{os.path.basename(name)}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
        depth += 1
    return " > ".join(reversed(seen[-8:])) or "?"


def install(send, *, processes_allowed: bool, guarded_types: frozenset, snapshot):
    """Install the hook; ``send`` signs and sends one message, ``guarded_types`` are the ids of the
    classes no cell may change, ``snapshot`` is compared at every cell's start. Returns the function
    start-up calls when it is over (a process with no cell on the stack counts from then on)."""
    getframe = sys._getframe
    state = threading.local()  # per thread: inside the hook (the hook's own events are ignored)
    baseline = {"path": set(sys.path), "meta_path": {id(f) for f in sys.meta_path}}
    trusted = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
                    | {sys.prefix, sys.base_prefix, _COURSE_LIB})
    sent = [0]
    started = [False]  # set by the returned function once start-up is over and cells may run

    def report(event: str, cells: list, detail: str = "") -> None:
        if sent[0] >= _MAX_EVENTS:
            return
        sent[0] += 1
        send({"event": event, "cells": cells, "detail": detail[:200]})

    def cells_on_stack(frame, anywhere: bool) -> list:
        found = []
        depth = 0
        while frame is not None and depth < _MAX_FRAMES:
            name = frame.f_code.co_filename
            if is_cell(name):
                found.append([os.path.basename(name), frame.f_lineno])
            elif not anywhere and not found:
                return []  # the event came from library code
            if not anywhere:
                return found
            frame = frame.f_back
            depth += 1
        return found

    def refuse_class_change(event: str, args) -> None:
        target = args[0] if args else None
        if id(target) not in guarded_types or not isinstance(target, type):
            return
        frame = getframe(2)
        if owner(frame) != "cell":
            return
        name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}.{args[1]}"
        report(event, cells_on_stack(frame, True), f"attribute {args[1]} of {name}")
        raise AttributeError(f"{name} belongs to the course: a solution cannot change it")

    def hook(event, args):
        if getattr(state, "busy", False):
            return
        if event in ("object.__setattr__", "object.__delattr__"):
            state.busy = True
            try:
                refuse_class_change(event, args)
            finally:
                state.busy = False
        if event == "exec" and is_cell(getattr(args[0], "co_filename", "") if args else ""):
            # Every cell starts with one: compare the protected modules with their snapshot.
            state.busy = True
            try:
                what = snapshot.changed()
                if what:
                    report("integrity", [], what)
            except Exception:
                pass
            finally:
                state.busy = False
        if not processes_allowed and event in PROCESS_EVENTS:
            state.busy = True
            try:
                cells = cells_on_stack(getframe(1), True)
                if not cells and not started[0]:
                    return  # the judge's own start-up (ipykernel's), before any cell can run
                # No cell on the stack is no excuse: nothing the course runs after start-up starts a
                # process in these lessons, so a thread whose target is library code
                # (socketserver.ForkingTCPServer.handle_request) still started it for a solution.
                report(event, cells, "a process started from a solution" if cells else
                       "a process started on a thread no cell is on, in a lesson whose exercises start none"
                       f" ({_starter(getframe(1))}: {str(args[0] if args else '')[:60]})")
            finally:
                state.busy = False
            return
        if event in WATCHED or event.startswith(_PREFIXES) or event == "import":
            state.busy = True
            try:
                if event == "import":
                    changed = _untrusted_change(baseline, trusted)
                    if changed:
                        report("sys.path or sys.meta_path changed", cells_on_stack(getframe(1), True),
                               f"{changed}, then importing {args[0]}")
                    return
                if event in ("sys.settrace", "sys.setprofile") and _course_hook_active(event):
                    return
                if event in ("object.__setattr__", "object.__delattr__"):
                    target, attr = args[0], args[1]
                    if not (attr.startswith("__") or getattr(target, "__module__", "__main__") != "__main__"):
                        return
                cells = cells_on_stack(getframe(1), False)
                if cells:
                    detail = f"attribute {args[1]}" if event.startswith("object.") and len(args) > 1 else ""
                    report(event, cells, detail)
            except Exception:
                pass  # never break the kernel from the hook
            finally:
                state.busy = False

    sys.addaudithook(hook)

    def opened() -> None:
        started[0] = True

    return opened
