"""TCP servers that run *inside* the notebook's kernel, on background threads.

A lesson needs a server and its client in the same notebook: the server must
not block the kernel, re-running a cell must not fail with "address already
in use", and nothing may be left running when the kernel exits. This module
models that with the shape of the standard library's ``socketserver``::

    BackgroundServer            accept loop on a named daemon thread,
      |                         one thread per client, stop() that joins
      +-- DaytimeServer         RFC 867: one line with the time, then close
      +-- EchoServer            send back what arrives, until the peer closes
      +-- ScriptedServer        plays a script (bytes, pauses, events) to
                                every client: for testing clients
      +-- (chat.ChatRoomServer  in course_lib.chat)

    BackgroundJob               a student's own *blocking* server function,
                                run by background(fn) and stoppable even
                                while it blocks in accept()

    AsyncioServer               asyncio.start_server on a fresh event loop in
    run_in_loop(coro_fn)        its own thread (the kernel's thread already
                                runs a loop); in course_lib.loops

    start(server, name)         the registry (course_lib.registry): one server
    running(), stop_all()       per name, so re-running a cell replaces it

Their shared handle (``with``, status, the event log, errors) is
:mod:`course_lib.handles`; listening sockets with clear bind errors are
:mod:`course_lib.listeners`. Everything stays importable from here, as the
notebooks use it (``servers.start``, ``servers.PortInUseError``).

What it trades off:

* A thread per client (not ``selectors``/asyncio): the model the syllabus
  teaches, easy to read and to stop, but each connection costs a thread
  start. For replies that need no waiting (day/time) serving one client at a
  time is *faster*; threads pay when handling a client waits (a slow or
  silent client). ``benchmarks/bench_daytime.py`` measures both regimes.
* The accept loop waits in ``select`` on the listener *and* a wake-up socket
  pair, so ``stop()`` interrupts it at once on every platform, at the cost
  of one extra pair of sockets per server.
* Servers never ``print``: a ``print`` from a background thread lands under
  whichever cell ran last. Events go to the server's :attr:`~BackgroundServer.log`,
  shown on demand (it renders as an HTML table) or live in
  ``course_lib.widgets.ServerPanel``.
* ``background(fn)`` cannot change the student's function, so it watches the
  thread instead: an audit hook (``sys.addaudithook``, installed once, a
  dictionary look-up per socket created) notes every socket created by the
  function's thread, and a thin wrapper around ``threading``'s thread start
  adds the threads it starts to the job. ``stop()`` shuts those sockets down,
  which makes a blocked ``accept()``/``recv()`` return with an error on
  Linux; a function that swallows that error is interrupted with an
  asynchronous ``ServerStopped`` (see :meth:`BackgroundJob.stop`). While a
  job runs, ``sys.stdout`` is a router that sends its threads' prints to the
  job's log (other threads' output passes through untouched), and an
  exception that ends one of its threads goes to the log, not to stderr.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import selectors
import socket
import threading
import time
import traceback

from .handles import (Handle, HandlerError, LogEvent, PortInUseError, PortPermissionError, ServerError,
                      ServerLog, StopTimeout, format_address, table_html)
from .listeners import bind_listener, family_for
from .registry import ServerTable, get, registered, running, start, stop_all, track

__all__ = [
    # servers and handles
    "BackgroundServer",
    "DaytimeServer",
    "EchoServer",
    "ScriptedServer",
    "BackgroundJob",
    "background",
    "AsyncioServer",
    "run_in_loop",
    "LoopJob",
    "family_for",
    # the registry
    "start",
    "get",
    "running",
    "registered",
    "stop_all",
    # helpers
    "bind_listener",
    "rfc867_time",
    "ServerLog",
    "LogEvent",
    "ServerTable",
    "format_address",
    "table_html",
    # errors
    "ServerError",
    "PortInUseError",
    "PortPermissionError",
    "HandlerError",
    "StopTimeout",
    "ServerStopped",
]

_server_numbers = iter(range(1, 1 << 62))


class BackgroundServer(Handle):
    """A TCP server whose accept loop runs on a named daemon thread.

    Methods for the caller:
        start()              bind, listen and start serving; returns self
        stop(timeout, reraise)  stop accepting, close every connection,
                             join every thread within ``timeout`` seconds
        with server: ...     start on entry (if needed), stop on exit
        address, running, clients_served, log, errors

    Methods that may be overridden:
        handle_client(conn, addr)  serve one connection; runs in its own
                             thread; return to have the connection closed.
                             ``conn`` has a timeout (``client_timeout``), so
                             a silent client cannot hold its thread forever.
        on_stop()            called once in stop(), after the listener closed
                             and before connections are closed (e.g. say
                             goodbye to chat members)

    For subclasses (e.g. a chat room that broadcasts):
        stop_event           set when stop() begins; loop ``while not
                             self.stop_event.is_set()``
        connections()        a snapshot of the live client sockets
        log                  record events with ``self.log.add(kind, text)``

    ``stop()`` blocks until every thread has ended (at most ``timeout`` s);
    called from one of the server's own threads it does not join that thread.
    """

    #: seconds a client socket may stay silent before recv/send time out
    client_timeout: float | None = 10.0
    #: at most this many clients are served at once; more wait in the backlog
    max_clients: int = 256

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str | None = None,
                 *, backlog: int = 128, client_timeout: float | None = None,
                 listener: socket.socket | None = None):
        self.host = host
        # A socket already listening (a Unix socket the grader's relay feeds): used as it is.
        self._given_listener = listener
        self.requested_port = port
        self.name = name or f"{type(self).__name__.lower()}-{next(_server_numbers)}"
        self.backlog = backlog
        if client_timeout is not None:
            self.client_timeout = client_timeout
        self.log = ServerLog()
        self.errors: list[BaseException] = []
        self.clients_served = 0
        self.clients_accepted = 0
        # Set by stop() (any thread) when shutdown begins; read by the accept
        # loop and by handlers that loop (chat rooms).
        self.stop_event = threading.Event()
        # Guards _connections, _client_threads and the counters; held briefly,
        # never across a blocking call.
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._client_threads: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple | None = None
        self._started = False
        self._stopped = False
        self._stop_lock = threading.Lock()  # serialises concurrent stop() calls
        track(self)

    # -- state ------------------------------------------------------------
    @property
    def address(self) -> tuple | None:
        """``(host, port)`` the server listens on (the real port, not 0); None before start."""
        return self._address

    def _has_started(self) -> bool:
        return self._started

    @property
    def running(self) -> bool:
        """True while the accept loop runs and stop() has not begun."""
        return bool(self._thread and self._thread.is_alive() and not self.stop_event.is_set())

    def connections(self) -> list[socket.socket]:
        """A snapshot of the client sockets currently open."""
        with self._lock:
            return list(self._connections)

    def threads(self) -> list[threading.Thread]:
        """The accept thread (if alive) and the live client threads."""
        with self._lock:
            live = [t for t in self._client_threads if t.is_alive()]
        if self._thread and self._thread.is_alive():
            live.insert(0, self._thread)
        return live

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "BackgroundServer":
        """Bind, listen and serve in the background; returns ``self``.

        Raises :class:`PortInUseError` or :class:`PortPermissionError` with a
        message that says what to do. A server starts once; create a new one
        to start again.
        """
        if self._started:
            raise ServerError(f"server {self.name!r} was already started; create a new one")
        self._started = True
        self._listener = self._given_listener or bind_listener(self.host, self.requested_port, self.backlog)
        self._listener.setblocking(False)
        bound = self._listener.getsockname()
        self._address = tuple(bound[:2]) if isinstance(bound, tuple) else (self.host, 0)
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._serve, name=f"{self.name}-accept", daemon=True
        )
        self.log.add("start", f"listening on {format_address(self._address)}")
        self._thread.start()
        return self

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self.stop_event.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r or self.stop_event.is_set():
                        return
                    self._accept_one()
                if len(self._client_threads) >= self.max_clients:
                    self._reap()
                    while len(self._client_threads) >= self.max_clients and not self.stop_event.wait(0.01):
                        self._reap()
        except Exception as exc:  # the accept loop itself failed
            self._record_error(exc, "accept loop")
        finally:
            selector.close()

    def _accept_one(self) -> None:
        try:
            conn, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return  # another wake-up took it, or a client gave up
        except OSError as exc:
            if self.stop_event.is_set():
                return
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self.log.add("error", f"out of file descriptors: {exc}")
                self.stop_event.wait(0.05)
                return
            raise
        conn.setblocking(True)
        conn.settimeout(self.client_timeout)
        addr = tuple(addr[:2]) if isinstance(addr, tuple) else ("relay", 0)
        with self._lock:
            self.clients_accepted += 1
            number = self.clients_accepted
            self._connections.add(conn)
        self.log.add("accept", f"client {number} from {format_address(addr)}")
        thread = threading.Thread(
            target=self._run_handler, args=(conn, addr, number),
            name=f"{self.name}-client-{number}", daemon=True,
        )
        with self._lock:
            self._reap_locked()
            self._client_threads.add(thread)
        thread.start()

    def _run_handler(self, conn: socket.socket, addr, number: int) -> None:
        ok = False
        try:
            self.handle_client(conn, addr)
            ok = True
        except (socket.timeout, TimeoutError):
            self.log.add("timeout", f"client {number} was silent for {self.client_timeout:g} s; closed")
        except OSError as exc:
            if self.stop_event.is_set():
                self.log.add("closed", f"client {number} closed by stop()")
            elif exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNABORTED):
                self.log.add("gone", f"client {number} disconnected ({exc.strerror})")
            else:
                self._record_error(exc, f"handler for client {number}")
        except Exception as exc:
            self._record_error(exc, f"handler for client {number}")
        finally:
            with self._lock:
                if ok:
                    # Counted before the close, so a client that sees the
                    # connection end also sees the count.
                    self.clients_served += 1
                self._connections.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()
            if ok:
                self.log.add("served", f"client {number} done")

    def _record_error(self, exc: BaseException, where: str) -> None:
        with self._lock:
            self.errors.append(exc)
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self.log.add("error", f"{where} raised {text}")

    def _reap_locked(self) -> None:
        self._client_threads = {t for t in self._client_threads if t.is_alive()}

    def _reap(self) -> None:
        with self._lock:
            self._reap_locked()

    def handle_client(self, conn: socket.socket, addr) -> None:
        """Serve one client. Override this; the base closes ``conn`` afterwards."""
        raise NotImplementedError

    def on_stop(self) -> None:
        """Hook run once by stop() before client connections are closed."""

    def stop(self, timeout: float = 5.0, reraise: bool = False) -> None:
        """Stop serving: close the listener, close connections, join threads.

        Blocks at most ``timeout`` seconds. Raises :class:`StopTimeout` naming
        the threads that did not end (a handler stuck in a computation; they
        are daemons and die with the kernel). With ``reraise=True`` a handler's
        exception is raised as :class:`HandlerError` after everything stopped.
        Calling it again is harmless: it waits for the threads again.
        """
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
        deadline = time.monotonic() + timeout
        with self._stop_lock:
            first = not self._stopped
            self._stopped = True
            if first:
                self._begin_stop(deadline)
            with self._lock:
                client_threads = list(self._client_threads)
            self._join_threads(client_threads, deadline)
            stuck = self._threads_left()
            if first:
                if not stuck:
                    self._close_own_sockets()
                self.log.add("stop", f"stopped after serving {self.clients_served} client(s)")
        if stuck:
            raise StopTimeout(
                f"server {self.name!r}: {len(stuck)} thread(s) still running {timeout:g} s after "
                f"stop(): {', '.join(t.name for t in stuck)}. A handler that never checks its "
                "socket or stop_event cannot be interrupted."
            )
        if reraise and self.errors:
            first_error = self.errors[0]
            raise HandlerError(
                f"server {self.name!r}: {len(self.errors)} error(s) in handlers; first: "
                f"{type(first_error).__name__}: {first_error}",
                self.errors,
            ) from first_error

    def _begin_stop(self, deadline: float) -> None:
        """The first stop() only: end the accept loop, run on_stop, wake every handler."""
        self.stop_event.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if self._thread is not None:
            self._join_threads([self._thread], deadline)
        if self._thread is None or not self._thread.is_alive():
            self._close_own_sockets()  # no accept loop uses them any more
        try:
            self.on_stop()
        except Exception as exc:
            self._record_error(exc, "on_stop")
        for conn in self.connections():
            # shutdown() wakes a handler blocked in recv/send; the
            # handler's own thread then closes the socket.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _close_own_sockets(self) -> None:
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    def _repr_extra(self) -> str:
        return f", {self.clients_served} served"

# --------------------------------------------------------------------------
# Built-in servers.


def rfc867_time(now: _dt.datetime | None = None) -> str:
    """The time as RFC 867 suggests: ``Weekday, Month Day, Year HH:MM:SS-Zone``.

    RFC 867 fixes no syntax ("there is no specific syntax for the daytime");
    it only asks for one line of printable ASCII. This is the RFC's example
    format, in local time with the zone's abbreviation (ASCII digits only,
    so a locale cannot put non-ASCII names in it: English names are used).
    """
    now = now or _dt.datetime.now().astimezone()
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    months = ["January", "February", "March", "April", "May", "June", "July",
              "August", "September", "October", "November", "December"]
    zone = now.strftime("%Z") or "UTC"
    zone = zone if zone.isascii() and zone.isprintable() else now.strftime("%z")
    return (f"{days[now.weekday()]}, {months[now.month - 1]} {now.day:02d}, {now.year} "
            f"{now:%H:%M:%S}-{zone}")


class DaytimeServer(BackgroundServer):
    """RFC 867 day/time: on connect, send one line with the time, then close.

    ``delay`` (seconds) waits before replying, to model a handler that must
    wait for something (a lookup, a slow disk): the regime where serving
    clients concurrently pays off. ``clock`` returns the line to send
    (without its CRLF), for tests.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str | None = None,
                 *, delay: float = 0.0, clock=None, **kwargs):
        super().__init__(host, port, name, **kwargs)
        self.delay = delay
        self.clock = clock or rfc867_time

    def handle_client(self, conn, addr) -> None:
        if self.delay and self.stop_event.wait(self.delay):
            return
        conn.sendall(self.clock().encode("ascii") + b"\r\n")


