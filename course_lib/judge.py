"""The trusted start of a grading kernel: an audit trail student code cannot erase.

Run by the grader as ``python -P -m course_lib.judge --audit-socket PATH -f
CONNECTION_FILE``. Before ipykernel starts and before any cell runs, it
connects to the grader's Unix socket at PATH and installs a PEP 578 audit
hook (``sys.addaudithook``: Python code cannot remove one). The hook reports
over that socket every event that only code reaching into the interpreter
raises — ``sys.settrace``, ``sys.setprofile``, ``sys._getframe``,
``gc.get_objects``, ``ctypes``, a function's ``__code__`` replaced, frame
attributes read, ``sys.path`` or ``sys.meta_path`` changed — together with
the notebook cells on the stack (their file names and lines). The grader,
not this process, decides which of those cells are the student's solution
cells, so an event from the course's own test cells or libraries is never
held against a student.

What it trades off: the hook runs for every audit event in the kernel, so
it returns at once for events it does not watch (a frozenset lookup); a
watched event costs a stack walk and one ``sendall``. It cannot stop an
event, only report it: the verdict is withheld by the grader afterwards.
If the socket is closed under it (student code closing file descriptors),
the grader sees the connection end while the kernel still runs, and that is
reported as tampering too.

At the start of every cell (the ``exec`` event IPython raises for it) the
hook also compares the functions and classes of the modules the tests rely
on (``threading``, ``socket``, ``course_lib.grading``, built-ins, ...) with
a snapshot: a class patched through any alias, even one no audit event
reports, is tampering. The connection file (with the key that signs
messages to the kernel) is deleted once the kernel has read it.

``-P`` keeps the working folder off ``sys.path``, so no file shipped beside
a notebook (``course_lib/``, ``ipykernel_launcher.py``) can be imported in
place of the real ones.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading

__all__ = ["main", "WATCHED"]

#: Events reported when a notebook cell's own code raised them. Only the
#: immediate caller counts: the course's own scheduler calls ``sys.settrace``
#: while a student's method is deeper on the stack, and that is not the student's doing.
WATCHED = frozenset({
    "sys.settrace", "sys.setprofile", "sys._current_frames", "sys.addaudithook",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "sys._getframe", "object.__getattr__", "object.__setattr__", "object.__delattr__",
    "exec", "compile", "open", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
    "os.fork", "os.kill", "os.killpg", "signal.pthread_kill", "code.__new__",
})
_PREFIXES = ("ctypes.",)
_COURSE_LIB = os.path.dirname(os.path.abspath(__file__))
#: Events that start a process: held against a solution cell anywhere on the stack, in
#: lessons whose exercises start no process (the judge is told with --no-processes).
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.system",
                            "os.spawn", "os.forkpty", "pty.spawn"})
#: Modules whose functions and classes the tests rely on: any of them replaced while the
#: notebook runs (checked at the start of every cell) is tampering, whoever's code did it.
PROTECTED = ("builtins", "threading", "socket", "queue", "time", "select", "selectors", "socketserver",
             "ipaddress", "collections", "functools", "itertools", "contextlib", "dataclasses", "json",
             "re", "datetime", "random", "math", "concurrent.futures", "concurrent.futures.thread",
             "course_lib.grading", "course_lib.interleave", "course_lib.servers", "course_lib.chat",
             "course_lib.processes", "course_lib.timeline", "course_lib.background", "course_lib.peer",
             "course_lib.interleave.primitives", "course_lib.interleave.engine", "course_lib.interleave.search",
             "course_lib.interleave.results", "course_lib.chat.protocol", "course_lib.chat.room",
             "course_lib.chat.client", "course_lib.chat.probe", "course_lib.chat.bot", "course_lib.reachable",
             "course_lib.handles", "course_lib.registry", "course_lib.listeners", "course_lib.sockets",
             "course_lib.breakit", "course_lib.selfstudy", "course_lib.selfstudy.exercises",
             "course_lib.selfstudy.progress", "course_lib.selfstudy.hints", "course_lib.loops",
             "course_lib.daytime_styles", "course_lib.loadtest", "course_lib.puzzles")
_MAX_FRAMES = 60
_MAX_EVENTS = 50


def _is_cell(filename: str) -> bool:
    """Is this the file name IPython gives a notebook cell's code?"""
    return (filename.startswith("<ipython-input-")
            or (os.sep + "ipykernel_" in filename and filename.endswith(".py")
                and os.path.basename(filename)[:-3].isdigit()))


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
    return folder == _COURSE_LIB or folder.startswith(_COURSE_LIB + os.sep)  # course_lib/interleave/


def _tracked(value) -> bool:
    """Is this a value whose identity the tests rely on (code, a class, a module), not data?"""
    import types

    return isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
                              types.ModuleType, staticmethod, classmethod, property)) or (
        callable(value) and type(value).__module__ in ("builtins", "functools", "_functools"))


