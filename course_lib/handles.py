"""What every background handle of a notebook shares: errors, the event log, ``with``, a table row.

A :class:`~course_lib.servers.BackgroundServer` and a
:class:`~course_lib.background.BackgroundJob` are driven the same way from a
cell — ``start()``, ``stop(timeout, reraise)``, ``with handle: ...``, a status
and an HTML row in ``servers.running()`` — so that shape is written once, in
:class:`Handle`, and each class supplies only what it knows: whether it has
started, its address, its threads, how to stop.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import errno
import html
import threading
import time
from dataclasses import dataclass

__all__ = ["Handle", "ServerLog", "LogEvent", "format_address", "table_html", "remaining",
           "ServerError", "PortInUseError", "PortPermissionError", "HandlerError", "StopTimeout"]


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
# The handle's shape.


def format_address(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value), never negative."""
    return max(0.0, deadline - time.monotonic())


def table_html(handles) -> str:
    rows = []
    for h in handles:
        address = h.address
        served = h.clients_served
        rows.append(
            "<tr><td>{}</td><td>{}</td><td style='font-family:monospace'>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td></tr>".format(
                html.escape(h.name), html.escape(type(h).__name__),
                html.escape(format_address(address)) if address else "-",
                html.escape(h.status()), "-" if served is None else served,
                len(h.errors),
            )
        )
    return ("<table><tr><th>name</th><th>kind</th><th>address</th><th>status</th>"
            "<th>clients served</th><th>errors</th></tr>" + "".join(rows) + "</table>")


class Handle:
    """Base of servers and background jobs: ``with``, status, repr, and the threads still alive.

    Subclasses set ``name``, ``log``, ``errors`` and ``stop_event``, and provide ``_has_started()``,
    ``address``, ``running``, ``clients_served``, ``threads()``, ``start()`` and ``stop()``.
    """

    name: str
    log: "ServerLog"
    errors: list

    def _has_started(self) -> bool:
        raise NotImplementedError

    @property
    def port(self) -> int | None:
        address = self.address
        return address[1] if address else None

    def __enter__(self):
        if not self._has_started():
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def status(self) -> str:
        if not self._has_started():
            return "not started"
        return "running" if self.running else self._ended()

    def _ended(self) -> str:
        """The status once stopped (a job whose function raised says "failed")."""
        return "stopped"

    def _threads_left(self) -> list[threading.Thread]:
        """The handle's threads still alive, other than the caller's own."""
        me = threading.current_thread()
        return [t for t in self.threads() if t is not me]

    def _join_threads(self, threads, deadline: float) -> None:
        me = threading.current_thread()
        for thread in threads:
            if thread is not me:
                thread.join(remaining(deadline))

    def _listens_on(self, port: int) -> bool:
        address = self.address
        return bool(address) and address[1] == port

    def _described(self) -> str:
        """How a "port in use" message names this handle."""
        return f"the server {self.name!r} ({type(self).__name__})"

    def _repr_extra(self) -> str:
        return ""

    def __repr__(self) -> str:
        address = self.address
        where = format_address(address) if address else "-"
        return f"<{type(self).__name__} {self.name!r} {self.status()} on {where}{self._repr_extra()}>"

    def _repr_html_(self) -> str:
        return table_html([self]) + self.log._repr_html_(last=10)
