"""The trusted start of a grading kernel, in order, before any cell can run.

Run by the grader as ``python -P -m course_lib.judge --channel PATH
[--peer-socket PATH RELAY-PATH] [--no-processes] -f CONNECTION_FILE``:

1. connect to the grader's Unix socket at PATH, say hello, read its
   set-up message: a fresh signing key and every test's source
   (:mod:`course_lib.judge.channel`);
2. start the byte relay, when the lesson's tests ask a peer
   (:mod:`course_lib.judge.relay`), and point :mod:`course_lib.peer` at the grader;
3. import and seal the protected modules, take their snapshot
   (:mod:`course_lib.judge.integrity`);
4. in a lesson whose exercises start no process, load the seccomp filter
   that refuses them (:mod:`course_lib.judge.seccomp`);
5. guard the classes cells will make (:mod:`course_lib.judge.ownership`) and install the
   audit hook (:mod:`course_lib.judge.audit`);
6. start ipykernel, delete its connection file once read (it holds the key
   that signs messages to the kernel), cover the output streams
   (:mod:`course_lib.judge.streams`), give the notebook's namespace the
   ``getattr``/``hasattr`` that check a computed name (:mod:`course_lib.judge.public`),
   and serve the runner (:mod:`course_lib.judge.runner`) on a thread of its own.

``-P`` keeps the working folder off ``sys.path``, so no file shipped beside a
notebook (``course_lib/``, ``ipykernel_launcher.py``) is imported instead of
the real ones.
"""

from __future__ import annotations

import builtins
import os
import platform
import subprocess
import sys
import threading

from . import audit, channel, integrity, ownership, public, runner, seccomp, streams

__all__ = ["main", "USAGE"]

USAGE = ("usage: python -P -m course_lib.judge --channel PATH [--peer-socket PATH RELAY-PATH] "
         "[--no-processes] -f CONNECTION_FILE")


def _take(argv: list[str], flag: str, count: int) -> list[str] | None:
    if flag not in argv:
        return None
    at = argv.index(flag)
    values = argv[at + 1:at + 1 + count]
    if len(values) != count:
        raise SystemExit(USAGE)
    del argv[at:at + 1 + count]
    return values


def _start_relay(relay_socket: str) -> None:
    """The byte relay, started before any cell (so no student code is its parent's caller)."""
    subprocess.Popen([sys.executable, "-P", "-m", "course_lib.judge.relay", relay_socket, str(os.getpid())],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     close_fds=True)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    path = _take(argv, "--channel", 1)
    if path is None:
        raise SystemExit(USAGE)
    processes_allowed = "--no-processes" not in argv
    argv = [a for a in argv if a != "--no-processes"]
    peer_args = _take(argv, "--peer-socket", 2)

    setup, send, requests = channel.open_channel(path[0])
    if peer_args:
        _start_relay(peer_args[1])
    modules = integrity.seal(integrity.protected_names())
    table = {m.__name__: m for m in modules}
    ownership.install()
    if peer_args:
        table["course_lib.peer"].use_grader(peer_args[0])
    # ipykernel swaps input() for each request, and IPython adds exit/quit/get_ipython: theirs to change.
    snapshot = integrity.Snapshot(modules, frozenset(vars(builtins)) - {"input", "exit", "quit", "help",
                                                                          "breakpoint"})
    # platform.uname() runs `uname -p` once and caches it; ipykernel's start-up asks for it. Asked
    # here, before processes are forbidden, no later start-up step starts a process.
    platform.uname()
    if not processes_allowed:
        problem = seccomp.available()
        if problem:
            send({"event": "seccomp", "cells": [], "detail": problem})
        else:
            seccomp.forbid_processes()
    opened = audit.install(send, processes_allowed=processes_allowed,
                  guarded_types=integrity.protected_types(modules), snapshot=snapshot)

    # A judge kernel is never debugged: with debugpy absent, ipykernel's debugger is off and its
    # start-up skips importing debugpy and pydevd (about 0.1 s a kernel; none of their objects is here).
    sys.modules.setdefault("debugpy", None)
    from ipykernel.kernelapp import IPKernelApp

    sys.argv = [sys.argv[0]] + argv
    app = IPKernelApp.instance()
    app.initialize(argv)
    if app.connection_file and os.path.exists(app.connection_file):
        os.unlink(app.connection_file)
    # Cells see streams that lead nowhere; the kernel keeps the real ones it took at its start.
    sys.stdout = streams.cover(sys.stdout, "<stdout>")
    sys.stderr = streams.cover(sys.stderr, "<stderr>")
    tests, user_ns = setup.get("tests", {}), app.shell.user_ns
    # A computed getattr(obj, name) in a cell reads only what a written public obj.name could.
    user_ns["getattr"], user_ns["hasattr"] = public.checked_getattr, public.checked_hasattr

    def serve():
        # The arguments live in this closure, not in the thread's _args/_kwargs, which any code
        # that gets hold of the thread object could read (threading.current_thread() in a test).
        runner.serve(send, requests, tests=tests, user_ns=user_ns, modules=table, snapshot=snapshot,
                     grading=table["course_lib.grading"], interleave=table["course_lib.interleave"])

    serving = threading.Thread(target=serve, name="judge-runner", daemon=True)
    serving.start()
    opened()
    send({"ready": os.getpid(), "seccomp": not processes_allowed and not seccomp.available()})
    app.start()
