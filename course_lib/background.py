"""``background(fn)``: a student's own *blocking* server function, run in a thread and stoppable.

Split from :mod:`course_lib.servers` (which re-exports these names): that
module is the ``socketserver``-shaped family; this one watches a function it
cannot change. An audit hook (``sys.addaudithook``, installed once, a
dictionary look-up per socket created) notes every socket the function's
thread creates, and a thin wrapper around ``threading``'s thread start adds
the threads it starts to the job. ``stop()`` shuts those sockets down, which
makes a blocked ``accept()``/``recv()`` return with an error on Linux; a
function that swallows that error is interrupted with an asynchronous
``ServerStopped``. While a job runs, ``sys.stdout`` is a router that sends its
threads' prints to the job's log (other threads' output passes through), and
an exception that ends one of its threads goes to the log, not to stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import sys
import threading
import time
import traceback
import weakref

from .handles import Handle, HandlerError, ServerError, ServerLog, StopTimeout
from .registry import start, track, tracked

__all__ = ["BackgroundJob", "ServerStopped", "background", "live_jobs"]



# Maps a thread to the job it belongs to: the job's own thread, and threads
# it (or they) start. Written by the start_new_thread wrapper and the job,
# read by the audit hook; dict operations are atomic under the GIL.
_thread_jobs: "weakref.WeakKeyDictionary[threading.Thread, BackgroundJob]" = weakref.WeakKeyDictionary()
_hook_lock = threading.Lock()  # guards installing the hook and patch once
_hook_installed = False


def _audit_hook(event: str, args) -> None:
    # Called for every audit event in the process: return fast.
    if event != "socket.__new__" or not _thread_jobs:
        return
    job = _thread_jobs.get(threading.current_thread())
    if job is not None:
        job._adopt_socket(args[0])


def _install_hooks() -> None:
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        sys.addaudithook(_audit_hook)
        original = threading._start_new_thread

        def start_new_thread(function, args, *rest):
            # Thread.start() passes its bound _bootstrap: its __self__ is the
            # new Thread. A thread started by a job's thread joins the job.
            parent_job = _thread_jobs.get(threading.current_thread()) if _thread_jobs else None
            child = getattr(function, "__self__", None)
            if parent_job is not None and isinstance(child, threading.Thread):
                _thread_jobs[child] = parent_job
                parent_job._adopt_thread(child)
            return original(function, args, *rest)

        threading._start_new_thread = start_new_thread

        # An exception that ends a thread the function started (a client
        # handler) goes to the job's log, not to stderr under a random cell.
        original_excepthook = threading.excepthook

        def excepthook(hook_args):
            job = _thread_jobs.get(hook_args.thread) if hook_args.thread is not None else None
            if job is None:
                return original_excepthook(hook_args)
            job._thread_failed(hook_args.thread, hook_args.exc_value)

        threading.excepthook = excepthook
        _hook_installed = True


class _ThreadRoutedStdout:
    """Sends writes from a job's threads to the job's log; others pass through.

    Installed as ``sys.stdout`` while at least one job captures output, so a
    student's ``print("Connected to ...")`` shows in ``job.log``, not under
    whichever cell ran last.
    """

    def __init__(self, original):
        self.original = original
        self._partial: dict[int, str] = {}

    def write(self, text: str) -> int:
        job = _thread_jobs.get(threading.current_thread()) if _thread_jobs else None
        if job is None or not job.capture_output:
            return self.original.write(text)
        key = threading.get_ident()
        buffered = self._partial.pop(key, "") + text
        *lines, rest = buffered.split("\n")
        for line in lines:
            job.log.add("output", line)
        if rest:
            self._partial[key] = rest
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self.original.flush()

    def __getattr__(self, name):
        return getattr(self.original, name)


_stdout_lock = threading.Lock()  # guards installing/removing the stdout router
_stdout_users = 0


def _route_stdout(on: bool) -> None:
    global _stdout_users
    with _stdout_lock:
        if on:
            _stdout_users += 1
            if _stdout_users == 1 and not isinstance(sys.stdout, _ThreadRoutedStdout):
                sys.stdout = _ThreadRoutedStdout(sys.stdout)
        else:
            _stdout_users = max(0, _stdout_users - 1)
            if _stdout_users == 0 and isinstance(sys.stdout, _ThreadRoutedStdout):
                sys.stdout = sys.stdout.original


class ServerStopped(BaseException):
    """Raised *inside* a background function's thread by a last-resort stop."""