class _Integrity:
    """Identities of the protected modules' functions and classes, and of those classes' methods.

    Taken the first time a module is seen at a cell's start, compared at every later one.
    """

    def __init__(self, builtin_names):
        self.builtin_names = builtin_names  # the built-ins before IPython added its own
        self.seen: dict[str, dict] = {}

    def _shape(self, module) -> dict:
        names = self.builtin_names if module.__name__ == "builtins" else None
        shape = {}
        for name, value in list(vars(module).items()):
            if (names is not None and name not in names) or name.startswith("__") or not _tracked(value):
                continue
            shape[name] = id(value)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    if not attr.startswith("__") or attr in ("__init__", "__call__", "__eq__", "__enter__",
                                                             "__exit__", "__new__", "__hash__"):
                        if _tracked(member):
                            shape[f"{name}.{attr}"] = id(member)
        return shape

    def changed(self) -> str:
        for name in PROTECTED:
            module = sys.modules.get(name)
            if module is None:
                continue
            shape = self._shape(module)
            before = self.seen.setdefault(name, shape)
            if before is shape:
                continue
            for key, ident in before.items():
                if shape.get(key) != ident:
                    self.seen[name] = shape
                    return f"{name}.{key} was replaced or removed"
            for key in shape.keys() - before.keys():
                if "." in key:  # a method added to a protected class
                    self.seen[name] = shape
                    return f"{name}.{key} was added"
        return ""


def _install(channel: socket.socket, processes_allowed: bool) -> None:
    getframe = sys._getframe
    state = threading.local()  # per thread: inside the hook (the hook's own events are ignored)
    baseline = {"path": set(sys.path), "meta_path": {id(f) for f in sys.meta_path}}
    trusted = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
                    | {sys.prefix, sys.base_prefix, os.path.dirname(os.path.abspath(__file__))})
    sent = [0]
    lock = threading.Lock()  # held while one thread writes an event line to the channel

    def report(event: str, cells: list, detail: str = "") -> None:
        if sent[0] >= _MAX_EVENTS:
            return
        sent[0] += 1
        line = json.dumps({"event": event, "cells": cells, "detail": detail[:200]}) + "\n"
        try:
            with lock:
                channel.sendall(line.encode())
        except OSError:
            pass  # the grader sees the channel end and reports it

    def cells_on_stack(frame, anywhere: bool) -> list:
        found = []
        depth = 0
        while frame is not None and depth < _MAX_FRAMES:
            name = frame.f_code.co_filename
            if _is_cell(name):
                found.append([os.path.basename(name), frame.f_lineno])
            elif not anywhere and not found:
                return []  # the event came from library code
            if not anywhere:
                return found
            frame = frame.f_back
            depth += 1
        return found

    import builtins

    # ipykernel swaps input() for each request, and IPython adds exit/quit/get_ipython: theirs to change.
    integrity = _Integrity(frozenset(vars(builtins)) - {"input", "exit", "quit", "help", "breakpoint"})
    for name in PROTECTED:
        if not name.startswith("course_lib."):
            __import__(name)
    integrity.changed()  # the first snapshot, before any cell runs

    def hook(event, args):
        if event == "exec" and not getattr(state, "busy", False) and _is_cell(
                getattr(args[0], "co_filename", "") if args else ""):
            # Every cell starts with one: compare the protected modules with their snapshot.
            state.busy = True
            try:
                what = integrity.changed()
                if what:
                    report("integrity", [], what)
            except Exception:
                pass
            finally:
                state.busy = False
        if not processes_allowed and event in PROCESS_EVENTS and not getattr(state, "busy", False):
            state.busy = True
            try:
                cells = cells_on_stack(getframe(1), True)
                if cells:
                    report(event, cells, "a process started from a solution")
            finally:
                state.busy = False
            return
        if event in WATCHED or event.startswith(_PREFIXES) or event == "import":
            if getattr(state, "busy", False):
                return
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
                    detail = ""
                    if event.startswith("object.") and len(args) > 1:
                        detail = f"attribute {args[1]}"
                    report(event, cells, detail)
            except Exception:
                pass  # never break the kernel from the hook
            finally:
                state.busy = False

    sys.addaudithook(hook)


def _start_relay(peer_socket: str, relay_socket: str) -> None:
    """Start the byte relay (before any cell, so no student code is its parent's caller), and
    point :mod:`course_lib.peer` at the grader, where checks of servers and clients are judged."""
    import subprocess

    from . import peer

    subprocess.Popen([sys.executable, "-P", "-m", "course_lib.relay", relay_socket, str(os.getpid())],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     close_fds=True)
    peer._grader_socket = peer_socket


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--audit-socket" not in argv:
        raise SystemExit("usage: python -P -m course_lib.judge --audit-socket PATH "
                         "[--peer-socket PATH RELAY-PATH] [--no-processes] -f CONNECTION_FILE")
    at = argv.index("--audit-socket")
    path = argv[at + 1]
    del argv[at:at + 2]
    processes_allowed = "--no-processes" not in argv
    argv = [a for a in argv if a != "--no-processes"]
    peer_socket = relay_socket = None
    if "--peer-socket" in argv:
        at = argv.index("--peer-socket")
        peer_socket, relay_socket = argv[at + 1], argv[at + 2]
        del argv[at:at + 3]
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    channel.connect(path)
    channel.sendall((json.dumps({"hello": os.getpid()}) + "\n").encode())
    os.set_inheritable(channel.fileno(), False)
    if peer_socket:
        _start_relay(peer_socket, relay_socket)
    _install(channel, processes_allowed)
    from ipykernel.kernelapp import IPKernelApp

    sys.argv = [sys.argv[0]] + argv
    app = IPKernelApp.instance()
    app.initialize(argv)
    # The connection file holds the key that signs messages to this kernel: read now, it goes,
    # so nothing started in the kernel can read it and drive the kernel from outside.
    if app.connection_file and os.path.exists(app.connection_file):
        os.unlink(app.connection_file)
    app.start()


if __name__ == "__main__":
    main()
