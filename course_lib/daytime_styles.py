"""RFC 867 day/time in three server styles, plus RFC 867 over UDP — one interface for all.

Every class here is started, measured and stopped the same way, so a lesson
can put them side by side::

    ThreadPerClientDaytime   one thread accepts; each client gets a thread
    SelectorsDaytime         ONE thread, non-blocking sockets, a selector
    AsyncioDaytime           ONE thread running an asyncio loop (AsyncioServer)
    UdpDaytimeServer         one datagram in, one datagram with the time out

    server.start() -> server      bind port 0 (by default) and serve
    server.address                (host, port) to connect to
    server.threads                the threads it uses *now* (a list; calling
                                  it, server.threads(), gives the same list)
    server.stop(timeout=5.0)      stop, join every thread (StopTimeout if not)
    with Style() as server: ...   start and stop around a block

Each TCP style sends ``servers.rfc867_time()`` + CRLF and closes. ``clock``
(a function returning the line, without CRLF) replaces the time, e.g. for a
long reply that a client which never reads cannot swallow at once.
``delay`` (seconds) waits before each reply, to model a handler that must
wait for something (a lookup, a disk): a thread sleeps, but the one-thread
styles must not: the selector keeps a queue of replies due later, asyncio
awaits ``asyncio.sleep``.

What they trade off: a thread per client is the simplest code but costs a
thread (its stack, a start, switches) per connection; the selector and the
asyncio loop serve every client from one thread, so nothing they do may
block — which is why the selector keeps an output buffer per connection and
sends only what the socket accepts now. All are tracked like the other
servers, so ``servers.stop_all()`` stops them and ``servers.start(s, name)``
shows them in the ServerPanel.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import selectors
import socket
import threading
import time

from .handles import Handle, ServerError, ServerLog, StopTimeout, format_address
from .listeners import bind_listener, family_for
from .loops import AsyncioServer
from .registry import track
from .servers import rfc867_time

__all__ = ["ThreadPerClientDaytime", "SelectorsDaytime", "AsyncioDaytime", "UdpDaytimeServer"]

_numbers = itertools.count(1)


class _Threads(list):
    """A list of threads that can also be called (``server.threads()``, as on every handle)."""

    def __call__(self) -> "_Threads":
        return self


class _OneThreadServer(Handle):
    """The shared lifecycle: a socket, a wake-up socketpair, one serving thread, stop() that joins.

    Subclasses provide ``_open()`` (the socket to serve) and ``_serve()`` (the
    loop, run in the thread; it returns when ``_wake_r`` becomes readable).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, name: str | None = None,
                 *, clock=rfc867_time, delay: float = 0.0):
        self.host, self.requested_port = host, port
        self.delay = delay
        self.name = name or f"{type(self).__name__.lower()}-{next(_numbers)}"
        self.clock = clock
        self.log = ServerLog()
        self.errors: list[BaseException] = []
        self.clients_served = 0
        self.stop_event = threading.Event()  # set by stop(); read by the serving loop
        self._sock: socket.socket | None = None
        self._wake_r = self._wake_w = None
        self._thread: threading.Thread | None = None
        self._address: tuple | None = None
        self._stopped = False
        track(self)

    def reply(self) -> bytes:
        return (self.clock() + "\r\n").encode("ascii")

    @property
    def address(self) -> tuple | None:
        return self._address

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive() and not self.stop_event.is_set())

    def _has_started(self) -> bool:
        return self._thread is not None

    @property
    def threads(self) -> _Threads:
        return _Threads([self._thread] if self._thread and self._thread.is_alive() else [])

    def start(self):
        if self._thread is not None:
            raise ServerError(f"server {self.name!r} was already started; create a new one")
        self._sock = self._open()
        self._sock.setblocking(False)
        self._address = tuple(self._sock.getsockname()[:2])
        self._wake_r, self._wake_w = socket.socketpair()  # stop() writes a byte: the loop wakes
        self._thread = threading.Thread(target=self._guarded, name=f"{self.name}-loop", daemon=True)
        self.log.add("start", f"listening on {format_address(self._address)}")
        self._thread.start()
        return self

    def _guarded(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # recorded, never printed under a random cell
            self.errors.append(exc)
            self.log.add("error", f"serving loop raised {type(exc).__name__}: {exc}")

    def stop(self, timeout: float = 5.0) -> None:
        """Wake the loop, join the threads (at most ``timeout`` s), close every socket."""
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
        deadline = time.monotonic() + timeout
        first, self._stopped = not self._stopped, True
        self.stop_event.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if self._thread is not None:
            self._join_threads([self._thread], deadline)  # first the loop: it starts no thread after
        self._wake_clients()
        self._join_threads(self.threads, deadline)
        stuck = self._threads_left()
        if stuck:
            raise StopTimeout(f"server {self.name!r}: {', '.join(t.name for t in stuck)} "
                              f"still running {timeout:g} s after stop()")
        for sock in (self._sock, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if first and self._thread is not None:
            self.log.add("stop", f"stopped after serving {self.clients_served} client(s)")

    def _wake_clients(self) -> None:
        """Hook run by stop() once the serving loop has ended: wake threads serving clients."""

    def _repr_extra(self) -> str:
        return f", {self.clients_served} served"


class ThreadPerClientDaytime(_OneThreadServer):
    """One thread accepts; every client is served by a thread of its own."""

    def __init__(self, host="127.0.0.1", port=0, name=None, *, clock=rfc867_time, delay=0.0,
                 backlog=1024):
        super().__init__(host, port, name, clock=clock, delay=delay)
        self.backlog = backlog
        self._clients: set[threading.Thread] = set()  # guarded by _lock
        self._conns: set[socket.socket] = set()  # guarded by _lock; shut down by stop()
        self._lock = threading.Lock()

    def _open(self):
        return bind_listener(self.host, self.requested_port, self.backlog)

    @property
    def threads(self) -> _Threads:
        with self._lock:
            clients = [t for t in self._clients if t.is_alive()]
        return _Threads(super().threads + clients)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.stop_event.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        conn, _addr = self._sock.accept()
                    except BlockingIOError:
                        continue
                    thread = threading.Thread(target=self._serve_one, args=(conn,),
                                              name=f"{self.name}-client", daemon=True)
                    with self._lock:
                        self._clients.add(thread)
                        self._conns.add(conn)
                    thread.start()

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10.0)  # a client that never reads cannot hold this thread forever
            if self.delay and self.stop_event.wait(self.delay):  # this thread may wait: it is the client's
                return
            conn.sendall(self.reply())
            with self._lock:
                self.clients_served += 1
        except OSError as exc:
            self.log.add("gone", f"client gone: {exc}")
        finally:
            conn.close()
            with self._lock:
                self._conns.discard(conn)
                self._clients.discard(threading.current_thread())  # the thread's last step

    def _wake_clients(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wakes a thread blocked in sendall to a client that never reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class SelectorsDaytime(_OneThreadServer):
    """ONE thread serves every client: non-blocking sockets and a ``selectors.DefaultSelector``.

    Each connection has its own output buffer; the loop sends what the socket
    accepts *now* and comes back when it is writable again, so a client that
    never reads holds only its own buffer, never the others.
    """

    def __init__(self, host="127.0.0.1", port=0, name=None, *, clock=rfc867_time, delay=0.0,
                 backlog=1024):
        super().__init__(host, port, name, clock=clock, delay=delay)
        self.backlog = backlog
        self.pending: dict[socket.socket, bytes] = {}  # connection -> bytes not yet sent
        self.due: collections.deque = collections.deque()  # (when, connection): replies to start later

    def _open(self):
        return bind_listener(self.host, self.requested_port, self.backlog)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            try:
                while True:
                    # Never sleep here: wait in select() only until the next reply is due.
                    wait = max(0.0, self.due[0][0] - time.monotonic()) if self.due else None
                    for key, _ in selector.select(wait):
                        if key.fileobj is self._wake_r:
                            return
                        if key.fileobj is self._sock:
                            self._accept(selector)
                        else:
                            self._write(selector, key.fileobj)
                    while self.due and self.due[0][0] <= time.monotonic():
                        self._begin_reply(selector, self.due.popleft()[1])
            finally:
                for conn in self.pending:  # clients still connected when stop() came
                    conn.close()
                self.pending.clear()
                self.due.clear()

    def _accept(self, selector) -> None:
        try:
            conn, _addr = self._sock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.pending[conn] = b""
        if self.delay:
            self.due.append((time.monotonic() + self.delay, conn))  # same delay: the deque stays in order
        else:
            self._begin_reply(selector, conn)

    def _begin_reply(self, selector, conn: socket.socket) -> None:
        self.pending[conn] = self.reply()
        selector.register(conn, selectors.EVENT_WRITE)

    def _write(self, selector, conn: socket.socket) -> None:
        try:
            sent = conn.send(self.pending[conn])  # only what fits now; never blocks
        except BlockingIOError:
            return
        except OSError as exc:
            self.log.add("gone", f"client gone: {exc}")
            sent = None
        if sent is not None:
            self.pending[conn] = self.pending[conn][sent:]
            if self.pending[conn]:
                return  # the rest when the socket is writable again
            self.clients_served += 1
        selector.unregister(conn)
        del self.pending[conn]
        conn.close()


class AsyncioDaytime(AsyncioServer):
    """ONE thread running an asyncio loop: ``asyncio.start_server`` and a coroutine per client."""

    log_clients = False  # like the other styles: only errors go to the log

    def __init__(self, host="127.0.0.1", port=0, name=None, *, clock=rfc867_time, delay=0.0,
                 backlog=1024):
        super().__init__(self.daytime, host, port, name, backlog=backlog)
        self.clock = clock
        self.delay = delay

    async def daytime(self, reader, writer) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)  # never time.sleep: that would stall every client
        writer.write((self.clock() + "\r\n").encode("ascii"))
        await writer.drain()  # waits (without blocking the loop) while the client is slow to read

    @property
    def threads(self):
        return _Threads(super().threads())


class UdpDaytimeServer(_OneThreadServer):
    """RFC 867 over UDP: any datagram in, one datagram with the time back to its sender.

    ``drop_every=N`` silently ignores every Nth request (the 3rd, 6th, ... for
    N=3), as a network that loses datagrams would: the client hears nothing,
    must time out and ask again. ``requests`` and ``dropped`` count them.
    """

    def __init__(self, host="127.0.0.1", port=0, name=None, *, clock=rfc867_time,
                 drop_every: int | None = None):
        super().__init__(host, port, name, clock=clock)
        if drop_every is not None and drop_every < 1:
            raise ValueError("drop_every must be a positive integer (or None)")
        self.drop_every = drop_every
        self.requests = 0
        self.dropped = 0

    def _open(self):
        sock = socket.socket(family_for(self.host), socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError:
            sock.close()
            raise
        return sock

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        _data, peer = self._sock.recvfrom(2048)
                    except (BlockingIOError, ConnectionRefusedError):
                        continue
                    self.requests += 1
                    if self.drop_every and self.requests % self.drop_every == 0:
                        self.dropped += 1
                        self.log.add("dropped", f"request {self.requests} from {format_address(peer)}")
                        continue
                    self.clients_served += 1  # counted first: a client that has its reply sees the count
                    with contextlib.suppress(OSError):
                        self._sock.sendto(self.reply(), peer)
