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

    start(server, name)         the registry: one server per name, so that
    running(), stop_all()       re-running a cell replaces the old server

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

import atexit
import collections
import contextlib
import datetime as _dt
import errno
import html
import selectors
import socket
import threading
import time
import traceback
import weakref
from dataclasses import dataclass

__all__ = [
    # servers and handles
    "BackgroundServer",
    "DaytimeServer",
    "EchoServer",
    "ScriptedServer",
    "BackgroundJob",
    "background",
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
    # errors
    "ServerError",
    "PortInUseError",
    "PortPermissionError",
    "HandlerError",
    "StopTimeout",
    "ServerStopped",
]


# --------------------------------------------------------------------------
# Errors: each says what happened and what to do about it.


class ServerError(RuntimeError):
    """Base class of the errors this module raises."""


class PortInUseError(ServerError, OSError):
    """The port is already taken; the message says by whom when it can be known."""

    def __init__(self, message: str):
        ServerError.__init__(self, message)
        self.errno = errno.EADDRINUSE


class PortPermissionError(ServerError, PermissionError):
    """Binding a port below 1024 needs privileges a notebook does not have."""


class HandlerError(ServerError):
    """A client handler (or a background server function) raised.

    ``stop(reraise=True)`` raises this with the original exception as
    ``__cause__``; ``.errors`` lists every one that was recorded.
    """

    def __init__(self, message: str, errors=()):
        super().__init__(message)
        self.errors = list(errors)


class StopTimeout(ServerError, TimeoutError):
    """``stop()`` could not join every thread within its time limit."""


# --------------------------------------------------------------------------
# The event log.


@dataclass(frozen=True)
class LogEvent:
    """One thing a server did, with the wall-clock time it happened."""

    time: float  # time.time(), for display
    kind: str  # "start", "accept", "served", "error", "stop", "output", ...
    message: str

    def __str__(self) -> str:
        stamp = _dt.datetime.fromtimestamp(self.time).strftime("%H:%M:%S.%f")[:-3]
        return f"{stamp} {self.kind:<8} {self.message}"


class ServerLog:
    """A bounded, thread-safe list of :class:`LogEvent`, rendered as HTML.

    Bounded (``maxlen`` most recent events) so a server that runs for hours
    in a kernel does not grow without limit; ``dropped`` counts the rest.
    """

    def __init__(self, maxlen: int = 1000):
        self._events: collections.deque[LogEvent] = collections.deque(maxlen=maxlen)
        # Held by any thread that appends or reads; never held while blocking.
        self._lock = threading.Lock()
        self.dropped = 0
        self._listeners: list = []

    def add(self, kind: str, message: str) -> LogEvent:
        event = LogEvent(time.time(), kind, message)
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:  # e.g. a widget refreshing itself
            try:
                listener(event)
            except Exception:
                pass
        return event

    def subscribe(self, callback) -> None:
        """Call ``callback(event)`` (in the server's thread) for each new event."""
        with self._lock:
            self._listeners.append(callback)

    def unsubscribe(self, callback) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

    def events(self, kind: str | None = None) -> list[LogEvent]:
        with self._lock:
            return [e for e in self._events if kind is None or e.kind == kind]

    def messages(self, kind: str | None = None) -> list[str]:
        return [e.message for e in self.events(kind)]

    def __iter__(self):
        return iter(self.events())

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def __getitem__(self, index):
        return self.events()[index]

    def text(self, last: int | None = None) -> str:
        events = self.events()
        if last is not None:
            events = events[-last:]
        return "\n".join(str(e) for e in events)

    def __repr__(self) -> str:
        return self.text(last=50) or "(no events yet)"

    def _repr_html_(self, last: int = 50) -> str:
        events = self.events()[-last:]
        if not events:
            return "<i>no events yet</i>"
        colours = {"error": "#b3261e", "stop": "#555", "start": "#1a7f37"}
        rows = "".join(
            "<tr><td style='font-family:monospace'>{}</td><td style='color:{}'>{}</td>"
            "<td style='text-align:left;font-family:monospace;white-space:pre-wrap'>{}</td></tr>".format(
                html.escape(str(e).split(" ", 1)[0]),
                colours.get(e.kind, "inherit"),
                html.escape(e.kind),
                html.escape(e.message),
            )
            for e in events
        )
        more = f"<caption>last {len(events)} events ({self.dropped} older dropped)</caption>" if self.dropped else ""
        return f"<table>{more}<tr><th>time</th><th>event</th><th>detail</th></tr>{rows}</table>"