class BackgroundJob(Handle):
    """A blocking server function running on a background thread.

    Created by :func:`background`. Same handle as :class:`BackgroundServer`
    (``address``, ``running``, ``log``, ``stop()``, ``with``), plus
    ``error`` (what the function raised, if anything) and ``result``.

    How stop works: every socket the function's thread (or a thread it
    started) creates is noted by an audit hook. ``stop()`` calls
    ``shutdown(SHUT_RDWR)`` on each; a thread blocked in ``accept()`` or
    ``recv()`` on one of them then returns with an ``OSError`` (Linux), which
    ends a ``while True: accept()`` loop. An error raised *because of* the
    stop is not reported as the function's fault. If the function catches
    that error and carries on, ``stop()`` raises ``ServerStopped`` inside
    its thread (at its next Python bytecode) and, if that does not end it
    either, reports :class:`StopTimeout`.
    """

    def __init__(self, fn, args=(), kwargs=None, name: str | None = None,
                 capture_output: bool = True):
        self.fn = fn
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.name = name or getattr(fn, "__name__", "background")
        self.capture_output = capture_output
        self.log = ServerLog()
        self.error: BaseException | None = None
        self.result = None
        self.errors: list[BaseException] = []
        # Set by stop() when shutdown begins; read to tell a stop-caused
        # OSError from a real failure.
        self.stop_event = threading.Event()
        # Set by the job thread when fn has returned or raised.
        self.finished = threading.Event()
        self._lock = threading.Lock()  # guards _sockets and _threads
        self._sockets: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
        self._threads: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._routed = False
        for value in (*self.args, *self.kwargs.values()):
            if isinstance(value, socket.socket):  # a listener made in a cell and passed in
                self._sockets.add(value)
        track(self)

    # called by the hooks, in the job's threads
    def _adopt_socket(self, sock) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _adopt_thread(self, thread) -> None:
        with self._lock:
            self._threads.add(thread)

    def start(self) -> "BackgroundJob":
        if self._thread is not None:
            raise ServerError(f"{self.name!r} was already started")
        _install_hooks()
        if self.capture_output:
            _route_stdout(True)
            self._routed = True
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-bg", daemon=True)
        _thread_jobs[self._thread] = self
        self.log.add("start", f"running {self.name}() in the background")
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self.fn(*self.args, **self.kwargs)
            self.log.add("return", f"{self.name}() returned {self.result!r}"[:200])
        except ServerStopped:
            self.log.add("stop", f"{self.name}() interrupted by stop()")
        except OSError as exc:
            if self.stop_event.is_set():
                self.log.add("stop", f"{self.name}() ended by stop() ({type(exc).__name__}: {exc})")
            else:
                self._fail(exc)
        except BaseException as exc:  # the student's error, reported on the handle
            self._fail(exc)
        finally:
            partial = getattr(sys.stdout, "_partial", None)
            if isinstance(partial, dict) and threading.get_ident() in partial:
                self.log.add("output", partial.pop(threading.get_ident()))
            self.finished.set()

    def _thread_failed(self, thread: threading.Thread, exc: BaseException | None) -> None:
        if exc is None or isinstance(exc, ServerStopped):
            return
        if isinstance(exc, OSError) and self.stop_event.is_set():
            self.log.add("stop", f"thread {thread.name} ended by stop() ({type(exc).__name__})")
            return
        self.errors.append(exc)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
        self.log.add("error", f"thread {thread.name} raised {type(exc).__name__}: {exc}\n{tb}")

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.errors.append(exc)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
        self.log.add("error", f"{self.name}() raised {type(exc).__name__}: {exc}\n{tb}")

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive() and not self.stop_event.is_set())

    def listening_addresses(self) -> list[tuple]:
        """Addresses of the listening sockets the function has created."""
        found = []
        with self._lock:
            socks = list(self._sockets)
        for sock in socks:
            try:
                if sock.fileno() >= 0 and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    found.append(sock.getsockname()[:2])
            except OSError:
                pass
        return found

    @property
    def address(self) -> tuple | None:
        """Where the function listens, once it called listen(); else None."""
        found = self.listening_addresses()
        return found[0] if found else None

    def wait_listening(self, timeout: float = 5.0) -> tuple:
        """Block until the function listens; return its address.

        Raises :class:`HandlerError` if the function raised or returned
        first, :class:`TimeoutError` (``StopTimeout``) after ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while True:
            address = self.address
            if address:
                return address
            if self.finished.is_set():
                if self.error is not None:
                    raise HandlerError(
                        f"{self.name}() raised {type(self.error).__name__}: {self.error} "
                        "before it started listening (see .log for the traceback)",
                        [self.error],
                    ) from self.error
                raise HandlerError(f"{self.name}() returned without listening on a socket")
            if time.monotonic() >= deadline:
                raise StopTimeout(
                    f"{self.name}() did not start listening within {timeout:g} s. Does it call "
                    "bind() and listen()?"
                )
            # A bounded poll: socket creation emits an audit event, listen() none.
            self.finished.wait(0.005)

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            live = [t for t in self._threads if t.is_alive()]
        if self._thread and self._thread.is_alive():
            live.insert(0, self._thread)
        return live

    def _shutdown_sockets(self) -> None:
        with self._lock:
            socks = list(self._sockets)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self, timeout: float = 5.0, reraise: bool = False) -> None:
        """Stop the function and every thread it started, within ``timeout`` s.

        With ``reraise=True`` the function's own exception (not one caused by
        the stop) is raised as :class:`HandlerError`.
        """
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
        deadline = time.monotonic() + timeout
        first = not self._stopped
        self._stopped = True
        self.stop_event.set()
        me = threading.current_thread()
        listening = self.listening_addresses()  # before shutdown() clears SO_ACCEPTCONN
        # Three rounds, each up to a third of the time:
        # 1. shutdown() every socket: on Linux a blocked accept()/recv() returns
        #    with OSError and a plain `while True: accept()` loop ends.
        # 2. for a function that swallowed that error and carries on (or a
        #    system where shutdown() does not wake accept()): ask CPython to
        #    raise ServerStopped in its threads at their next bytecode, and
        #    connect to its listeners once, so a blocked accept() returns and
        #    reaches that bytecode.
        # 3. shutdown() again (sockets opened meanwhile) and wait the rest.
        for attempt in range(3):
            self._shutdown_sockets()
            if attempt == 1:
                for thread in self.threads():
                    if thread is not me:
                        _raise_in_thread(thread, ServerStopped)
                for address in listening:
                    with contextlib.suppress(OSError):
                        socket.create_connection(address, timeout=0.2).close()
            step = max(0.0, min(deadline, time.monotonic() + timeout / 3) - time.monotonic())
            end = time.monotonic() + step
            self._join_threads(self.threads(), end)
            if not self._threads_left():
                break
        stuck = self._threads_left()
        if not stuck:
            with self._lock:
                socks = list(self._sockets)
            for sock in socks:  # no thread uses them any more
                with contextlib.suppress(OSError):
                    sock.close()
        if self._routed and not stuck:
            self._routed = False
            _route_stdout(False)
        if first:
            self.log.add("stop", "stopped" if not stuck else f"{len(stuck)} thread(s) did not stop")
        if stuck:
            raise StopTimeout(
                f"{self.name}(): {len(stuck)} thread(s) still running {timeout:g} s after stop(): "
                f"{', '.join(t.name for t in stuck)}. A loop that catches every exception, or "
                "never touches a socket, cannot be stopped from outside."
            )
        if reraise and self.error is not None:
            raise HandlerError(
                f"{self.name}() raised {type(self.error).__name__}: {self.error}", [self.error]
            ) from self.error

    def _has_started(self) -> bool:
        return self._thread is not None

    def _ended(self) -> str:
        return "failed" if self.error is not None else "stopped"

    def _listens_on(self, port: int) -> bool:
        return any(address[1] == port for address in self.listening_addresses())

    def _described(self) -> str:
        return f"the background function {self.name!r}"

    @property
    def clients_served(self) -> int | None:
        return None  # unknown: the function does its own accepting

    def _repr_extra(self) -> str:
        return f", raised {type(self.error).__name__}: {self.error}" if self.error else ""


def _raise_in_thread(thread: threading.Thread, exc_type) -> None:
    """Ask CPython to raise ``exc_type`` in ``thread`` at its next bytecode."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type))


def background(fn, *args, name: str | None = None, capture_output: bool = True,
               listen_timeout: float | None = 5.0, **kwargs) -> BackgroundJob:
    """Run ``fn(*args, **kwargs)`` — a blocking server function — in the background.

    Registered under ``name`` (default: the function's name), so running the
    cell again stops the previous run first. Waits (at most
    ``listen_timeout`` seconds) until the function listens, and raises
    :class:`HandlerError` with its exception if it failed first;
    ``listen_timeout=None`` returns at once. Its prints go to ``job.log``
    (``capture_output=False`` lets them through). Every other keyword
    argument is passed to ``fn``.
    """
    job = BackgroundJob(fn, args, kwargs, name=name, capture_output=capture_output)
    start(job)
    if listen_timeout is not None:
        try:
            job.wait_listening(timeout=listen_timeout)
        except ServerError:
            if job.finished.is_set():
                with contextlib.suppress(ServerError):
                    job.stop(timeout=1.0)
            raise
    return job


def live_jobs() -> list:
    """Every BackgroundJob of this kernel not yet garbage-collected (for the registry)."""
    return [h for h in tracked() if isinstance(h, BackgroundJob)]

