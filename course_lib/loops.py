"""asyncio servers and coroutines that run *inside* the notebook's kernel, each on its own loop.

A Jupyter kernel's own thread already runs an asyncio event loop (that is how
top-level ``await`` works in a cell), so ``asyncio.run()`` in a cell fails
with "cannot be called from a running event loop", and a server started with
``await asyncio.start_server(...)`` in a cell would only run while a cell
awaits. This module gives each server or coroutine a *fresh* loop in a daemon
thread of its own::

    AsyncioServer(handle_client)   asyncio.start_server on its own loop; the
                                   same handle as servers.BackgroundServer
                                   (start() -> self, address, stop(), with,
                                   log, the ServerPanel, servers.stop_all())
    run_in_loop(coro_fn, *args)    run one coroutine on its own loop; a
                                   LoopJob with result(timeout) and stop()

What it trades off:

* One thread per *loop*, not per client: all the clients of one server share
  its loop's thread, so a handler that blocks (``time.sleep``, a blocking
  ``recv``) stalls every client of that server. ``stop()`` then cannot
  interrupt it either: it reports :class:`~course_lib.handles.StopTimeout`.
* ``stop()`` talks to the loop with ``call_soon_threadsafe`` (the only
  thread-safe way into a loop): it closes the listener, cancels every client
  task, aborts their transports, waits for the tasks, and joins the thread.
* Handlers never print tracebacks into a cell: an exception in a handler (or
  one asyncio would report as "Task exception was never retrieved") goes to
  the handle's :attr:`log` and :attr:`errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import traceback

from .handles import Handle, HandlerError, ServerError, ServerLog, StopTimeout, format_address, remaining
from .listeners import bind_listener
from .registry import start as _register, track

__all__ = ["AsyncioServer", "LoopJob", "run_in_loop"]

_numbers = iter(range(1, 1 << 62))


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


class _LoopThread(Handle):
    """What a server and a job share: a fresh event loop in a daemon thread, and a log."""

    def __init__(self, name: str):
        self.name = name
        self.log = ServerLog()
        self.errors: list[BaseException] = []
        # Set by stop() (any thread) when shutdown begins.
        self.stop_event = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._stop_lock = threading.Lock()  # serialises concurrent stop() calls
        track(self)

    def _has_started(self) -> bool:
        return self._thread is not None

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive() and not self.stop_event.is_set())

    def threads(self) -> list[threading.Thread]:
        """The loop's thread, while it is alive (the only thread this handle uses)."""
        return [self._thread] if self._thread and self._thread.is_alive() else []

    def _record_error(self, exc: BaseException, where: str) -> None:
        self.errors.append(exc)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
        self.log.add("error", f"{where} raised {_describe(exc)}\n{tb}".rstrip())

    def _exception_handler(self, loop, context: dict) -> None:
        """asyncio's own reports ("Task exception was never retrieved", ...) go to the log."""
        exc = context.get("exception")
        if exc is not None:
            self._record_error(exc, context.get("message", "a task"))
        else:
            self.log.add("error", str(context.get("message", context)))

    def _start_thread(self, target, suffix: str) -> None:
        self._thread = threading.Thread(target=target, name=f"{self.name}-{suffix}", daemon=True)
        self._thread.start()

    def _call_in_loop(self, fn) -> bool:
        """Ask the loop (from any thread) to run ``fn`` soon; False if the loop is gone."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:  # closed in between
            return False
        return True

    def _join(self, deadline: float, what: str, timeout: float) -> None:
        self._join_threads(self.threads(), deadline)
        stuck = self._threads_left()
        if stuck:
            raise StopTimeout(
                f"{what} {self.name!r}: its loop thread is still running {timeout:g} s after stop(). "
                "A coroutine that blocks (time.sleep, a blocking socket call, a long computation) "
                "or that catches CancelledError and carries on cannot be stopped from outside."
            )


class AsyncioServer(_LoopThread):
    """A TCP server on ``asyncio.start_server``, its event loop in a daemon thread.

    ``handle_client`` is ``async def handle_client(reader, writer)`` (asyncio
    streams), called once per connection in its own task; the server closes
    ``writer`` when it returns.

    Methods for the caller:
        start()                bind, listen, start the loop; returns self once
                               listening (a bind error is raised here, clearly)
        stop(timeout, reraise) close the listener, cancel every client task,
                               stop the loop, join its thread (StopTimeout if
                               it cannot within ``timeout`` s)
        with server: ...       start on entry (if needed), stop on exit
        address, running, clients_served, log, errors, threads()

    Register it to have the ServerPanel list it and re-running a cell replace
    it: ``servers.start(AsyncioServer(handle), name="chat")``.
    """

    #: log an "accept" and a "served" event per client (errors are always logged)
    log_clients: bool = True

    def __init__(self, handle_client, host: str = "127.0.0.1", port: int = 0, name: str | None = None,
                 *, backlog: int = 1024):
        super().__init__(name or f"{type(self).__name__.lower()}-{next(_numbers)}")
        self.handle_client = handle_client
        self.host = host
        self.requested_port = port
        self.backlog = backlog
        self.clients_served = 0
        self.clients_accepted = 0
        self._address: tuple | None = None
        # Touched only in the loop's thread:
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._stop_requested: asyncio.Event | None = None
        # Set by the loop thread once listening (or once it failed to).
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    @property
    def address(self) -> tuple | None:
        """``(host, port)`` the server listens on (the real port); None before start."""
        return self._address

    def start(self) -> "AsyncioServer":
        """Bind, listen and serve on a fresh loop in a daemon thread; returns ``self``.

        Raises :class:`~course_lib.handles.PortInUseError` or
        :class:`~course_lib.handles.PortPermissionError` (from the caller's
        thread, before any thread starts) if the port cannot be had.
        """
        if self._thread is not None:
            raise ServerError(f"server {self.name!r} was already started; create a new one")
        listener = bind_listener(self.host, self.requested_port, self.backlog)
        listener.setblocking(False)
        self._address = tuple(listener.getsockname()[:2])
        self._start_thread(lambda: self._run(listener), "loop")
        if not self._ready.wait(5.0) or self._start_error is not None:
            with contextlib.suppress(ServerError):
                self.stop(timeout=1.0)
            with contextlib.suppress(OSError):
                listener.close()
            error = self._start_error or StopTimeout("the event loop did not start within 5 s")
            raise ServerError(f"server {self.name!r} could not start: {_describe(error)}") from error
        self.log.add("start", f"listening on {format_address(self._address)}")
        return self

    def _run(self, listener: socket.socket) -> None:
        try:
            with asyncio.Runner() as runner:
                self._loop = runner.get_loop()
                self._loop.set_exception_handler(self._exception_handler)
                runner.run(self._main(listener))
        except BaseException as exc:  # the loop itself failed
            self._start_error = self._start_error or exc
            self._record_error(exc, "the event loop")
        finally:
            self._ready.set()

    async def _main(self, listener: socket.socket) -> None:
        self._stop_requested = asyncio.Event()
        try:
            self._server = await asyncio.start_server(self._on_connect, sock=listener, backlog=self.backlog)
        except BaseException as exc:
            self._start_error = exc
            raise
        finally:
            self._ready.set()
        if self.stop_event.is_set():  # stop() came before the loop was ready
            self._stop_requested.set()
        await self._stop_requested.wait()
        # Shut down: no new clients, cancel the ones being served, wait for them.
        # First stop accepting and let connections accepted a moment ago get their transport:
        # closing the server while one is being set up leaks its socket (CPython 3.11).
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, AttributeError, ValueError):
            loop.remove_reader(listener.fileno())
        for _ in range(3):
            await asyncio.sleep(0)
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._writers):
            writer.transport.abort()  # a client that never reads cannot hold its socket
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        for _ in range(3):  # let connections accepted just before close() reach _on_connect (and abort)
            await asyncio.sleep(0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Called by asyncio (in the loop) as each connection is made: note it, start its task.

        A plain function, not a coroutine, so the writer is known at once: a task cancelled
        before its first step never runs its ``finally``, and its socket would stay open.
        """
        if self.stop_event.is_set():
            writer.transport.abort()
            return
        self._writers.add(writer)
        task = asyncio.get_running_loop().create_task(self._serve_client(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients_accepted += 1
        number = self.clients_accepted
        if self.log_clients:
            peer = writer.get_extra_info("peername")
            self.log.add("accept", f"client {number} from {format_address(peer) if peer else '?'}")
        try:
            await self.handle_client(reader, writer)
        except asyncio.CancelledError:
            self.log.add("closed", f"client {number} cancelled by stop()")
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
            self.log.add("gone", f"client {number} disconnected ({type(exc).__name__})")
        except Exception as exc:
            self._record_error(exc, f"handler for client {number}")
        else:
            self.clients_served += 1
            if self.log_clients:
                self.log.add("served", f"client {number} done")
        finally:
            self._writers.discard(writer)
            writer.close()

    def stop(self, timeout: float = 5.0, reraise: bool = False) -> None:
        """Stop serving and join the loop's thread, within ``timeout`` seconds.

        Raises :class:`StopTimeout` if the loop's thread does not end in time
        (a handler that blocks the loop). With ``reraise=True`` a handler's
        exception is raised afterwards as :class:`HandlerError`. Calling it
        again is harmless.
        """
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
        deadline = time.monotonic() + timeout
        with self._stop_lock:
            first = not self._stopped
            self._stopped = True
            self.stop_event.set()
            if self._stop_requested is not None:
                self._call_in_loop(self._stop_requested.set)
            self._join(deadline, "server", timeout)
            if first and self._thread is not None:
                self.log.add("stop", f"stopped after serving {self.clients_served} client(s)")
        if reraise and self.errors:
            first_error = self.errors[0]
            raise HandlerError(
                f"server {self.name!r}: {len(self.errors)} error(s) in handlers; first: "
                f"{_describe(first_error)}", self.errors,
            ) from first_error

    def _repr_extra(self) -> str:
        return f", {self.clients_served} served"


class LoopJob(_LoopThread):
    """One coroutine running on a fresh event loop in a daemon thread (see :func:`run_in_loop`).

    Methods for the caller:
        result(timeout)   wait for the coroutine; return its value or raise
                          its exception (TimeoutError if it is still running)
        stop(timeout)     cancel it and join the thread (StopTimeout if it
                          does not end within ``timeout`` s)
        done, running, log, errors, threads(), with job: ...
    """

    def __init__(self, coro_fn, args=(), name: str | None = None):
        super().__init__(name or getattr(coro_fn, "__name__", "coroutine"))
        self.coro_fn = coro_fn
        self.args = tuple(args)
        self._task: asyncio.Task | None = None
        self._value = None
        self._error: BaseException | None = None
        self._cancelled = False
        # Set by the loop thread when the coroutine has returned, raised or been cancelled.
        self._finished = threading.Event()
        # Set by the loop thread once the task exists (so stop() can cancel it).
        self._task_ready = threading.Event()

    address = None  # a job listens nowhere the handle knows of
    clients_served = None

    @property
    def done(self) -> bool:
        """True once the coroutine has returned, raised or been cancelled."""
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive() and not self._finished.is_set()
                    and not self.stop_event.is_set())

    def start(self) -> "LoopJob":
        if self._thread is not None:
            raise ServerError(f"{self.name!r} was already started")
        self.log.add("start", f"running {self.name}() on its own event loop")
        self._start_thread(self._run, "loop")
        return self

    def _run(self) -> None:
        try:
            with asyncio.Runner() as runner:
                self._loop = runner.get_loop()
                self._loop.set_exception_handler(self._exception_handler)
                runner.run(self._main())
        except BaseException as exc:  # the loop itself failed
            if self._error is None and not self._cancelled:
                self._error = exc
                self._record_error(exc, "the event loop")
        finally:
            self._task_ready.set()
            self._finished.set()

    async def _main(self) -> None:
        try:
            self._task = asyncio.ensure_future(self.coro_fn(*self.args))
        except BaseException as exc:  # coro_fn is not a coroutine function, or raised at once
            self._error = exc
            self._record_error(exc, f"{self.name}()")
            return
        finally:
            self._task_ready.set()
        if self.stop_event.is_set():
            self._task.cancel()
        try:
            self._value = await self._task
            self.log.add("return", f"{self.name}() returned {self._value!r}"[:200])
        except asyncio.CancelledError:
            self._cancelled = True
            self.log.add("stop", f"{self.name}() cancelled")
        except BaseException as exc:
            self._error = exc
            self._record_error(exc, f"{self.name}()")
        finally:
            self._finished.set()

    def result(self, timeout: float | None = 10.0):
        """The coroutine's return value; raises its exception, or ``asyncio.CancelledError``
        if it was stopped, or :class:`TimeoutError` if it is still running after ``timeout`` s."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"{self.name}() still running after {timeout:g} s")
        if self._error is not None:
            raise self._error
        if self._cancelled:
            raise asyncio.CancelledError(f"{self.name}() was stopped")
        return self._value

    def stop(self, timeout: float = 5.0, reraise: bool = False) -> None:
        """Cancel the coroutine (if it still runs) and join the loop's thread within ``timeout`` s."""
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
        deadline = time.monotonic() + timeout
        with self._stop_lock:
            self.stop_event.set()
            if self._thread is not None:
                self._task_ready.wait(remaining(deadline))
                task = self._task
                if task is not None:
                    self._call_in_loop(task.cancel)
                self._join(deadline, "coroutine", timeout)
            self._stopped = True
        if reraise and self._error is not None:
            raise HandlerError(f"{self.name}() raised {_describe(self._error)}", [self._error]) from self._error

    def _ended(self) -> str:
        return "failed" if self._error is not None else ("cancelled" if self._cancelled else "finished")

    def _repr_extra(self) -> str:
        return f", raised {_describe(self._error)}" if self._error else ""


def run_in_loop(coro_fn, *args, name: str | None = None) -> LoopJob:
    """Run ``coro_fn(*args)`` on a fresh event loop in a background thread; return its LoopJob.

    Registered under ``name`` (default: the function's name), so running the
    cell again stops the previous run first. ``job.result(timeout)`` waits
    for the value; ``job.stop()`` cancels it.
    """
    return _register(LoopJob(coro_fn, args, name=name))