# --------------------------------------------------------------------------
# Friendly bind errors.


def family_for(host) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address ("::1"), AF_INET for the rest (names resolve to IPv4 here)."""
    return socket.AF_INET6 if ":" in str(host) else socket.AF_INET


def _who_holds(port: int) -> str:
    """Say which registered server or which process listens on ``port``."""
    for server in list(_all_servers):
        address = server.address
        if address and address[1] == port and server.running:
            return f"the server {server.name!r} started in this kernel ({type(server).__name__})"
    from .background import live_jobs

    for job in live_jobs():
        if job.running and any(addr[1] == port for addr in job.listening_addresses()):
            return f"the background function {job.name!r} started in this kernel"
    try:
        import os

        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return "another process (its owner is not visible to you)"
                if conn.pid == os.getpid():
                    return (
                        f"this kernel itself (process {conn.pid}): a socket you created in an "
                        "earlier cell is still open; restart the kernel or close it"
                    )
                try:
                    proc = psutil.Process(conn.pid)
                    return f"process {conn.pid} ({proc.name()}: {' '.join(proc.cmdline())[:80]})"
                except psutil.Error:
                    return f"process {conn.pid}"
    except Exception:  # psutil missing, or not allowed to list connections
        pass
    return "another program (it could not be identified)"


def bind_listener(host: str = "127.0.0.1", port: int = 0, backlog: int = 128) -> socket.socket:
    """Create, bind and listen a TCP socket, turning bind errors into clear ones.

    ``SO_REUSEADDR`` lets a server restart on the port it just left (whose
    old connections wait in TIME_WAIT); on Linux it does *not* let two
    servers listen on the same port, so "port in use" is still detected.
    """
    family = family_for(host)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, port))
        except PermissionError as exc:
            raise PortPermissionError(
                f"permission denied binding {host}:{port}: ports below 1024 are reserved "
                "for the system administrator. Use port=0 (the system picks a free "
                "port) or a port above 1023."
            ) from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use by {_who_holds(port)}. "
                    "Use port=0 to get a free port, or stop the other server first "
                    "(servers.running() lists what this kernel runs)."
                ) from exc
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise ServerError(
                    f"cannot bind {host}:{port}: this machine has no such address "
                    f"({exc.strerror}). Is IPv6 disabled?"
                ) from exc
            raise
        sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise


# --------------------------------------------------------------------------
# The server base class.

_all_servers: "weakref.WeakSet[BackgroundServer]" = weakref.WeakSet()
_server_numbers = iter(range(1, 1 << 62))


class BackgroundServer:
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
        _all_servers.add(self)

    # -- state ------------------------------------------------------------
    @property
    def address(self) -> tuple | None:
        """``(host, port)`` the server listens on (the real port, not 0); None before start."""
        return self._address

    @property
    def port(self) -> int | None:
        return self._address[1] if self._address else None

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
        Calling it again is harmless.
        """
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
        deadline = time.monotonic() + timeout
        with self._stop_lock:
            first = not self._stopped
            self._stopped = True
            if first:
                self.stop_event.set()
                if self._wake_w is not None:
                    with contextlib.suppress(OSError):
                        self._wake_w.send(b"x")
                me = threading.current_thread()
                if self._thread is not None and self._thread is not me:
                    self._thread.join(max(0.0, deadline - time.monotonic()))
                for sock in (self._listener, self._wake_r, self._wake_w):
                    if sock is not None and (self._thread is None or not self._thread.is_alive()):
                        with contextlib.suppress(OSError):
                            sock.close()
                try:
                    self.on_stop()
                except Exception as exc:
                    self._record_error(exc, "on_stop")
                for conn in self.connections():
                    # shutdown() wakes a handler blocked in recv/send; the
                    # handler's own thread then closes the socket.
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
            with self._lock:
                client_threads = list(self._client_threads)
            for thread in client_threads:
                if thread is not threading.current_thread():
                    thread.join(max(0.0, deadline - time.monotonic()))
            stuck = [t for t in self.threads() if t is not threading.current_thread()]
            if first:
                if not stuck:
                    for sock in (self._listener, self._wake_r, self._wake_w):
                        if sock is not None:
                            with contextlib.suppress(OSError):
                                sock.close()
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

    def __enter__(self) -> "BackgroundServer":
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- display ----------------------------------------------------------
    def status(self) -> str:
        if not self._started:
            return "not started"
        if self.running:
            return "running"
        return "stopped"

    def __repr__(self) -> str:
        where = format_address(self._address) if self._address else "-"
        return (f"<{type(self).__name__} {self.name!r} {self.status()} on {where}, "
                f"{self.clients_served} served>")

    def _repr_html_(self) -> str:
        return table_html([self]) + self.log._repr_html_(last=10)