class EchoServer(BackgroundServer):
    """Echo (RFC 862 over TCP): send back every byte received until the peer closes."""

    def handle_client(self, conn, addr) -> None:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


class ScriptedServer(BackgroundServer):
    """Plays the same script to every client: for testing clients.

    ``script`` is a sequence of steps: ``bytes`` are sent, a number pauses
    that many seconds, a ``threading.Event`` is waited for (at most
    ``client_timeout``). Then the connection is closed, or with ``hold=True``
    kept open (silent) until the client closes it or the server stops.
    ``split=n`` sends every ``bytes`` step ``n`` bytes at a time with
    ``gap`` seconds between pieces, so a client that treats one ``recv``
    as the whole message sees only part of it.

    Examples: ``ScriptedServer([b"Mon", 0.3, b"day\\r\\n"])`` pauses mid-line;
    ``ScriptedServer([line], split=1, gap=0.005)`` trickles one byte at a
    time; ``ScriptedServer([], hold=True)`` never replies.
    """

    def __init__(self, script=(), host: str = "127.0.0.1", port: int = 0,
                 name: str | None = None, *, split: int | None = None, gap: float = 0.0,
                 hold: bool = False, **kwargs):
        super().__init__(host, port, name, **kwargs)
        self.script = list(script)
        self.split = split
        self.gap = gap
        self.hold = hold

    def handle_client(self, conn, addr) -> None:
        for step in self.script:
            if self.stop_event.is_set():
                return
            if isinstance(step, (bytes, bytearray)):
                pieces = ([step[i:i + self.split] for i in range(0, len(step), self.split)]
                          if self.split else [step])
                for index, piece in enumerate(pieces):
                    if index and self.gap and self.stop_event.wait(self.gap):
                        return
                    conn.sendall(piece)
            elif isinstance(step, threading.Event):
                step.wait(self.client_timeout)
            else:
                if self.stop_event.wait(float(step)):
                    return
        if self.hold:
            # Silent until the client closes (recv returns b"") or stop()
            # shuts the socket down; time-outs just mean "keep waiting".
            conn.settimeout(0.5)
            while not self.stop_event.is_set():
                try:
                    if not conn.recv(4096):
                        return
                except (socket.timeout, TimeoutError):
                    continue


def __getattr__(name: str):
    """``servers.background``, ``servers.BackgroundJob`` and ``servers.ServerStopped`` live in
    :mod:`course_lib.background` (imported on first use: it imports this module);
    ``servers.AsyncioServer``, ``servers.run_in_loop`` and ``servers.LoopJob`` live in
    :mod:`course_lib.loops` (imported on first use: it imports asyncio)."""
    if name in ("background", "BackgroundJob", "ServerStopped"):
        from . import background as module

        return getattr(module, name)
    if name in ("AsyncioServer", "run_in_loop", "LoopJob"):
        from . import loops as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