def format_address(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


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


# --------------------------------------------------------------------------
# The registry: one server per name, so re-running a cell replaces it.

# name -> server or job; guarded by _registry_lock (held while replacing, so
# two cells racing to start the same name cannot both win).
_registry: dict[str, object] = {}
_registry_lock = threading.RLock()


def start(server, name: str | None = None):
    """Start ``server`` (a BackgroundServer or BackgroundJob) under ``name``.

    If a server with that name is registered, it is stopped first (its
    port freed), so re-running a cell never fails with "address already in
    use". Returns the started server.
    """
    if name is not None:
        server.name = name
    with _registry_lock:
        old = _registry.pop(server.name, None)
        if old is not None and old is not server:
            try:
                old.stop(timeout=5.0)
            except ServerError as exc:
                server.log.add("error", f"replaced server did not stop cleanly: {exc}")
        _registry[server.name] = server
        try:
            server.start()
        except BaseException:
            _registry.pop(server.name, None)
            raise
    return server


def get(name: str):
    """The registered server called ``name`` (KeyError if none)."""
    with _registry_lock:
        return _registry[name]


class ServerTable(list):
    """A list of registered servers that renders as an HTML table."""

    def _repr_html_(self) -> str:
        return table_html(self) if self else "<i>no servers running</i>"

    def __repr__(self) -> str:
        if not self:
            return "no servers running"
        return "\n".join(repr(s) for s in self)


def running() -> ServerTable:
    """The registered servers still running (renders as a table in a notebook)."""
    with _registry_lock:
        return ServerTable(s for s in _registry.values() if s.running)


def registered() -> ServerTable:
    """Every registered server, running or stopped (what a control panel shows)."""
    with _registry_lock:
        return ServerTable(_registry.values())


def stop_all(timeout: float = 5.0) -> list[str]:
    """Stop every registered server, and any other started in this kernel.

    Returns the names stopped. Errors are logged on each server, not raised,
    so one stuck server does not keep the others running.
    """
    with _registry_lock:
        targets = list(_registry.values())
        _registry.clear()
    from .background import live_jobs

    targets += [s for s in list(_all_servers) + live_jobs() if s not in targets]
    stopped = []
    for server in targets:
        if server.running or server.threads():
            with contextlib.suppress(ServerError, OSError):
                server.stop(timeout=timeout)
            stopped.append(server.name)
    return stopped


def _at_exit() -> None:
    with contextlib.suppress(Exception):
        stop_all(timeout=2.0)


atexit.register(_at_exit)


def table_html(servers) -> str:
    rows = []
    for s in servers:
        address = s.address
        served = s.clients_served
        rows.append(
            "<tr><td>{}</td><td>{}</td><td style='font-family:monospace'>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(s.name), html.escape(type(s).__name__),
                html.escape(format_address(address)) if address else "-",
                html.escape(s.status()), "-" if served is None else served,
                len(s.errors),
            )
        )
    return ("<table><tr><th>name</th><th>kind</th><th>address</th><th>status</th>"
            "<th>clients served</th><th>errors</th></tr>" + "".join(rows) + "</table>")


def __getattr__(name: str):
    """``servers.background``, ``servers.BackgroundJob`` and ``servers.ServerStopped`` live in
    :mod:`course_lib.background` (imported on first use: it imports this module)."""
    if name in ("background", "BackgroundJob", "ServerStopped"):
        from . import background as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
